package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.file.Files;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The catalog in SQLite, the default: its migrations and several writers on one file. */
class SqliteCatalogTest extends CatalogContract {
  @BeforeEach
  void location() throws Exception {
    Files.createDirectories(tmp.resolve("lib"));
    where = CatalogLocation.inLibrary(tmp.resolve("lib"));
  }

  /** The schema and bookkeeping of version 1 exactly as shade wrote them before steps were timed. */
  private static final String VERSION_1 =
      "CREATE TABLE jobs (id INTEGER PRIMARY KEY, volume TEXT NOT NULL, volume_uuid TEXT NOT NULL,"
          + " snapshot TEXT NOT NULL, snapshot_id INTEGER NOT NULL, snapshot_created TEXT NOT NULL, size INTEGER NOT NULL,"
          + " level TEXT NOT NULL, base_job INTEGER REFERENCES jobs(id), base_snapshot_id INTEGER, pool TEXT NOT NULL,"
          + " chunk_size INTEGER NOT NULL, started TEXT NOT NULL, ended TEXT, outcome TEXT NOT NULL, message TEXT,"
          + " bytes INTEGER NOT NULL DEFAULT 0);"
          + "CREATE INDEX jobs_volume ON jobs(volume_uuid, snapshot_id);"
          + "CREATE TABLE archives (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL UNIQUE REFERENCES jobs(id),"
          + " cartridge TEXT NOT NULL, file_number INTEGER NOT NULL, bytes INTEGER NOT NULL, manifest_sha256 TEXT NOT NULL);"
          + "CREATE TABLE chunks (archive_id INTEGER NOT NULL REFERENCES archives(id), offset INTEGER NOT NULL,"
          + " length INTEGER NOT NULL, sha256 TEXT, zero INTEGER NOT NULL, PRIMARY KEY (archive_id, offset));"
          + "CREATE TABLE schema_version (version INTEGER NOT NULL);"
          + "INSERT INTO schema_version VALUES (1);"
          + "INSERT INTO jobs VALUES (1, 'db', 'uuid-1', 's1', 7, '2026-11-30T10:00:00Z', 1048576, 'full', NULL, NULL,"
          + " 'nightly', 65536, '2026-11-30T11:00:00Z', '2026-11-30T11:01:00Z', 'ok', NULL, 131072);"
          + "INSERT INTO jobs VALUES (2, 'db', 'uuid-1', 's2', 8, '2026-11-30T12:00:00Z', 1048576, 'incremental', 1, 7,"
          + " 'nightly', 65536, '2026-11-30T13:00:00Z', '2026-11-30T13:00:05Z', 'failed', 'the link went down', 0);"
          + "INSERT INTO archives VALUES (1, 1, 'SHD001', 1, 150000, 'abc');"
          + "INSERT INTO chunks VALUES (1, 0, 65536, 'h0', 0);"
          + "INSERT INTO chunks VALUES (1, 65536, 65536, NULL, 1);"
          + "INSERT INTO chunks VALUES (1, 5000000000, 65536, 'h2', 0)";

  @Test
  void version1Catalog_keepsItsRows_andGainsTheAppliedColumn() throws Exception {
    try (Connection c = DriverManager.getConnection(where.jdbcUrl()); Statement s = c.createStatement()) {
      for (String sql : VERSION_1.split(";")) {
        s.execute(sql);
      }
    }
    try (Catalog cat = Catalog.open(tmp.resolve("lib"))) {
      List<Catalog.JobRecord> jobs = cat.jobs();
      assertEquals(2, jobs.size());
      Catalog.JobRecord full = jobs.get(0);
      assertEquals(new SnapshotIdentity("db", "uuid-1", "s1", 7, Instant.parse("2026-11-30T10:00:00Z"), 1048576),
          full.snapshot());
      assertEquals(new Catalog.ArchiveRecord(1, 1, "SHD001", 1, 150000, "abc", ChunkChecksum.SHA256), full.archive());
      assertEquals(Instant.parse("2026-11-30T11:01:00Z"), full.ended());
      assertEquals(List.of(new ChunkEntry(0, 65536, "h0", false), new ChunkEntry(65536, 65536, null, true),
          new ChunkEntry(5000000000L, 65536, "h2", false)), cat.chunks(1));
      Catalog.JobRecord failed = jobs.get(1);
      assertEquals(Catalog.FAILED, failed.outcome());
      assertEquals("the link went down", failed.message());
      assertEquals(1, failed.baseJobId());
      assertEquals(7, failed.baseSnapshotId());
      assertNull(failed.archive());
      assertEquals("s1", cat.lastBackup("uuid-1").orElseThrow().snapshot().snapshot());
      long next = cat.startJob(new FakeSource("s3", 9, new byte[4096], Map.of()).identity(), "full", -1, -1, "p",
          65536, Instant.now());
      assertEquals(3, next, "new ids follow the old ones");
    }
    try (Connection c = CatalogScenarios.connect(where)) {
      List<String[]> h = SchemaMigrator.history(c);
      assertEquals(Catalog.SCHEMA_VERSION, h.size());
      assertEquals("1", h.get(0)[0]);
      assertNull(h.get(0)[1], "when version 1 was applied was not recorded then");
    }
  }
}
