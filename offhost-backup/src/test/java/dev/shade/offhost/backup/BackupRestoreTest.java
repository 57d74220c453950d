package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.offhost.tape.LibraryConfig;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BackupRestoreTest {
  private static final int CHUNK = 64 * 1024;
  @TempDir Path tmp;

  /** 1 MiB: random data with a zero stretch (chunks 4 to 7) in the middle. */
  private static byte[] image(long seed) {
    byte[] b = new byte[1024 * 1024];
    new Random(seed).nextBytes(b);
    Arrays.fill(b, 4 * CHUNK, 8 * CHUNK, (byte) 0);
    return b;
  }

  private static BackupService.Request request(String level) {
    return new BackupService.Request("nightly", level, CHUNK, null);
  }

  @Test
  void fullThenIncremental_restoreEachSnapshot_byteForByte() throws IOException {
    Path vtl = tmp.resolve("vtl");
    roundTrip(tmp, vtl, CatalogLocation.inLibrary(vtl));
    assertTrue(Files.isRegularFile(vtl.resolve(Catalog.FILE)), "the default catalog is the library's own file");
  }

  /**
   * Full, incremental and a full fallback backed up to a new library in {@code vtl}, with the
   * catalog at {@code where}; each snapshot restored and compared byte for byte.
   */
  static void roundTrip(Path tmp, Path vtl, CatalogLocation where) throws IOException {
    byte[] s1 = image(1);
    byte[] s2 = s1.clone();
    Arrays.fill(s2, 10 * CHUNK + 100, 10 * CHUNK + 200, (byte) 7); // one chunk changed
    Arrays.fill(s2, 12 * CHUNK, 13 * CHUNK, (byte) 0); // one chunk zeroed
    Map<Long, byte[]> host = new HashMap<>();
    host.put(1L, s1);
    List<String> notes = new ArrayList<>();
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(vtl, LibraryConfig.of(2, 64L << 20));
        Catalog cat = Catalog.open(where)) {
      BackupService.Result full = BackupService.run(lib, cat, new FakeSource("s1", 1, s1, host), request("auto"),
          BackupProgress.NONE, notes::add);
      assertEquals("full", full.level());
      assertNull(full.fallback(), "a first backup explains nothing");
      assertEquals("SHD001", full.cartridge());
      assertEquals("SHD001", full.labelled());
      assertEquals(1, full.fileNumber());
      assertEquals(12, full.chunks(), "16 chunks less 4 zero ones");

      FakeSource src2 = new FakeSource("s2", 2, s2, host);
      BackupService.Result inc = BackupService.run(lib, cat, src2, request("auto"), BackupProgress.NONE, notes::add);
      assertEquals("incremental", inc.level());
      assertEquals(1, inc.baseSnapshotId());
      assertEquals(1, inc.chunks());
      assertEquals(1, inc.zeroChunks());
      assertEquals(2L * CHUNK, src2.bytesRead, "only the changed chunks are read");
      assertEquals(3, inc.fileNumber(), "after the full (file 1) and its job record (file 2)");
      assertTrue(inc.archiveBytes() <= 256 * 1024 && inc.archiveBytes() * 3 < full.archiveBytes(),
          "incremental archive of " + inc.archiveBytes() + " bytes, full of " + full.archiveBytes());

      Path r1 = tmp.resolve("s1.img");
      Path r2 = tmp.resolve("s2.img");
      RestoreService.restore(lib, cat, "db", "s1", r1, false, BackupProgress.NONE);
      RestoreService.Result res2 = RestoreService.restore(lib, cat, "uuid-1", "id=2", r2, false, BackupProgress.NONE);
      assertArrayEquals(s1, Files.readAllBytes(r1));
      assertArrayEquals(s2, Files.readAllBytes(r2));
      assertEquals(2, res2.chain().size());
      assertEquals(11, res2.chunksWritten(), "each chunk once: 10 from the full, 1 from the incremental, 1 zeroed");

      // the base is gone on the production host: a full, saying so
      host.clear();
      byte[] s3 = s2.clone();
      s3[5] = 9;
      BackupService.Result fb = BackupService.run(lib, cat, new FakeSource("s3", 3, s3, host), request("incremental"),
          BackupProgress.NONE, notes::add);
      assertEquals("full", fb.level());
      assertTrue(fb.fallback().contains("s2 (id 2)") && fb.fallback().contains("no longer exists"), fb.fallback());
      assertTrue(notes.stream().anyMatch(n -> n.contains("writing a full backup instead")), notes.toString());
      assertEquals(3, cat.jobs().size());
    }
  }

  @Test
  void archive_isPaxTar_headerFirst_manifestLast_andAFlippedByteIsNamed() throws IOException {
    byte[] s1 = image(3);
    FakeSource src = new FakeSource("s1", 1, s1, Map.of());
    ImageManifest header = new ImageManifest(src.identity(), "full", -1, null, CHUNK, 512,
        java.time.Instant.now(), null, null, List.of());
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    List<Long> offsets = ImageArchiveWriter.chunksOf(src.allocated(), CHUNK, s1.length);
    ImageArchiveWriter.Result r = ImageArchiveWriter.write(out, 512, header, offsets, src, BackupProgress.NONE);
    byte[] tar = out.toByteArray();
    assertEquals(tar.length, r.archiveBytes());

    List<String> names = new ArrayList<>();
    try (TarArchiveInputStream in = new TarArchiveInputStream(new ByteArrayInputStream(tar))) {
      for (TarArchiveEntry e; (e = in.getNextEntry()) != null; ) {
        names.add(e.getName());
      }
    }
    assertEquals(ImageManifest.HEADER_MEMBER, names.get(0));
    assertEquals("data/0000000000000000", names.get(1));
    assertEquals("data/0000000000010000", names.get(2));
    assertTrue(!names.contains("data/0000000000040000"), "zero chunks are left out: " + names);
    assertEquals(ImageManifest.MANIFEST_MEMBER, names.get(names.size() - 1));
    assertEquals(14, names.size());

    ImageArchiveReader.Contents c = ImageArchiveReader.read(new ByteArrayInputStream(tar), CHUNK, everything());
    assertEquals(r.manifestSha256(), c.manifestSha256());
    assertEquals(12, c.manifest().chunks().size());

    // a byte of chunk 2 (offset 0x20000) flipped
    int at = indexOf(tar, Arrays.copyOfRange(s1, 2 * CHUNK + 1000, 2 * CHUNK + 1064));
    tar[at] ^= 1;
    ImageArchiveReader.ArchiveException e = assertThrows(ImageArchiveReader.ArchiveException.class,
        () -> ImageArchiveReader.read(new ByteArrayInputStream(tar), CHUNK, everything()));
    assertEquals("data/0000000000020000", e.member());
    assertTrue(e.getMessage().contains("the manifest says"), e.getMessage());
  }

  @Test
  void archiveLargerThanThePool_failsClearly_andTheJobIsRecordedAsFailed() throws IOException {
    byte[] s1 = image(4); // 768 KiB of data on the one cartridge of 512 KiB: no next cartridge to span to
    // 64 KiB chunks: the piece ends at the early warning, within the trailer of 64 KiB, and no cartridge is left;
    // 256 KiB chunks: the chunk that crosses the warning does not fit the trailer
    for (int chunk : new int[] {CHUNK, 4 * CHUNK}) {
      Path dir = tmp.resolve("vtl-" + chunk);
      try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(dir, LibraryConfig.of(1, 1, 512 * 1024, 64 * 1024));
          Catalog cat = Catalog.open(lib.directory())) {
        BackupException e = assertThrows(BackupException.class, () -> BackupService.run(lib, cat,
            new FakeSource("s1", 1, s1, Map.of()), new BackupService.Request("nightly", "full", chunk, null),
            BackupProgress.NONE, n -> { }));
        String why = chunk == CHUNK ? "no cartridge for pool nightly in tape library " + dir + ": every cartridge of "
            + "the pool is full and none is blank" : "does not fit: piece 1 of the archive on cartridge SHD001 could "
            + "not be ended within the 65536 bytes the drive allows after the early warning";
        assertTrue(e.getMessage().contains(why), e.getMessage());
        assertEquals(Catalog.FAILED, cat.jobs().get(0).outcome());
        assertNull(cat.jobs().get(0).archive());
        assertThrows(BackupException.class,
            () -> RestoreService.restore(lib, cat, "db", "s1", tmp.resolve("r.img"), false, BackupProgress.NONE));
      }
    }
  }

  @Test
  void catalog_reopens_atItsSchemaVersion() throws IOException {
    Files.createDirectories(tmp.resolve("lib"));
    try (Catalog c = Catalog.open(tmp.resolve("lib"))) {
      c.startJob(new FakeSource("s", 4, new byte[4096], Map.of()).identity(), "full", -1, -1, "p", CHUNK,
          java.time.Instant.now());
    }
    try (Catalog c = Catalog.open(tmp.resolve("lib"))) {
      assertEquals(1, c.jobs().size());
      assertEquals(Catalog.RUNNING, c.jobs().get(0).outcome());
    }
  }

  @Test
  void catalogOfSchemaVersion1_migratesToVersion2_andItsArchivesReadAsOnePiece() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("old"));
    try (java.sql.Connection c = java.sql.DriverManager.getConnection("jdbc:sqlite:" + dir.resolve(Catalog.FILE));
        java.sql.Statement s = c.createStatement()) {
      // the schema of version 1, as the first catalogs were written
      for (String sql : List.of(
          "CREATE TABLE schema_version (version INTEGER NOT NULL)",
          "INSERT INTO schema_version VALUES (1)",
          "CREATE TABLE jobs (id INTEGER PRIMARY KEY, volume TEXT NOT NULL, volume_uuid TEXT NOT NULL,"
              + " snapshot TEXT NOT NULL, snapshot_id INTEGER NOT NULL, snapshot_created TEXT NOT NULL,"
              + " size INTEGER NOT NULL, level TEXT NOT NULL, base_job INTEGER REFERENCES jobs(id),"
              + " base_snapshot_id INTEGER, pool TEXT NOT NULL, chunk_size INTEGER NOT NULL, started TEXT NOT NULL,"
              + " ended TEXT, outcome TEXT NOT NULL, message TEXT, bytes INTEGER NOT NULL DEFAULT 0)",
          "CREATE INDEX jobs_volume ON jobs(volume_uuid, snapshot_id)",
          "CREATE TABLE archives (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL UNIQUE REFERENCES jobs(id),"
              + " cartridge TEXT NOT NULL, file_number INTEGER NOT NULL, bytes INTEGER NOT NULL,"
              + " manifest_sha256 TEXT NOT NULL)",
          "CREATE TABLE chunks (archive_id INTEGER NOT NULL REFERENCES archives(id), offset INTEGER NOT NULL,"
              + " length INTEGER NOT NULL, sha256 TEXT, zero INTEGER NOT NULL, PRIMARY KEY (archive_id, offset))",
          "INSERT INTO jobs VALUES (1, 'db', 'uuid-1', 's1', 1, '2026-12-01T10:00:00Z', 131072, 'full', NULL, NULL,"
              + " 'nightly', 65536, '2026-12-01T10:00:01Z', '2026-12-01T10:00:02Z', 'ok', NULL, 131072)",
          "INSERT INTO archives VALUES (1, 1, 'SHD001', 1, 140288, 'abc')",
          "INSERT INTO chunks VALUES (1, 0, 65536, 'aa', 0)",
          "INSERT INTO chunks VALUES (1, 65536, 65536, 'bb', 0)")) {
        s.execute(sql);
      }
    }
    try (Catalog c = Catalog.open(dir)) {
      Catalog.JobRecord j = c.job(1).orElseThrow();
      assertEquals(List.of(new PieceEntry(0, "SHD001", 1, 140288, 0, 131072, 2)), c.pieces(j.archive()));
      assertTrue(c.recordLocation(1).isEmpty());
      // the version-1 way of completing a job still works on the new schema
      long id = c.startJob(j.snapshot(), "full", -1, -1, "nightly", CHUNK, java.time.Instant.now());
      c.completeJob(id, "SHD001", 3, 1000, "def", List.of(new ChunkEntry(0, 65536, "cc", false)), 65536, null,
          java.time.Instant.now());
      assertEquals(1, c.pieces(c.job(id).orElseThrow().archive()).size());
    }
    try (java.sql.Connection c = java.sql.DriverManager.getConnection("jdbc:sqlite:" + dir.resolve(Catalog.FILE));
        java.sql.Statement s = c.createStatement();
        java.sql.ResultSet r = s.executeQuery("SELECT max(version) FROM schema_version")) {
      r.next();
      assertEquals(Catalog.SCHEMA_VERSION, r.getInt(1));
    }
  }

  private static ImageArchiveReader.Handler everything() {
    return new ImageArchiveReader.Handler() {
      @Override
      public boolean wants(long offset) {
        return true;
      }

      @Override
      public void chunk(long offset, byte[] data, int length, String sha256) {}
    };
  }

  private static int indexOf(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    throw new AssertionError("not found");
  }
}
