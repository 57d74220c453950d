package dev.shade.requestor.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.testing.ChildJvm;
import dev.shade.testing.Command;
import dev.shade.testing.Tools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The SQLite writer against a real database and a writer in another process: a copy of the
 * files taken while frozen is intact and holds exactly the transactions committed before, the
 * live writer goes on after the thaw, readers are never blocked.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SqliteWriterTest {
  /*
   * The copy is made by cp in another process, never by this JVM: closing any descriptor of the
   * database file in this process would drop the POSIX locks the writer's connections hold.
   */
  private static final Duration ACK_WAIT = Duration.ofSeconds(30);

  @TempDir Path dir;

  private Path createDb(String journalMode) throws Exception {
    Path db = dir.resolve("app.db");
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + db); Statement st = c.createStatement()) {
      st.execute("PRAGMA journal_mode = " + journalMode);
      st.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, txn INTEGER NOT NULL, pad BLOB)");
    }
    return db;
  }

  @ParameterizedTest
  @ValueSource(strings = {"wal", "delete"})
  void freeze_copyIsIntactWithExactlyTheCommittedTransactions(String journalMode) throws Exception {
    Tools.require("sqlite3", "sqlite3", "cp", "coreutils");
    Path db = createDb(journalMode);
    Path copy = Files.createDirectories(dir.resolve("copy"));
    try (ChildJvm child = ChildJvm.start(dir, SqliteInserter.class, "insert", db.toString());
        Writer writer = Writers.parse("sqlite:" + db)) {
      assertTrue(child.awaitAck(200, ACK_WAIT), child::output);
      Map<String, Object> facts = writer.identify();
      assertEquals(journalMode, facts.get("journalMode"));
      writer.prepare();

      long t0 = System.nanoTime();
      writer.freeze(Duration.ofSeconds(5));
      long freezeMillis = (System.nanoTime() - t0) / 1_000_000;
      int committed;
      try {
        List<String> files = journalMode.equals("wal") && Files.exists(Path.of(db + "-wal"))
            ? List.of(db.toString(), db + "-wal") : List.of(db.toString());
        Command cp = Command.run(concat(List.of("cp", "--"), files, List.of(copy.toString())), null);
        cp.requireSuccess();
        assertTrue(Files.notExists(Path.of(db + "-journal")) || Files.size(Path.of(db + "-journal")) == 0,
            "no rollback journal with content while frozen");
        // readers go on: sqlite3 without a busy timeout fails at once on a lock
        String read = Command.run("sqlite3", db.toString(), "SELECT count(*) FROM t").requireSuccess().strip();
        assertTrue(Long.parseLong(read) > 0, read);
        // no commit gets through while frozen (a late ACK of an earlier commit may still arrive)
        Thread.sleep(300);
        committed = child.lastAck();
        Thread.sleep(500);
        assertEquals(committed, child.lastAck(), "no transaction commits while the writer holds the lock");
      } finally {
        writer.thaw();
      }
      WriterMetadata meta = writer.postSnapshot();
      assertEquals(journalMode, meta.facts().get("journalMode"));
      assertTrue(meta.files().isEmpty());
      assertTrue(Long.parseLong(meta.facts().get("pageCount")) > 0, meta::toString);
      if (journalMode.equals("wal")) {
        assertTrue(meta.facts().containsKey("checkpoint"), meta::toString);
      }
      assertTrue(child.awaitAck(committed + 50, ACK_WAIT), () -> "the writer goes on after the thaw: " + child.output());
      System.out.printf("sqlite %s: freeze took %d ms (%s), %d transactions in the copy%n", journalMode, freezeMillis,
          meta.facts(), committed);

      Path copied = copy.resolve("app.db");
      try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + copied); Statement st = c.createStatement()) {
        assertEquals("ok", one(st, "PRAGMA integrity_check"));
        assertEquals(Long.toString((long) committed * SqliteInserter.ROWS_PER_TXN), one(st, "SELECT count(*) FROM t"));
        assertEquals(Integer.toString(committed), one(st, "SELECT count(DISTINCT txn) FROM t"));
        assertEquals(Integer.toString(committed), one(st, "SELECT max(txn) FROM t"));
      }
    }
  }

  @Test
  void freeze_longWriteTransaction_failsWithinTheLimit() throws Exception {
    Path db = createDb("wal");
    try (ChildJvm child = ChildJvm.start(dir, SqliteInserter.class, "hold", db.toString(), "8000");
        Writer writer = Writers.parse("sqlite:" + db)) {
      assertTrue(child.awaitLine("HELD", ACK_WAIT) != null, child::output);
      writer.prepare();
      long t0 = System.nanoTime();
      IOException e = assertThrows(IOException.class, () -> writer.freeze(Duration.ofSeconds(1)));
      long millis = (System.nanoTime() - t0) / 1_000_000;
      assertTrue(e.getMessage().contains("cannot take the write lock"), e::getMessage);
      assertTrue(millis < 1000, "gave up within the limit: " + millis + " ms");
      writer.thaw(); // after a failed freeze: nothing held, fine
      writer.abort();
    }
  }

  @Test
  void abort_fromAnotherThread_interruptsAWaitingFreeze() throws Exception {
    Path db = createDb("wal");
    try (ChildJvm child = ChildJvm.start(dir, SqliteInserter.class, "hold", db.toString(), "15000");
        Writer writer = Writers.parse("sqlite:" + db)) {
      assertTrue(child.awaitLine("HELD", ACK_WAIT) != null, child::output);
      writer.prepare();
      long t0 = System.nanoTime();
      CompletableFuture<Void> freeze = CompletableFuture.runAsync(() -> {
        try {
          writer.freeze(Duration.ofSeconds(20));
        } catch (IOException ex) {
          throw new java.io.UncheckedIOException(ex);
        }
      });
      Thread.sleep(300);
      writer.abort();
      Throwable t = assertThrows(java.util.concurrent.ExecutionException.class, () -> freeze.get(5, TimeUnit.SECONDS));
      long millis = (System.nanoTime() - t0) / 1_000_000;
      assertTrue(millis < 5000, "the freeze ended soon after the abort: " + millis + " ms");
      assertTrue(String.valueOf(t.getCause()).contains("write lock"), () -> String.valueOf(t.getCause()));
      writer.thaw();
    }
  }

  @Test
  void abort_afterFreeze_releasesTheWriters() throws Exception {
    Path db = createDb("wal");
    try (ChildJvm child = ChildJvm.start(dir, SqliteInserter.class, "insert", db.toString());
        Writer writer = Writers.parse("sqlite:" + db)) {
      assertTrue(child.awaitAck(20, ACK_WAIT), child::output);
      writer.prepare();
      writer.freeze(Duration.ofSeconds(5));
      Thread.sleep(200);
      int frozenAt = child.lastAck();
      writer.abort();
      assertTrue(child.awaitAck(frozenAt + 20, ACK_WAIT), child::output);
    }
  }

  private static String one(Statement st, String sql) throws Exception {
    try (ResultSet rs = st.executeQuery(sql)) {
      rs.next();
      return rs.getString(1);
    }
  }

  @SafeVarargs
  private static List<String> concat(List<String>... parts) {
    List<String> all = new java.util.ArrayList<>();
    for (List<String> p : parts) {
      all.addAll(p);
    }
    return all;
  }
}
