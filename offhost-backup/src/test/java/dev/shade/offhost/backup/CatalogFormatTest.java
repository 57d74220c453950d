package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The catalog's format column: a catalog of schema 1 migrates with its jobs as image jobs, files
 * jobs are found by their format, and never serve as the base of an image incremental.
 */
class CatalogFormatTest {
  @TempDir Path tmp;

  @Test
  void schema1Catalog_migrates_jobsAreImages_filesJobsAreKeptApart() throws Exception {
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + tmp.resolve(Catalog.FILE));
        Statement s = c.createStatement()) {
      s.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)");
      s.execute("INSERT INTO schema_version VALUES (1)");
      s.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, volume TEXT NOT NULL, volume_uuid TEXT NOT NULL,"
          + " snapshot TEXT NOT NULL, snapshot_id INTEGER NOT NULL, snapshot_created TEXT NOT NULL, size INTEGER NOT NULL,"
          + " level TEXT NOT NULL, base_job INTEGER REFERENCES jobs(id), base_snapshot_id INTEGER, pool TEXT NOT NULL,"
          + " chunk_size INTEGER NOT NULL, started TEXT NOT NULL, ended TEXT, outcome TEXT NOT NULL, message TEXT,"
          + " bytes INTEGER NOT NULL DEFAULT 0)");
      s.execute("CREATE TABLE archives (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL UNIQUE REFERENCES jobs(id),"
          + " cartridge TEXT NOT NULL, file_number INTEGER NOT NULL, bytes INTEGER NOT NULL, manifest_sha256 TEXT NOT NULL)");
      s.execute("CREATE TABLE chunks (archive_id INTEGER NOT NULL REFERENCES archives(id), offset INTEGER NOT NULL,"
          + " length INTEGER NOT NULL, sha256 TEXT, zero INTEGER NOT NULL, PRIMARY KEY (archive_id, offset))");
      s.execute("INSERT INTO jobs VALUES (1, 'db', 'u1', 's1', 1, '2026-01-01T00:00:00Z', 1024, 'full', NULL, NULL,"
          + " 'default', 4096, '2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z', 'ok', NULL, 0)");
      s.execute("INSERT INTO archives VALUES (1, 1, 'SHD001', 1, 10240, 'aa')");
    }
    try (Catalog cat = Catalog.open(tmp)) {
      assertEquals(Catalog.FORMAT_IMAGE, cat.jobs().get(0).format());
      SnapshotIdentity s2 = new SnapshotIdentity("db", "u1", "s2", 2, Instant.parse("2026-01-02T00:00:00Z"), 1024);
      long files = cat.startJob(s2, "full", -1, -1, "default", 0, Instant.now(), Catalog.FORMAT_FILES);
      cat.completeJob(files, "SHD001", 2, 20480, "bb", List.of(), 100, null, Instant.now());
      assertEquals(1, cat.lastBackup("u1").orElseThrow().id(), "a files archive is no base for an incremental");
      assertTrue(cat.find("db", "s2").isEmpty(), "image restores do not see files archives");
      assertEquals(files, cat.find("db", "s2", Catalog.FORMAT_FILES).orElseThrow().id());
      assertEquals(Catalog.FORMAT_FILES, cat.job(files).orElseThrow().format());
    }
    try (Catalog cat = Catalog.open(tmp)) {
      assertEquals(2, cat.jobs().size(), "reopening migrates nothing twice");
    }
  }
}
