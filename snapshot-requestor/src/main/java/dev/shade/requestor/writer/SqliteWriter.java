package dev.shade.requestor.writer;

import java.io.IOException;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.sqlite.SQLiteConfig;
import org.sqlite.SQLiteOpenMode;

/**
 * The writer of an SQLite database, {@code sqlite:DBFILE}: holds every other writer out with a
 * write transaction of its own ({@code BEGIN IMMEDIATE}) from freeze to thaw, and in WAL mode
 * folds the log into the main file first, so the main file and its {@code -wal} on the snapshot
 * hold the same committed transactions and nothing is half written. Readers are never blocked.
 *
 * <p>Other writers of the database wait for the thaw in their busy handler: their
 * {@code busy_timeout} must be longer than the freeze (the lease's limit, 5 s by default), or
 * they get {@code SQLITE_BUSY} while the snapshot is taken.
 *
 * <p>Thread-safety as {@link Writer} requires: the phases run on one thread. sqlite-jdbc
 * connections are not for concurrent use, so every use of them holds {@link #lock}; only
 * {@link #abort} may come from another thread while {@link #freeze} runs, and then interrupts
 * the waiting statement ({@code sqlite3_interrupt}, which is safe from any thread) instead of
 * touching the connection.
 */
final class SqliteWriter implements Writer {
  /*
   * Which connection does what, and why:
   *
   * - holder: BEGIN IMMEDIATE takes the write lock (RESERVED in rollback-journal modes, the
   *   WAL write lock in WAL mode) and keeps it until the thaw's ROLLBACK. While it is held no
   *   other connection can commit, and no commit is half done: in rollback-journal modes a
   *   writer holds RESERVED from its first write to the end of its commit, so once we have it
   *   the main file holds only whole transactions and there is no hot journal.
   *
   * - checkpointer (WAL mode only): SQLite refuses a checkpoint on a connection that has a
   *   transaction open (SQLITE_LOCKED, "database table is locked"; checked with sqlite3 3.40),
   *   so the checkpoint runs on a second connection. It is PASSIVE: FULL, RESTART and TRUNCATE
   *   wait for the write lock, which the holder has. A PASSIVE checkpoint copies every frame no
   *   reader still needs into the main file; frames it cannot copy stay in the -wal, which
   *   nobody can restart or truncate while we hold the write lock, so main file + -wal are
   *   consistent together whatever the checkpoint managed (WAL recovery replays the -wal over
   *   the main file). prepare runs one PASSIVE checkpoint as well, which blocks nobody and
   *   shortens the one inside the freeze.
   *
   * No file of the database is ever opened outside SQLite: closing any descriptor of the file
   * drops every POSIX lock this process holds on it, including the holder's. So this writer does
   * not fsync the files itself; committed pages of other processes that are still in the page
   * cache reach the disk by the filesystem freeze (fs:MOUNTPOINT) that follows it.
   */
  private static final Logger LOG = LoggerFactory.getLogger(SqliteWriter.class);
  /** Pause between two tries of the write lock in freeze. */
  static final long RETRY_NANOS = 20_000;
  /** How long prepare and identify wait for a lock (busy_timeout). */
  private static final int BUSY_TIMEOUT_MILLIS = 5000;

  /** The spec, {@code sqlite:} and the database file. */
  private final String spec;
  /** The database file. */
  private final Path db;
  /** Held by whichever thread uses the connections. */
  private final ReentrantLock lock = new ReentrantLock();
  /** Takes and holds the write lock; null until prepare and after close. Guarded by lock. */
  private Connection holder;
  /** Runs the WAL checkpoints; null unless in WAL mode. Guarded by lock. */
  private Connection checkpointer;
  /** The statement that may be waiting for the write lock now, for {@link #abort}. */
  private volatile Statement waiting;
  /** Set by {@link #abort} (from any thread): a freeze waiting for the write lock gives up. */
  private volatile boolean aborted;
  /** True while the holder's transaction is open. Guarded by lock. */
  private boolean held;
  /** The journal mode prepare found (lower case, e.g. {@code wal}), null before. */
  private volatile String journalMode;
  /** Facts of the freeze for postSnapshot: the checkpoint's result and how long it took. Guarded by lock. */
  private final Map<String, String> freezeFacts = new LinkedHashMap<>();

  SqliteWriter(String spec, Path db) {
    this.spec = spec;
    this.db = db;
  }

