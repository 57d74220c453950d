package dev.shade.offhost.drill;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.offhost.backup.BackupProgress;
import dev.shade.offhost.backup.Catalog;
import dev.shade.offhost.tape.LibraryConfig;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The drill's parts that need no root: writer metadata put back into a copy, paths of the
 * production host mapped into the copy, the SQLite check on real database files (intact and
 * damaged), the specs, and a drill that finds no backup, recorded as failed at its first step.
 */
class DrillPartsTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path tmp;

  private static WriterFiles metadata() throws IOException {
    JsonNode w = JSON.readTree("""
        [{"writer": "postgres:host=127.0.0.1 port=5432", "files": [
            {"path": "pgdata/backup_label", "content": "START WAL LOCATION: 0/2000028\\n", "mode": 384}],
          "facts": {"mountPoint": "/srv/pg", "dataDirectory": "/srv/pg/pgdata"}},
         {"writer": "fs:/srv/app/data", "files": [], "facts": {}}]
        """);
    return WriterFiles.of(w);
  }

  @Test
  void writerFiles_areWrittenWithTheirModeUnderTheCopysRoot() throws IOException {
    Path root = Files.createDirectories(tmp.resolve("mnt"));
    Files.createDirectories(root.resolve("pgdata"));
    WriterFiles m = metadata();
    assertEquals(1, m.fileCount());
    assertEquals(List.of("pgdata/backup_label"), m.writeTo(root));
    Path label = root.resolve("pgdata/backup_label");
    assertEquals("START WAL LOCATION: 0/2000028\n", Files.readString(label));
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(label)));
    assertEquals(Optional.of("pgdata"), m.directoryOf("postgres", "backup_label"));
    assertEquals(Optional.empty(), m.directoryOf("sqlite", "backup_label"));
  }

  @Test
  void writerFiles_outsideTheCopy_orIntoAMissingDirectory_areRefused() throws IOException {
    Path root = Files.createDirectories(tmp.resolve("mnt"));
    for (String path : List.of("../escape", "/etc/passwd", "a/../../escape")) {
      WriterFiles m = WriterFiles.of(JSON.readTree("[{\"writer\": \"x\", \"files\": [{\"path\": \"" + path
          + "\", \"content\": \"\", \"mode\": 384}]}]"));
      IOException e = assertThrows(IOException.class, () -> m.writeTo(root));
      assertTrue(e.getMessage().contains("outside the copy"), e.getMessage());
    }
    IOException e = assertThrows(IOException.class, () -> metadata().writeTo(root));
    assertTrue(e.getMessage().contains("pgdata") && e.getMessage().contains("is not a directory of the copy"),
        e.getMessage());
    assertEquals(0, WriterFiles.of(null).fileCount());
    assertEquals(0, WriterFiles.of(JSON.readTree("{\"attributes\": {}}")).fileCount());
  }

  @Test
  void productionPaths_mapIntoTheCopy_byTheLongestKnownMountPoint() throws IOException {
    WriterFiles m = metadata();
    assertEquals("pgdata", m.relative("pgdata"));
    assertEquals("pgdata", m.relative("/srv/pg/pgdata"));
    assertEquals("app.db", m.relative("/srv/app/data/app.db"));
    assertEquals("srv/other/x.db", m.relative("/srv/other/x.db"), "unknown: relative to the root");
  }

  @Test
  void sqliteCheck_passesAnIntactDatabase_countsRows_andFailsADamagedOne() throws Exception {
    Path root = Files.createDirectories(tmp.resolve("mnt"));
    Path db = root.resolve("app.db");
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + db); Statement s = c.createStatement()) {
      s.execute("PRAGMA page_size=4096");
      s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
      s.execute("CREATE INDEX t_v ON t(v)");
      s.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)"
          + " INSERT INTO t (v) SELECT printf('value %08d', i) FROM n");
    }
    DatabaseCheck check = DatabaseCheck.parse("sqlite:app.db");
    DatabaseCheck.Verdict ok = check.run(root, WriterFiles.of(null), tmp, List.of("t"));
    assertTrue(ok.ok(), ok.summary());
    assertEquals("PRAGMA integrity_check of app.db: ok, t: 3000 rows", ok.summary());

    // a page in the middle overwritten with garbage: the b-tree no longer checks out
    try (RandomAccessFile f = new RandomAccessFile(db.toFile(), "rw")) {
      long pages = f.length() / 4096;
      f.seek(pages / 2 * 4096 + 100);
      f.write(new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x13, 0x37, 0x13, 0x37});
    }
    DatabaseCheck.Verdict bad;
    try {
      bad = check.run(root, WriterFiles.of(null), tmp, List.of());
    } catch (IOException e) {
      bad = new DatabaseCheck.Verdict(false, e.getMessage()); // SQLITE_CORRUPT before the pragma finished
    }
    assertFalse(bad.ok(), bad.summary());

    IOException missing = assertThrows(IOException.class,
        () -> DatabaseCheck.parse("sqlite:nope.db").run(root, WriterFiles.of(null), tmp, List.of()));
    assertTrue(missing.getMessage().contains("no SQLite database nope.db in the copy"), missing.getMessage());
  }

  @Test
  void specs_areParsedAndBadOnesRefusedWithTheValue() {
    assertInstanceOf(PostgresCheck.class, DatabaseCheck.parse("postgres"));
    assertInstanceOf(PostgresCheck.class, DatabaseCheck.parse("postgres:/srv/pg/pgdata"));
    assertInstanceOf(SqliteCheck.class, DatabaseCheck.parse("sqlite:a/b.db"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DatabaseCheck.parse("mysql:x"));
    assertTrue(e.getMessage().contains("mysql:x"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> DatabaseCheck.parse("sqlite"));
    e = assertThrows(IllegalArgumentException.class,
        () -> new DrillService.Request("db", List.of(), List.of("t; DROP TABLE x"), tmp, false));
    assertTrue(e.getMessage().contains("t; DROP TABLE x"), e.getMessage());
  }

  @Test
  void drillOfAVolumeWithoutBackup_failsAtFind_isRecorded_andLeavesNothing() throws IOException {
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(tmp.resolve("vtl"), LibraryConfig.of(1, 16L << 20));
        Catalog cat = Catalog.open(lib.directory())) {
      Path scratch = Files.createDirectories(tmp.resolve("scratch"));
      List<Catalog.DrillStep> heard = new ArrayList<>();
      Catalog.DrillRecord d = DrillService.run(lib, cat, new DrillService.Request("db", List.of("sqlite:a.db"),
          List.of(), scratch, false), BackupProgress.NONE, heard::add);
      assertEquals(Catalog.FAILED, d.outcome());
      assertEquals("find", d.failedStep());
      assertTrue(d.error().contains("no successful backup of volume db"), d.error());
      assertNull(d.snapshot());
      assertEquals(List.of("find", "restore", "attach", "fsck", "mount", "metadata", "check:sqlite:a.db"),
          heard.stream().map(Catalog.DrillStep::name).toList());
      assertEquals(DrillService.SKIPPED, heard.get(1).outcome());
      assertEquals(d.id(), cat.drills("db").get(0).id());
      try (var left = Files.list(scratch)) {
        assertEquals(0, left.count());
      }
      // its record has nowhere to go: no backup gives it a pool, and the library has no labelled cartridge
      DrillService.Outcome again = DrillService.run(lib, cat, new DrillService.Request("db", List.of(), List.of(),
          scratch, false), BackupProgress.NONE, s -> { }, n -> { });
      assertEquals(List.of(), again.records().written());
      assertTrue(again.records().notWritten().get(0).contains("2 drills could not go on tape")
          && again.records().notWritten().get(0).contains("no labelled cartridge"), again.records().toString());
    }
  }
}
