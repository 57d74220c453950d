package dev.shade.bench;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The freeze benchmark's SQLite load: a database in WAL mode on the data filesystem and one
 * thread committing {@code INSERT INTO counter VALUES (n)} every {@value #PAUSE_MILLIS} ms
 * (synchronous=NORMAL, as WAL applications usually run; the pause keeps it from taking a CPU
 * from pgbench), so that the {@code sqlite:} writer has a writer to hold
 * out and the filesystem has SQLite's writes to freeze. Its {@code busy_timeout} is longer than
 * any freeze limit the bench uses, so it waits out a snapshot instead of failing.
 *
 * <p>Thread-safe: the committing thread owns the connection; {@link #commits} and
 * {@link #close} may come from any thread.
 */
final class BenchSqlite implements Closeable {
  /** Longer than the freeze limit (5 s by default): the writer waits out a snapshot. */
  private static final int BUSY_TIMEOUT_MILLIS = 30_000;
  /** Pause between commits. */
  static final long PAUSE_MILLIS = 5;

  /** The database file. */
  final Path file;
  /** Commits so far. */
  private final AtomicLong commits = new AtomicLong();
  /** The committing thread. */
  private final Thread thread;
  /** The connection, owned by the thread. */
  private final Connection connection;
  /** Set to stop after the commit under way. */
  private volatile boolean stop;
  /** Why the thread ended early, or null. */
  private volatile Exception failure;

  private BenchSqlite(Path file, Connection connection) {
    this.file = file;
    this.connection = connection;
    this.thread = new Thread(this::run, "bench sqlite " + file);
    thread.setDaemon(true);
  }

  /** Creates the database {@code file} (WAL mode, table counter) and starts committing. */
  static BenchSqlite start(Path file) throws IOException {
    try {
      Connection c = DriverManager.getConnection("jdbc:sqlite:" + file.toAbsolutePath());
      try (Statement s = c.createStatement()) {
        try (ResultSet r = s.executeQuery("PRAGMA journal_mode=WAL")) {
          if (!r.next() || !"wal".equalsIgnoreCase(r.getString(1))) {
            throw new IOException("SQLite would not switch " + file + " to WAL mode");
          }
        }
        s.execute("PRAGMA synchronous=NORMAL");
        s.execute("PRAGMA busy_timeout=" + BUSY_TIMEOUT_MILLIS);
        s.execute("CREATE TABLE IF NOT EXISTS counter (n INTEGER)");
      } catch (SQLException | IOException | RuntimeException e) {
        c.close();
        throw e;
      }
      c.setAutoCommit(true);
      BenchSqlite b = new BenchSqlite(file, c);
      b.thread.start();
      return b;
    } catch (SQLException e) {
      throw new IOException("cannot start the SQLite load on " + file + ": " + e.getMessage(), e);
    }
  }

  /** Commits so far; fails if the load failed. */
  long commits() throws IOException {
    if (failure != null) {
      throw new IOException("the SQLite load on " + file + " failed after " + commits.get() + " commits: "
          + failure.getMessage(), failure);
    }
    return commits.get();
  }

  @Override
  public void close() throws IOException {
    stop = true;
    try {
      thread.join(60_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (thread.isAlive()) {
      throw new IOException("the SQLite load on " + file + " did not stop within 60 s");
    }
  }

  private void run() {
    try (Connection c = connection; PreparedStatement insert = c.prepareStatement("INSERT INTO counter VALUES (?)")) {
      for (long n = 1; !stop; n++) {
        insert.setLong(1, n);
        insert.executeUpdate();
        commits.incrementAndGet();
        Thread.sleep(PAUSE_MILLIS);
      }
    } catch (SQLException | RuntimeException | InterruptedException e) {
      failure = e;
    }
  }

  @Override
  public String toString() {
    return "SQLite load on " + file + " (" + commits.get() + " commits)";
  }
}