  @Override
  public String spec() {
    return spec;
  }

  /** Facts: {@code file}, {@code journalMode}, {@code pageSize}, {@code pageCount}, {@code sqliteVersion}. */
  @Override
  public Map<String, Object> identify() throws IOException {
    lock.lock();
    try (Connection c = open(BUSY_TIMEOUT_MILLIS)) {
      Map<String, Object> facts = new LinkedHashMap<>();
      facts.put("file", db.toString());
      facts.put("journalMode", pragma(c, "journal_mode"));
      facts.put("pageSize", Long.parseLong(pragma(c, "page_size")));
      facts.put("pageCount", Long.parseLong(pragma(c, "page_count")));
      facts.put("sqliteVersion", query(c, "SELECT sqlite_version()"));
      return facts;
    } catch (SQLException e) {
      throw error("identify", e);
    } finally {
      lock.unlock();
    }
  }

  /** Opens the connections and, in WAL mode, runs a PASSIVE checkpoint (which blocks no one). */
  @Override
  public void prepare() throws IOException {
    lock.lock();
    try {
      if (holder == null) {
        holder = open(BUSY_TIMEOUT_MILLIS);
      }
      journalMode = pragma(holder, "journal_mode").toLowerCase(java.util.Locale.ROOT);
      if (journalMode.equals("wal")) {
        if (checkpointer == null) {
          checkpointer = open(BUSY_TIMEOUT_MILLIS);
        }
        String r = checkpoint();
        LOG.debug("{}: prepare checkpoint (busy, log frames, checkpointed): {}", spec, r);
      }
    } catch (SQLException e) {
      throw error("prepare", e);
    } finally {
      lock.unlock();
    }
  }

  /**
   * Takes the write lock ({@code BEGIN IMMEDIATE}, waiting at most half of {@code limit} for
   * writers in the middle of a transaction), then in WAL mode checkpoints what it can. Fails
   * when the lock cannot be had in time or {@link #abort} came first.
   */
  @Override
  public void freeze(Duration limit) throws IOException {
    lock.lock();
    try {
      if (holder == null) {
        throw new IllegalStateException(spec + ": freeze before prepare");
      }
      long start = System.nanoTime();
      long waitMillis = Math.max(1, limit.toMillis() / 2);
      takeWriteLock(start + waitMillis * 1_000_000, waitMillis);
      long locked = System.nanoTime();
      freezeFacts.clear();
      freezeFacts.put("lockMillis", Long.toString((locked - start) / 1_000_000));
      if (checkpointer != null) {
        String r = checkpoint();
        freezeFacts.put("checkpoint", r);
        freezeFacts.put("checkpointMillis", Long.toString((System.nanoTime() - locked) / 1_000_000));
      }
    } catch (SQLException e) {
      throw error("freeze", e);
    } finally {
      lock.unlock();
    }
  }

