package dev.shade.requestor.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

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
 * WAL archived to a folder): a copy of the running data directory taken between the backup's
 * start and stop, with the writer's backup_label put back, recovers into a cluster holding the
 * rows committed before prepare; backup-complete cleans the archive; stop and start.
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

  @Test
  void backup_copyWithTheLabelRecoversWithTheRowsCommittedBefore() throws Exception {
    Tools.require("cp", "coreutils", "findmnt", "util-linux");
    Path copy = pg.dir().resolve("copy");
    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong inserted = new AtomicLong();
    Thread inserter = new Thread(() -> insertLoop(stop, inserted), "inserter");
    WriterMetadata meta;
    try (Writer writer = Writers.parse("postgres:" + pg.conninfo() + " shade.archive=" + archive)) {
      Map<String, Object> facts = writer.identify();
      assertTrue((Integer) facts.get("serverVersionNum") >= 150000, facts::toString);
      assertEquals(pg.dataDirectory().toRealPath().toString(), facts.get("dataDirectory"));
      String mountPoint = Command.run("findmnt", "-n", "-o", "TARGET", "--target", pg.dataDirectory().toString())
          .requireSuccess().strip();
      assertEquals(mountPoint, facts.get("mountPoint"));
      assertEquals(List.of(), facts.get("tablespaces"));

      // one WAL file archived before the backup: backup-complete must remove it
      String first = pg.psql("SELECT pg_walfile_name(pg_current_wal_lsn())");
      pg.psql("SELECT pg_switch_wal()");
      waitFor(() -> Files.exists(archive.resolve(first)), "the archiver to archive " + first);
      inserter.start();
      waitFor(() -> inserted.get() > 50, "the inserter to get going");
      writer.prepare();
      writer.freeze(Duration.ofSeconds(5));
      try {
        copyRunningDataDirectory(copy); // as a snapshot taken now would catch it
      } finally {
        writer.thaw();
      }
      meta = writer.postSnapshot();
    } finally {
      stop.set(true);
      inserter.join(30_000);
    }
    long total = BEFORE + inserted.get();

    // the metadata
    assertEquals(1, meta.files().size(), meta::toString);
    WriterMetadata.File label = meta.files().get(0);
    Path real = pg.dataDirectory().toRealPath();
    String mountPoint = Command.run("findmnt", "-n", "-o", "TARGET", "--target", real.toString()).requireSuccess().strip();
    String expected = Path.of(mountPoint).relativize(real).resolve("backup_label").toString();
    assertEquals(expected, label.path());
    assertEquals(0600, label.mode());
    assertTrue(label.content().contains("START WAL LOCATION: " + meta.facts().get("startLsn")), label::content);
    assertTrue(label.content().contains("LABEL: shade "), label::content);
    assertEquals("1", meta.facts().get("timeline"));
    assertEquals(real.toString(), meta.facts().get("dataDirectory"));
    String stopWal = pg.psql("SELECT pg_walfile_name('" + meta.facts().get("stopLsn") + "')");
    waitFor(() -> Files.exists(archive.resolve(stopWal)), "the archiver to archive " + stopWal);

    // the copy, with its backup_label, recovers from the archive
    Files.deleteIfExists(copy.resolve("postmaster.pid"));
    Path labelFile = copy.resolve("backup_label");
    Files.writeString(labelFile, label.content(), StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(labelFile, PosixFilePermissions.fromString("rw-------"));
    Files.createFile(copy.resolve("recovery.signal"));
    Command.run("chown", "-R", PostgresCluster.USER, copy.toString()).requireSuccess();

    // without the archive the label is not enough: the backup's end is in WAL written after the copy
    Path bare = pg.dir().resolve("copy-without-archive");
    Command.run("cp", "-a", copy.toString(), bare.toString()).requireSuccess();
    Files.delete(bare.resolve("recovery.signal"));
    Path bareLog = pg.dir().resolve("copy-without-archive.log");
    AssertionError refused = org.junit.jupiter.api.Assertions.assertThrows(AssertionError.class,
        () -> pg.start(bare, PostgresCluster.freePort(), List.of("archive_mode=off"), bareLog));
    assertTrue(Files.readString(bareLog).contains("WAL ends before end of online backup"), refused::getMessage);

    int port2 = PostgresCluster.freePort();
    Path log2 = pg.dir().resolve("copy.log");
    pg.start(copy, port2, List.of("archive_mode=off", "restore_command=cp " + archive + "/%f %p"), log2);
    try {
      waitFor(() -> {
        try {
          return pg.psql(port2, "SELECT pg_is_in_recovery()").equals("f");
        } catch (Exception | AssertionError e) {
          return false;
        }
      }, "the copy to finish recovery");
      long before = Long.parseLong(pg.psql(port2, "SELECT count(*) FROM t WHERE phase = 'before'"));
      long all = Long.parseLong(pg.psql(port2, "SELECT count(*) FROM t"));
      assertEquals(BEFORE, before, "the rows committed before prepare are in the copy");
      assertTrue(all >= BEFORE && all <= total, "rows in the copy " + all + " of " + total);
      String log = Files.readString(log2);
      assertTrue(log.contains("consistent recovery state reached"), log);
      System.out.printf("postgres: copy recovered with %d of %d rows; metadata %s%n", all, total, meta.facts());
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
    try (Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + pg.port() + "/postgres",
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

  /**
   * {@code cp -a} of the running data directory: files the server removes meanwhile (temporary
   * statistics, recycled WAL) make cp complain, which is fine, as it is for pg_basebackup.
   */
  private void copyRunningDataDirectory(Path copy) throws Exception {
    Command cp = Command.run("cp", "-a", pg.dataDirectory().toString(), copy.toString());
    if (cp.exitCode() != 0) {
      for (String line : cp.output().strip().split("\n")) {
        if (!line.contains("No such file or directory")) {
          fail("copying the running data directory failed: " + cp);
        }
      }
    }
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
