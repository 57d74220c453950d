package dev.shade.requestor.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.shade.nativeio.FsFreeze;
import dev.shade.testing.Command;
import dev.shade.testing.LoopFilesystem;
import dev.shade.testing.PostgresCluster;
import dev.shade.testing.Tools;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The postgres writer against a real PostgreSQL cluster (initdb as postgres, TCP on 127.0.0.1,
 * WAL archived to a folder): an atomic copy of the data directory taken while its filesystem is
 * frozen after the writer's freeze, with the writer's backup_label put back, starts without an
 * archive and holds exactly the rows committed before the freeze; backup-complete cleans the
 * archive; stop and start.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class PostgresWriterTest {
  /** Rows committed before the backup starts. */
  private static final int BEFORE = 100;

  @TempDir Path dir;
  /** The cluster under test. */
  private PostgresCluster pg;
  /** Its WAL archive. */
  private Path archive;

  @BeforeEach
  void startCluster() throws Exception {
    Path base = Files.createDirectories(dir.resolve("pg"));
    archive = base.resolve("archive");
    pg = PostgresCluster.create(base, "wal_level=replica", "archive_mode=on",
        "archive_command=test ! -f " + archive + "/%f && cp %p " + archive + "/%f", "fsync=off", "max_wal_size=64MB");
    Files.createDirectories(archive);
    PostgresCluster.chown(archive);
    pg.psql("CREATE TABLE t(id bigserial PRIMARY KEY, phase text NOT NULL, pad text)");
    pg.psql("INSERT INTO t(phase, pad) SELECT 'before', repeat('x', 200) FROM generate_series(1, " + BEFORE + ")");
  }

  @AfterEach
  void stopCluster() throws Exception {
    if (pg != null) {
      pg.close();
    }
  }

  /**
   * What a snapshot set does, by hand: the writer's prepare and freeze (the backup starts and
   * ends), the filesystem frozen, the data directory copied while it is frozen (an atomic copy,
   * as a snapshot is), thawed. The copy with the writer's backup_label put back starts without
   * any WAL archive and holds exactly the rows committed before the filesystem froze.
   */
  @Test
  void backup_anAtomicCopyWithTheLabelStartsWithoutAnArchive_andHoldsWhatWasCommittedBeforeTheFreeze() throws Exception {
    Tools.require("cp", "coreutils", "findmnt", "util-linux");
    pg.close();
    pg = null;
    try (LoopFilesystem fs = LoopFilesystem.create(Files.createDirectories(dir.resolve("fs")), 256L << 20)) {
      PostgresCluster onFs = PostgresCluster.create(fs.mountPoint().resolve("pg"), "wal_level=replica", "archive_mode=on",
          "archive_command=test ! -f " + archive + "/%f && cp %p " + archive + "/%f", "max_wal_size=64MB");
      pg = onFs;
      pg.psql("CREATE TABLE t(id bigserial PRIMARY KEY, phase text NOT NULL, pad text)");
      pg.psql("INSERT INTO t(phase, pad) SELECT 'before', repeat('x', 200) FROM generate_series(1, " + BEFORE + ")");
      Path copy = dir.resolve("copy");
      AtomicBoolean stop = new AtomicBoolean();
      AtomicLong inserted = new AtomicLong();
      Thread inserter = new Thread(() -> insertLoop(stop, inserted), "inserter");
      WriterMetadata meta;
      long ackedAtFreeze;
      try (Writer writer = Writers.parse("postgres:" + pg.conninfo() + " shade.archive=" + archive)) {
        Map<String, Object> facts = writer.identify();
        assertTrue((Integer) facts.get("serverVersionNum") >= 150000, facts::toString);
        assertEquals(pg.dataDirectory().toRealPath().toString(), facts.get("dataDirectory"));
        assertEquals(fs.mountPoint().toString(), facts.get("mountPoint"));
        assertEquals(List.of(), facts.get("tablespaces"));

        // one WAL file archived before the backup: backup-complete must remove it
        String first = pg.psql("SELECT pg_walfile_name(pg_current_wal_lsn())");
        pg.psql("SELECT pg_switch_wal()");
        waitFor(() -> Files.exists(archive.resolve(first)), "the archiver to archive " + first);
        inserter.start();
        waitFor(() -> inserted.get() > 50, "the inserter to get going");
        writer.prepare();
        writer.freeze(Duration.ofSeconds(5)); // the backup ends here, before the filesystem freezes
        FsFreeze.freeze(fs.mountPoint());
        try {
          ackedAtFreeze = inserted.get();
          copyDataDirectory(copy); // as a snapshot taken now catches it
        } finally {
          FsFreeze.thaw(fs.mountPoint());
        }
        writer.thaw();
        meta = writer.postSnapshot();
      } finally {
        stop.set(true);
        inserter.join(30_000);
      }

      // the metadata
      assertEquals(1, meta.files().size(), meta::toString);
      WriterMetadata.File label = meta.files().get(0);
      assertEquals("pg/data/backup_label", label.path());
      assertEquals(0600, label.mode());
      assertTrue(label.content().contains("START WAL LOCATION: " + meta.facts().get("startLsn")), label::content);
      assertTrue(label.content().contains("LABEL: shade "), label::content);
      assertEquals("1", meta.facts().get("timeline"));
      assertEquals(fs.mountPoint().toString(), meta.facts().get("mountPoint"));

      // the copy, with its backup_label and nothing else, recovers: the backup's end is in its own WAL
      Files.deleteIfExists(copy.resolve("postmaster.pid"));
      Path labelFile = copy.resolve("backup_label");
      Files.writeString(labelFile, label.content(), StandardCharsets.UTF_8);
      Files.setPosixFilePermissions(labelFile, PosixFilePermissions.fromString("rw-------"));
      Command.run("chown", "-R", PostgresCluster.USER, copy.toString()).requireSuccess();
      int port2 = PostgresCluster.freePort();
      Path log2 = dir.resolve("copy.log");
      pg.start(copy, port2, List.of("archive_mode=off"), log2);
      try {
        waitFor(() -> {
          try {
            return pg.psql(port2, "SELECT pg_is_in_recovery()").equals("f");
          } catch (Exception | AssertionError e) {
            return false;
          }
        }, "the copy to finish recovery");
        assertTrue(Files.exists(copy.resolve("backup_label.old")) && !Files.exists(labelFile),
            "the copy recovered from the backup label (it renames it to backup_label.old)");
        long before = Long.parseLong(pg.psql(port2, "SELECT count(*) FROM t WHERE phase = 'before'"));
        long during = Long.parseLong(pg.psql(port2, "SELECT count(*) FROM t WHERE phase = 'during'"));
        assertEquals(BEFORE, before, "the rows committed before prepare are in the copy");
        // one inserting session: every acknowledged insert is there, and at most the one in flight besides
        assertTrue(during >= ackedAtFreeze && during <= ackedAtFreeze + 1,
            "rows in the copy " + during + ", acknowledged when the filesystem froze " + ackedAtFreeze);
        System.out.printf("postgres: copy recovered with %d rows, %d acknowledged at the freeze, of %d; metadata %s%n",
            during, ackedAtFreeze, inserted.get(), meta.facts());
      } finally {
        pg.stop(copy, "immediate");
      }

      // backup-complete: the archive keeps the WAL from the backup's start on
      String startWal = meta.facts().get("startWalFile");
      assertTrue(walFiles().stream().anyMatch(f -> f.compareTo(startWal) < 0), "older WAL in the archive before");
      try (Writer later = Writers.parse("postgres:" + pg.conninfo() + " shade.archive=" + archive)) {
        later.backupComplete(meta);
      }
      List<String> left = walFiles();
      assertTrue(left.contains(startWal), () -> "the first WAL file the snapshot needs stays: " + left);
      assertTrue(left.stream().allMatch(f -> f.compareTo(startWal) >= 0), () -> "older WAL is gone: " + left);
      pg.close();
      pg = null;
    }
  }

  @Test
  void abort_endsTheBackupWithItsSession() throws Exception {
    try (Writer writer = Writers.parse("postgres:" + pg.conninfo())) {
      writer.prepare();
      assertEquals("1", pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'shade'"));
      writer.abort();
      waitFor(() -> {
        try {
          return pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'shade'").equals("0");
        } catch (Exception e) {
          return false;
        }
      }, "the session to end");
    }
    // a new backup can start and stop
    try (Writer writer = Writers.parse("postgres:" + pg.conninfo())) {
      writer.prepare();
      writer.freeze(Duration.ofSeconds(5));
      writer.thaw();
      assertFalse(writer.postSnapshot().files().isEmpty());
      writer.backupComplete(WriterMetadata.none(writer.spec())); // no archive given: does nothing
    }
  }

  @Test
  void backupLabel_pathIsRelativeToTheFilesystemOfTheDataDirectory() throws Exception {
    pg.close();
    pg = null;
    try (LoopFilesystem fs = LoopFilesystem.create(Files.createDirectories(dir.resolve("fs")), 96L << 20)) {
      PostgresCluster onFs = PostgresCluster.create(fs.mountPoint().resolve("pg"), "wal_level=replica", "fsync=off");
      try (Writer writer = Writers.parse("postgres:" + onFs.conninfo())) {
        assertEquals(fs.mountPoint().toString(), writer.identify().get("mountPoint"));
        writer.prepare();
        writer.freeze(Duration.ofSeconds(5));
        writer.thaw();
        WriterMetadata meta = writer.postSnapshot();
        assertEquals("pg/data/backup_label", meta.files().get(0).path());
        assertEquals(fs.mountPoint().toString(), meta.facts().get("mountPoint"));
      } finally {
        onFs.close();
      }
    }
  }

  @Test
  void tablespace_isIdentifiedAndMapped() throws Exception {
    Path location = Files.createDirectories(pg.dir().resolve("ts"));
    PostgresCluster.chown(location);
    pg.psql("CREATE TABLESPACE ts LOCATION '" + location + "'");
    String oid = pg.psql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts'");
    try (Writer writer = Writers.parse("postgres:" + pg.conninfo())) {
      Map<String, Object> facts = writer.identify();
      assertEquals(List.of(Map.of("name", "ts", "location", location.toString(), "mountPoint",
          facts.get("mountPoint"))), facts.get("tablespaces"), facts::toString);
      writer.prepare();
      writer.freeze(Duration.ofSeconds(5));
      writer.thaw();
      WriterMetadata meta = writer.postSnapshot();
      assertEquals(2, meta.files().size(), meta::toString);
      WriterMetadata.File map = meta.files().get(1);
      assertTrue(map.path().endsWith("data/tablespace_map"), map::path);
      assertEquals(meta.files().get(0).path().replace("backup_label", "tablespace_map"), map.path());
      assertEquals(oid + " " + location, map.content().strip());
      assertEquals(0600, map.mode());
    }
  }

  @Test
  void stopStart_theServerComesBackWithItsOptions() throws Exception {
    try (Writer writer = Writers.parse("postgres:" + pg.conninfo())) {
      writer.stop();
      assertFalse(Files.exists(pg.dataDirectory().resolve("postmaster.pid")), "stopped");
      writer.start();
      assertEquals(Integer.toString(BEFORE), pg.psql("SELECT count(*) FROM t"));
      assertEquals("replica", pg.psql("SHOW wal_level"));
      assertEquals("127.0.0.1", pg.psql("SHOW listen_addresses"));
    }
  }

  private void insertLoop(AtomicBoolean stop, AtomicLong inserted) {
    int port = pg.port();
    try (Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + port + "/postgres",
        PostgresCluster.USER, ""); Statement st = c.createStatement()) {
      while (!stop.get()) {
        st.executeUpdate("INSERT INTO t(phase, pad) VALUES ('during', repeat('y', 200))");
        inserted.incrementAndGet();
      }
    } catch (Exception e) {
      e.printStackTrace();
    }
  }

  private List<String> walFiles() throws Exception {
    try (Stream<Path> s = Files.list(archive)) {
      return s.map(p -> p.getFileName().toString()).filter(n -> n.matches("[0-9A-F]{24}")).sorted().toList();
    }
  }

  /** {@code cp -a} of the data directory, made while its filesystem is frozen: nothing changes under it. */
  private void copyDataDirectory(Path copy) throws Exception {
    Command.run("cp", "-a", pg.dataDirectory().toString(), copy.toString()).requireSuccess();
  }

  private static void waitFor(java.util.function.BooleanSupplier condition, String what) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("timed out waiting for " + what);
      }
      Thread.sleep(50);
    }
  }
}
