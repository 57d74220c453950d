package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.offhost.tape.LibraryConfig;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link VerifyService} on a virtual library: intact archives pass; a flipped byte (with the
 * cartridge's record CRC made to match, so only the chunk's SHA-256 can catch it, and without)
 * and a truncated cartridge are found and named by cartridge, tape file and chunk; every result
 * is in the catalog. And the catalog's verifications and drills, and its migrations.
 */
class VerifyServiceTest {
  private static final int CHUNK = 64 * 1024;
  @TempDir Path tmp;

  private static byte[] image(long seed) {
    byte[] b = new byte[1024 * 1024];
    new Random(seed).nextBytes(b);
    Arrays.fill(b, 4 * CHUNK, 8 * CHUNK, (byte) 0);
    return b;
  }

  /** A library holding a full of s1 and an incremental of s2 on SHD001 (tape files 1 and 2). */
  private VirtualTapeLibrary twoBackups(byte[] s1, byte[] s2) throws IOException {
    VirtualTapeLibrary lib = VirtualTapeLibrary.create(tmp.resolve("vtl"), LibraryConfig.of(2, 64L << 20));
    try (Catalog cat = Catalog.open(lib.directory())) {
      Map<Long, byte[]> host = new HashMap<>();
      host.put(1L, s1);
      BackupService.Request req = new BackupService.Request("nightly", "auto", CHUNK, null);
      BackupService.run(lib, cat, new FakeSource("s1", 1, s1, host), req, BackupProgress.NONE, n -> { });
      BackupService.run(lib, cat, new FakeSource("s2", 2, s2, host), req, BackupProgress.NONE, n -> { });
    }
    return lib;
  }

  @Test
  void intactArchives_pass_andAreRecorded() throws IOException {
    byte[] s1 = image(1);
    byte[] s2 = s1.clone();
    Arrays.fill(s2, 10 * CHUNK, 10 * CHUNK + 10, (byte) 3);
    try (VirtualTapeLibrary lib = twoBackups(s1, s2); Catalog cat = Catalog.open(lib.directory())) {
      List<Catalog.VerificationRecord> heard = new ArrayList<>();
      long[] last = {0, 0};
      VerifyService.Result r = VerifyService.verify(lib, cat, VerifyService.Selection.ALL,
          (done, total) -> {
            last[0] = done;
            last[1] = total;
          }, heard::add);
      assertTrue(r.ok(), r::toString);
      assertEquals(2, r.archives().size());
      assertEquals(13L * CHUNK, r.bytes(), "12 chunks of the full and 1 of the incremental");
      assertEquals(last[1], last[0]);
      assertEquals(2, heard.size());
      List<Catalog.VerificationRecord> recorded = cat.verifications();
      assertEquals(2, recorded.size());
      assertEquals(r.archives().stream().map(Catalog.VerificationRecord::id).toList(),
          recorded.stream().map(Catalog.VerificationRecord::id).toList());
      assertEquals(r.archives().get(0).seconds(), recorded.get(0).seconds(), 0.001, "kept in milliseconds");
      assertEquals(Catalog.OK, recorded.get(0).outcome());
      assertEquals("SHD001", recorded.get(0).cartridge());
      assertEquals(1, recorded.get(0).fileNumber());
      assertNull(recorded.get(0).error());
      assertEquals(3, recorded.get(1).fileNumber(), "after the full's archive and its job record");

      VerifyService.Result one = VerifyService.verify(lib, cat, new VerifyService.Selection("SHD001", 2),
          BackupProgress.NONE, v -> { });
      assertEquals(1, one.archives().size());
      assertEquals(2, one.archives().get(0).jobId());
      assertThrows(BackupException.class, () -> VerifyService.verify(lib, cat,
          new VerifyService.Selection("SHD404", -1), BackupProgress.NONE, v -> { }));
    }
  }

