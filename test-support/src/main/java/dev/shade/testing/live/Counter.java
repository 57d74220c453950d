package dev.shade.testing.live;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Predicate;

/**
 * A background thread committing {@code INSERT INTO counter VALUES (n)} for n = 1, 2, 3, ... on
 * one JDBC connection in autocommit mode, recording in an {@link AckLog} when each was issued
 * and when its commit returned. With the database's durable commits (PostgreSQL's default
 * {@code synchronous_commit}, SQLite's {@code synchronous=FULL}), an acknowledged number is on
 * the disk, so a snapshot taken after it must hold it.
 *
 * <p>Thread-safe: the writer thread owns the connection; {@link #stop} may come from any thread.
 */
public final class Counter implements AutoCloseable {
  /** The statement every number goes through. */
  public static final String INSERT = "INSERT INTO counter VALUES (?)";

  /** What was issued and acknowledged. */
  private final AckLog acks = new AckLog();
  /** The database connection, used by the writer thread only until it ends. */
  private final Connection connection;
  /** What this counter writes to, for messages. */
  private final String what;
  /** Pause between commits in milliseconds, 0 for none. */
  private final long pauseMillis;
  /** Which failures of a commit are retried (after a millisecond) instead of ending the writer. */
  private final Predicate<SQLException> retry;
  /** The writer thread. */
  private final Thread thread;
  /** Set to make the writer stop after the commit under way. */
  private volatile boolean stop;
  /** Why the writer ended early, or null. */
  private volatile Throwable failure;

  private Counter(Connection connection, String what, long pauseMillis, Predicate<SQLException> retry) {
    this.connection = connection;
    this.what = what;
    this.pauseMillis = pauseMillis;
    this.retry = retry;
    this.thread = new Thread(this::run, "counter " + what);
    thread.setDaemon(true);
  }

  /**
   * Starts committing numbers on {@code connection} (which this counter now owns and closes),
   * into the table {@code counter (n bigint)} that must exist, pausing {@code pauseMillis}
   * between commits (0: as fast as the database commits); {@code what} names the database in messages.
   */
  public static Counter start(Connection connection, String what, long pauseMillis) throws SQLException {
    return start(connection, what, pauseMillis, e -> false);
  }

  /**
   * The same, retrying a commit that fails with an error {@code retry} accepts (SQLite's
   * {@code SQLITE_BUSY} with {@code busy_timeout} 0, say) every millisecond until it succeeds,
   * instead of ending: a busy wait of fine, known granularity. The number stays issued while it
   * is retried, so the acknowledgement times show the whole wait.
   */
  public static Counter start(Connection connection, String what, long pauseMillis, Predicate<SQLException> retry)
      throws SQLException {
    connection.setAutoCommit(true);
    Counter c = new Counter(connection, what, pauseMillis, retry);
    c.thread.start();
    return c;
  }

  /** When each number was issued and acknowledged. */
  public AckLog acks() {
    return acks;
  }

  /** Why the writer ended before it was stopped, or null while it runs or when it was stopped. */
  public Throwable failure() {
    return failure;
  }

  /** Stops after the commit under way, closes the connection, and fails if the writer had failed. */
  public void stop() throws InterruptedException {
    stop = true;
    thread.join(30_000);
    if (thread.isAlive()) {
      throw new IllegalStateException("the counter on " + what + " did not stop within 30 s (" + acks + ")");
    }
    if (failure != null) {
      throw new AssertionError("the counter on " + what + " failed (" + acks + "): " + failure, failure);
    }
  }

  @Override
  public void close() throws InterruptedException {
    stop();
  }

  private void run() {
    try (Connection c = connection; PreparedStatement insert = c.prepareStatement(INSERT)) {
      for (long n = 1; !stop; n++) {
        insert.setLong(1, n);
        acks.issued(n);
        while (true) {
          try {
            insert.executeUpdate();
            break;
          } catch (SQLException e) {
            if (stop || !retry.test(e)) {
              throw e;
            }
            LockSupport.parkNanos(1_000_000);
          }
        }
        acks.acked(n);
        if (pauseMillis > 0) {
          Thread.sleep(pauseMillis);
        }
      }
    } catch (SQLException | RuntimeException | InterruptedException e) {
      failure = e;
    }
  }

  @Override
  public String toString() {
    return "counter on " + what + " (" + acks + ")";
  }
}
