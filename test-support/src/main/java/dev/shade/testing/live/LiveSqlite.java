package dev.shade.testing.live;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * A SQLite database in WAL mode with a {@link Counter} committing numbered rows into it, for an
 * end-to-end test of a snapshot of the filesystem it lives on; and the checks of a copy: its
 * highest number and {@code PRAGMA integrity_check}.
 *
 * <p>The writer runs in this JVM (sqlite-jdbc) on a connection of its own with
 * {@code synchronous=FULL} (unless told otherwise), so each commit returns after the WAL is synced. {@link #close}
 * stops it and closes the database, so the filesystem can be unmounted.
 *
 * <p>Not thread-safe: one test drives it; the counter runs in its own thread.
 */
public final class LiveSqlite implements AutoCloseable {
  /** The database file. */
  private final Path file;
  /** The writer. */
  private final Counter counter;

  private LiveSqlite(Path file, Counter counter) {
    this.file = file;
    this.counter = counter;
  }

  /**
   * Opens (creating if missing) the database {@code file} in WAL mode, creates the table
   * {@code counter (n INTEGER)}, and starts committing numbers into it, pausing
   * {@code pauseMillis} between commits.
   */
  public static LiveSqlite start(Path file, long pauseMillis) throws SQLException {
    return start(file, pauseMillis, "FULL", false);
  }

  /**
   * The same with {@code PRAGMA synchronous=}{@code synchronous} ({@code FULL}, {@code NORMAL},
   * {@code OFF}: with {@code OFF} no commit waits for the disk, so the counter keeps committing
   * into the page cache while the device is gone); with {@code spinOnBusy}, {@code busy_timeout}
   * is 0 and the counter retries a busy commit every millisecond itself (SQLite's own busy
   * handler sleeps up to 100 ms between tries, which would blur a stall measured to 100 ms).
   */
  public static LiveSqlite start(Path file, long pauseMillis, String synchronous, boolean spinOnBusy)
      throws SQLException {
    if (!synchronous.matches("(?i)OFF|NORMAL|FULL|EXTRA")) {
      throw new IllegalArgumentException("synchronous must be OFF, NORMAL, FULL or EXTRA: " + synchronous);
    }
    Connection c = open(file);
    try (Statement s = c.createStatement()) {
      try (ResultSet r = s.executeQuery("PRAGMA journal_mode=WAL")) {
        if (!r.next() || !"wal".equalsIgnoreCase(r.getString(1))) {
          throw new SQLException("SQLite would not switch " + file + " to WAL mode");
        }
      }
      s.execute("PRAGMA synchronous=" + synchronous);
      s.execute("CREATE TABLE IF NOT EXISTS counter (n INTEGER)");
      if (spinOnBusy) {
        s.execute("PRAGMA busy_timeout=0");
      }
    } catch (SQLException | RuntimeException e) {
      c.close();
      throw e;
    }
    return new LiveSqlite(file, Counter.start(c, "SQLite " + file, pauseMillis,
        spinOnBusy ? LiveSqlite::busy : e -> false));
  }

  /** True for SQLite's SQLITE_BUSY (5), extended codes included. */
  private static boolean busy(SQLException e) {
    return (e.getErrorCode() & 0xff) == 5 || String.valueOf(e.getMessage()).contains("SQLITE_BUSY");
  }

  /** When each number was issued and acknowledged. */
  public AckLog acks() {
    return counter.acks();
  }

  /** The writer. */
  public Counter counter() {
    return counter;
  }

  /** The highest number in the counter table of the database {@code file} (a copy, say), 0 when empty. */
  public static long maxCounter(Path file) throws SQLException {
    try (Connection c = open(file); Statement s = c.createStatement();
        ResultSet r = s.executeQuery("SELECT coalesce(max(n), 0) FROM counter")) {
      r.next();
      return r.getLong(1);
    }
  }

  /** The number of rows in the counter table of the database {@code file} (a copy, say). */
  public static long count(Path file) throws SQLException {
    try (Connection c = open(file); Statement s = c.createStatement();
        ResultSet r = s.executeQuery("SELECT count(*) FROM counter")) {
      r.next();
      return r.getLong(1);
    }
  }

  /** {@code PRAGMA integrity_check} of the database {@code file}: "ok" when it is sound. */
  public static String integrityCheck(Path file) throws SQLException {
    try (Connection c = open(file); Statement s = c.createStatement();
        ResultSet r = s.executeQuery("PRAGMA integrity_check")) {
      StringBuilder out = new StringBuilder();
      while (r.next()) {
        out.append(out.length() == 0 ? "" : "\n").append(r.getString(1));
      }
      return out.toString();
    }
  }

  /** Stops the writer (failing if it had failed) and closes its connection. */
  @Override
  public void close() throws InterruptedException {
    counter.stop();
  }

  @Override
  public String toString() {
    return "SQLite " + file + " (" + counter.acks() + ")";
  }

  private static Connection open(Path file) throws SQLException {
    return DriverManager.getConnection("jdbc:sqlite:" + file.toAbsolutePath());
  }
}