  @Test
  void flippedByte_isNamedByCartridgeTapeFileAndChunk() throws IOException {
    byte[] s1 = image(2);
    byte[] s2 = s1.clone();
    Arrays.fill(s2, 10 * CHUNK, 10 * CHUNK + 10, (byte) 3);
    Path cart;
    try (VirtualTapeLibrary lib = twoBackups(s1, s2)) {
      cart = lib.directory().resolve("slot-0001.tape");
    }
    // chunk 2 of the full, its record CRC recomputed: only the chunk's own checksum (CRC-32C) can tell
    byte[] tape = Files.readAllBytes(cart);
    int at = indexOf(tape, Arrays.copyOfRange(s1, 2 * CHUNK + 1000, 2 * CHUNK + 1064));
    tape[at + 5] ^= 0x01;
    fixRecordCrc(tape, at);
    // chunk 9 of the full, as it is: the record CRC catches it. The 256 KiB tape record holding it
    // also holds the end of chunk 3 (chunks 4 to 7 are zeros, left out), so the chunk named is 3:
    // the first one the damaged record keeps from being read
    int at9 = indexOf(tape, Arrays.copyOfRange(s1, 9 * CHUNK + 1000, 9 * CHUNK + 1064));
    tape[at9 + 5] ^= 0x01;
    Files.write(cart, tape);
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(tmp.resolve("vtl"));
        Catalog cat = Catalog.open(lib.directory())) {
      VerifyService.Result r = VerifyService.verify(lib, cat, VerifyService.Selection.ALL, BackupProgress.NONE,
          v -> { });
      assertFalse(r.ok());
      assertEquals(1, r.failures().size(), "the incremental (tape file 2) is intact: " + r);
      Catalog.VerificationRecord bad = r.failures().get(0);
      assertEquals("SHD001", bad.cartridge());
      assertEquals(1, bad.fileNumber());
      assertEquals("data/0000000000020000", bad.chunk(), bad::toString);
      assertTrue(bad.error().contains("cartridge SHD001, tape file 1") && bad.error().contains("data/0000000000020000")
          && bad.error().contains("CRC-32C"), bad.error());
      assertEquals(Catalog.FAILED, cat.verifications().get(0).outcome());
      assertEquals(bad.error(), cat.verifications().get(0).error());

      // the first one mended (flipped back), the second is found by the cartridge's own CRC
      byte[] t2 = Files.readAllBytes(cart);
      t2[at + 5] ^= 0x01;
      fixRecordCrc(t2, at);
      Files.write(cart, t2);
    }
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(tmp.resolve("vtl"));
        Catalog cat = Catalog.open(lib.directory())) {
      VerifyService.Result r = VerifyService.verify(lib, cat, new VerifyService.Selection(null, 1), BackupProgress.NONE,
          v -> { });
      Catalog.VerificationRecord bad = r.failures().get(0);
      assertEquals("data/0000000000030000", bad.chunk(), bad::toString);
      assertTrue(bad.error().contains("cartridge SHD001, tape file 1") && bad.error().contains("CRC"), bad.error());
    }
  }

  @Test
  void truncatedCartridge_isNamedWithTheFirstChunkItLacks() throws IOException {
    byte[] s1 = image(3);
    byte[] s2 = s1.clone();
    Arrays.fill(s2, 10 * CHUNK, 10 * CHUNK + 10, (byte) 3);
    Path cart;
    try (VirtualTapeLibrary lib = twoBackups(s1, s2)) {
      cart = lib.directory().resolve("slot-0001.tape");
    }
    byte[] tape = Files.readAllBytes(cart);
    int at = indexOf(tape, Arrays.copyOfRange(s1, 9 * CHUNK + 1000, 9 * CHUNK + 1064));
    try (FileChannel ch = FileChannel.open(cart, StandardOpenOption.WRITE)) {
      // inside the record of chunk 9, the second of tape file 1, which begins in chunk 3: opening
      // the cartridge cuts the torn record, so the data ends inside chunk 3, and tape files 2 (the
      // full's job record) and 3 (the incremental) are gone
      ch.truncate(at);
    }
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(tmp.resolve("vtl"));
        Catalog cat = Catalog.open(lib.directory())) {
      VerifyService.Result r = VerifyService.verify(lib, cat, VerifyService.Selection.ALL, BackupProgress.NONE,
          v -> { });
      assertEquals(2, r.failures().size(), r::toString);
      Catalog.VerificationRecord full = r.failures().get(0);
      assertEquals(1, full.fileNumber());
      assertEquals("data/0000000000030000", full.chunk(), "the chunk the tape ends in: " + full);
      assertTrue(full.error().contains("cartridge SHD001, tape file 1") && full.error().contains("truncated"),
          full.error());
      Catalog.VerificationRecord inc = r.failures().get(1);
      assertEquals(3, inc.fileNumber());
      assertEquals("data/00000000000a0000", inc.chunk(), inc::toString);
      assertTrue(inc.error().contains("cartridge SHD001, tape file 3") && inc.error().contains("truncated"),
          inc.error());
    }
  }

  @Test
  void drills_roundTrip_byVolumeNameOrUuid() throws IOException {
    Files.createDirectories(tmp.resolve("lib"));
    Instant t = Instant.parse("2026-12-01T10:00:00Z");
    try (Catalog c = Catalog.open(tmp.resolve("lib"))) {
      Catalog.DrillRecord d = new Catalog.DrillRecord(-1, "db", "uuid-1", "s2", 2, List.of(1L, 2L), t,
          t.plusSeconds(5), Catalog.OK, null, null, 0.012, 1.5, 1 << 20, "ext4: clean", "sqlite:a.db: ok",
          List.of(new Catalog.DrillStep("restore", Catalog.OK, 1.5, "1 MiB"),
              new Catalog.DrillStep("fsck", Catalog.OK, 0.2, "clean")));
      long id = c.addDrill(d);
      c.addDrill(new Catalog.DrillRecord(-1, "other", null, null, -1, List.of(), t, t, Catalog.FAILED, "find",
          "find: no backup", -1, -1, 0, null, null, List.of(new Catalog.DrillStep("find", Catalog.FAILED, 0, "none"))));
      List<Catalog.DrillRecord> got = c.drills("uuid-1");
      assertEquals(1, got.size());
      Catalog.DrillRecord g = got.get(0);
      assertEquals(id, g.id());
      assertEquals(List.of(1L, 2L), g.jobChain());
      assertEquals(0.012, g.firstByteSeconds(), 1e-9);
      assertEquals(d.steps(), g.steps());
      assertEquals("sqlite:a.db: ok", g.databaseCheck());
      assertEquals(1, c.drills("db").size());
      assertEquals(2, c.drills(null).size());
      Catalog.DrillRecord f = c.drills("other").get(0);
      assertEquals(-1, f.snapshotId());
      assertEquals(-1, f.restoreSeconds());
      assertEquals("find", f.failedStep());
    }
  }

  @Test
  void migrations_bringAVersionOneCatalogUpToTheVerificationsAndDrills() throws Exception {
    Path lib = Files.createDirectories(tmp.resolve("lib"));
    try (Catalog c = Catalog.open(lib)) {
      c.startJob(new FakeSource("s", 4, new byte[4096], Map.of()).identity(), "full", -1, -1, "p", CHUNK,
          Instant.now());
    }
    // a catalog of schema version 1: without the tables and columns of steps 2 to 8
    try (Connection db = DriverManager.getConnection("jdbc:sqlite:" + lib.resolve(Catalog.FILE));
        Statement s = db.createStatement()) {
      s.execute("DROP TABLE verifications");
      s.execute("DROP TABLE drills");
      s.execute("DROP TABLE pieces");
      s.execute("ALTER TABLE chunks DROP COLUMN piece");
      s.execute("ALTER TABLE jobs DROP COLUMN record_cartridge");
      s.execute("ALTER TABLE jobs DROP COLUMN record_file");
      s.execute("ALTER TABLE jobs DROP COLUMN format");
      for (String column : List.of("host", "pid", "process_started", "library")) {
        s.execute("ALTER TABLE jobs DROP COLUMN " + column);
      }
      s.execute("ALTER TABLE archives DROP COLUMN chunk_checksum");
      s.execute("ALTER TABLE chunks RENAME COLUMN checksum TO sha256");
      s.execute("ALTER TABLE jobs DROP COLUMN volume_block_size");
      s.execute("DELETE FROM schema_version WHERE version > 1");
    }
    try (Catalog c = Catalog.open(lib)) {
      assertEquals(1, c.jobs().size());
      assertEquals(0, c.jobs().get(0).snapshot().blockSize(), "a job from before step 8: block size not known");
      assertTrue(c.drills(null).isEmpty());
      assertTrue(c.verifications().isEmpty());
    }
    try (Connection db = DriverManager.getConnection("jdbc:sqlite:" + lib.resolve(Catalog.FILE));
        Statement s = db.createStatement();
        var r = s.executeQuery("SELECT group_concat(version) FROM (SELECT version FROM schema_version ORDER BY version)")) {
      r.next();
      assertEquals("1,2,3,4,5,6,7,8", r.getString(1), "steps 2 to 8 applied once on top of 1");
    }
    // a catalog from a newer shade is refused
    try (Connection db = DriverManager.getConnection("jdbc:sqlite:" + lib.resolve(Catalog.FILE));
        Statement s = db.createStatement()) {
      s.execute("INSERT INTO schema_version (version) VALUES (" + (Catalog.SCHEMA_VERSION + 1) + ")");
    }
    IOException e = assertThrows(IOException.class, () -> Catalog.open(lib));
    assertTrue(e.getMessage().contains("newer than this shade"), e.getMessage());
  }

  /** Recomputes the CRC-32C of the virtual cartridge frame holding byte {@code at} (docs/tapes.md). */
  static void fixRecordCrc(byte[] tape, int at) {
    ByteBuffer b = ByteBuffer.wrap(tape);
    int pos = 64;
    while (pos < tape.length) {
      int len = b.getInt(pos + 4);
      if (at >= pos + 16 && at < pos + 16 + len) {
        CRC32C crc = new CRC32C();
        crc.update(tape, pos + 16, len);
        b.putInt(pos + 8, (int) crc.getValue());
        CRC32C h = new CRC32C();
        h.update(tape, pos, 12);
        b.putInt(pos + 12, (int) h.getValue());
        return;
      }
      pos += 16 + len;
    }
    throw new AssertionError("no frame holds byte " + at);
  }

  static int indexOf(byte[] hay, byte[] needle) {
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