  /**
   * {@code BEGIN IMMEDIATE}, tried again every {@value #RETRY_NANOS} ns until {@code deadline}
   * ({@link System#nanoTime}) or an abort. Our own loop and not SQLite's busy handler: an
   * {@code sqlite3_interrupt} does not end the busy handler's sleeps, and an abort must. The
   * retry is short because SQLite's locks are not queued: a writer committing back to back
   * frees the lock only for the few microseconds between its transactions, and a freeze that
   * looked every millisecond lost the race for up to 0.4 s (measured), all of it frozen time.
   */
  private void takeWriteLock(long deadline, long waitMillis) throws IOException, SQLException {
    try (Statement st = holder.createStatement()) {
      st.execute("PRAGMA busy_timeout = 0");
      waiting = st;
      try {
        while (true) {
          if (aborted) {
            throw new IOException(spec + ": freeze aborted while waiting for the write lock (BEGIN IMMEDIATE)");
          }
          try {
            st.execute("BEGIN IMMEDIATE");
            held = true;
            return;
          } catch (SQLException e) {
            if (!isBusy(e)) {
              throw e;
            }
            if (System.nanoTime() - deadline >= 0) {
              throw new IOException(spec + ": cannot take the write lock (BEGIN IMMEDIATE) within " + waitMillis
                  + " ms: another connection holds a long write transaction (" + e.getMessage() + ")", e);
            }
          }
          java.util.concurrent.locks.LockSupport.parkNanos(RETRY_NANOS);
          if (Thread.interrupted()) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException(spec + ": interrupted while waiting for the write lock");
          }
        }
      } finally {
        waiting = null;
      }
    }
  }

  /** {@code PRAGMA wal_checkpoint(PASSIVE)} on the checkpointer: "busy,log,checkpointed". */
  private String checkpoint() throws SQLException {
    try (Statement st = checkpointer.createStatement();
        ResultSet rs = st.executeQuery("PRAGMA wal_checkpoint(PASSIVE)")) {
      rs.next();
      return rs.getInt(1) + "," + rs.getInt(2) + "," + rs.getInt(3);
    }
  }

  /** Ends the held transaction ({@code ROLLBACK}: it wrote nothing); nothing when none is held. */
  @Override
  public void thaw() throws IOException {
    lock.lock();
    try {
      release();
    } catch (SQLException e) {
      throw error("thaw", e);
    } finally {
      lock.unlock();
    }
  }

  private void release() throws SQLException {
    if (held && holder != null) {
      try (Statement st = holder.createStatement()) {
        st.execute("ROLLBACK");
      }
      held = false;
    }
  }

  /**
   * No files; facts {@code journalMode}, {@code pageSize}, {@code pageCount}, and from the
   * freeze {@code lockMillis} (waiting for the write lock), {@code checkpoint} (busy, log
   * frames, frames checkpointed) and {@code checkpointMillis}.
   */
  @Override
  public WriterMetadata postSnapshot() throws IOException {
    lock.lock();
    try {
      Map<String, String> facts = new LinkedHashMap<>();
      facts.put("journalMode", journalMode == null ? "" : journalMode);
      if (holder != null) {
        facts.put("pageSize", pragma(holder, "page_size"));
        facts.put("pageCount", pragma(holder, "page_count"));
      }
      facts.putAll(freezeFacts);
      return new WriterMetadata(spec, java.util.List.of(), facts);
    } catch (SQLException e) {
      throw error("postSnapshot", e);
    } finally {
      lock.unlock();
    }
  }

  /**
   * Interrupts a freeze still waiting for the write lock (from any thread); when no phase is
   * running, ends the held transaction and closes the connections.
   */
  @Override
  public void abort() {
    aborted = true;
    Statement st = waiting;
    if (st != null) {
      try {
        st.cancel(); // sqlite3_interrupt: safe from another thread; ends a running checkpoint
      } catch (SQLException | RuntimeException e) {
        LOG.debug("{}: interrupting the freeze: {}", spec, e.toString());
      }
    }
    if (lock.tryLock()) {
      try {
        closeAll();
      } finally {
        lock.unlock();
      }
    }
  }

  @Override
  public void close() {
    lock.lock();
    try {
      closeAll();
    } finally {
      lock.unlock();
    }
  }

  private void closeAll() {
    try {
      release();
    } catch (SQLException | RuntimeException e) {
      LOG.warn("{}: cannot end the held transaction: {}", spec, e.toString());
    }
    held = false;
    holder = closeQuietly(holder);
    checkpointer = closeQuietly(checkpointer);
  }

  private Connection closeQuietly(Connection c) {
    if (c != null) {
      try {
        c.close();
      } catch (SQLException | RuntimeException e) {
        LOG.debug("{}: closing a connection: {}", spec, e.toString());
      }
    }
    return null;
  }

  /** A connection to the existing database (never creates it), waiting {@code busyMillis} for locks. */
  private Connection open(int busyMillis) throws SQLException {
    SQLiteConfig cfg = new SQLiteConfig();
    cfg.resetOpenMode(SQLiteOpenMode.CREATE);
    cfg.setBusyTimeout(busyMillis);
    return cfg.createConnection("jdbc:sqlite:" + db);
  }

  private static String pragma(Connection c, String name) throws SQLException {
    return query(c, "PRAGMA " + name);
  }

  private static String query(Connection c, String sql) throws SQLException {
    try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
      rs.next();
      return rs.getString(1);
    }
  }

  private static boolean isBusy(SQLException e) {
    String m = String.valueOf(e.getMessage());
    return m.contains("SQLITE_BUSY") || m.contains("database is locked");
  }

  private IOException error(String phase, SQLException e) {
    return new IOException(spec + ": " + phase + " failed on " + db + ": " + e.getMessage(), e);
  }

  @Override
  public String toString() {
    return spec;
  }
}
