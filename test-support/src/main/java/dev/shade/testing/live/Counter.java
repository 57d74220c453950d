package dev.shade.testing.live;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;

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
  /** The writer thread. */
  private final Thread thread;
  /** Set to make the writer stop after the commit under way. */
  private volatile boolean stop;
  /** Why the writer ended early, or null. */
  private volatile Throwable failure;

  private Counter(Connection connection, String what, long pauseMillis) {
    this.connection = connection;
    this.what = what;
    this.pauseMillis = pauseMillis;
    this.thread = new Thread(this::run, "counter " + what);
    thread.setDaemon(true);
  }

  /**
   * Starts committing numbers on {@code connection} (which this counter now owns and closes),
   * into the table {@code counter (n bigint)} that must exist, pausing {@code pauseMillis}
   * between commits (0: as fast as the database commits); {@code what} names the database in messages.
   */
  public static Counter start(Connection connection, String what, long pauseMillis) throws SQLException {
    connection.setAutoCommit(true);
    Counter c = new Counter(connection, what, pauseMillis);
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
        insert.executeUpdate();
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
