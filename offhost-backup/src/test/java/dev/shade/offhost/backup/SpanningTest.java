package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.offhost.drill.DrillService;
import dev.shade.offhost.tape.CartridgeInfo;
import dev.shade.offhost.tape.LibraryConfig;
import dev.shade.offhost.tape.TapeDrive;
import dev.shade.offhost.tape.TapeInputStream;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import dev.shade.testing.Tools;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Archives spanning cartridges of a real virtual library, job records on tape, and the catalog
 * rebuilt from them; GNU tar reads every piece.
 */
class SpanningTest {
  private static final int CHUNK = 64 * 1024;
  private static final int BLOCK = 64 * 1024;
  /** 2 MiB cartridges whose early warning starts 512 KiB before the end: about 1.4 MiB of data each. */
  private static final LibraryConfig CONFIG = new LibraryConfig(6, 1, 2L << 20, 512 * 1024, BLOCK);

  @TempDir Path tmp;

  /** {@code chunks} chunks of random data, chunks 5 to 7 zeros. */
  private static byte[] image(long seed, int chunks) {
    byte[] b = new byte[chunks * CHUNK];
    new Random(seed).nextBytes(b);
    Arrays.fill(b, 5 * CHUNK, 8 * CHUNK, (byte) 0);
    return b;
  }

  private static BackupService.Request request(String level) {
    return new BackupService.Request("nightly", level, CHUNK, null);
  }

  private Path lib() {
    return tmp.resolve("vtl");
  }

  @Test
  void archiveSpanningThreeCartridges_restoresByteForByte_andEveryPieceIsATarThatGnuTarLists() throws Exception {
    Path tar = Tools.require("tar", "tar");
    byte[] s1 = image(1, 56); // 3.5 MiB, 53 chunks of data
    List<String> notes = new ArrayList<>();
    BackupService.Result r;
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(lib(), CONFIG); Catalog cat = Catalog.open(lib())) {
      r = BackupService.run(lib, cat, new FakeSource("s1", 1, s1, Map.of()), request("full"), BackupProgress.NONE,
          notes::add);
      assertEquals(3, r.pieces().size(), r.pieces().toString());
      assertEquals(List.of("SHD001", "SHD002", "SHD003"), r.labelledAll(), "blank cartridges labelled into the pool");
      for (int i = 0; i < 3; i++) {
        PieceEntry p = r.pieces().get(i);
        assertEquals("SHD00" + (i + 1), p.cartridge());
        assertEquals(1, p.fileNumber(), "each piece is the first archive of its cartridge");
        assertTrue(p.chunks() > (i < 2 ? 10 : 0), p.toString());
      }
      assertEquals(0, r.pieces().get(0).firstOffset());
      assertEquals(r.pieces().get(0).endOffset(), r.pieces().get(1).firstOffset());
      assertEquals(s1.length, r.pieces().get(2).endOffset());
      assertTrue(notes.stream().anyMatch(n -> n.contains("cartridge SHD001 is full: the archive continues with piece 2"
          + " on cartridge SHD002")), notes.toString());
      Catalog.JobRecord job = cat.job(r.jobId()).orElseThrow();
      assertEquals(r.pieces(), cat.pieces(job.archive()));
      assertEquals(Optional.of(new Catalog.RecordLocation("SHD003", 2)), cat.recordLocation(r.jobId()),
          "the job record follows the last piece");
      assertEquals("job", lib.find("SHD003").orElseThrow().files().get(2).kind());

      // every piece is a tar GNU tar lists: the header first, then chunks, then continued.json or the manifest
      Path rebuild = Files.createDirectories(tmp.resolve("rebuild"));
      for (PieceEntry p : r.pieces()) {
        Path file = tmp.resolve("piece" + p.piece() + ".tar");
        long n = dump(lib, p.cartridge(), p.fileNumber(), file);
        assertEquals(p.bytes(), n);
        List<String> names = run(List.of(tar.toString(), "-tf", file.toString()), tmp);
        assertEquals(ImageManifest.HEADER_MEMBER, names.get(0), p.toString());
        assertEquals(p.piece() == 2 ? ImageManifest.MANIFEST_MEMBER : ImageArchiveWriter.CONTINUED_MEMBER,
            names.get(names.size() - 1));
        assertEquals(p.chunks(), names.size() - 2, "each piece lists the chunks it holds: " + names);
        run(List.of(tar.toString(), "-xf", file.toString()), rebuild); // the operator's way: docs/tape-format.md
      }

      Path to = tmp.resolve("s1.img");
      List<String> asked = new ArrayList<>();
      RestoreService.Result res = RestoreService.restore(lib, cat, "db", "s1", to, false, BackupProgress.NONE,
          asked::add);
      assertArrayEquals(s1, Files.readAllBytes(to));
      assertEquals(53, res.chunksWritten());
      assertEquals(3, asked.size(), asked.toString());
      for (int i = 0; i < 3; i++) {
        assertTrue(asked.get(i).startsWith("needs cartridge SHD00" + (i + 1) + " (slot " + (i + 1) + ") for cartridge"
            + " SHD00" + (i + 1) + ", tape file 1 (piece " + (i + 1) + " of 3 of the full archive of db@s1"), asked.get(i));
      }

      // GNU tar + dd alone, from the three pieces extracted into one directory
      Path image = tmp.resolve("dd.img");
      run(List.of("bash", "-c", "truncate -s " + s1.length + " " + image + "; for f in data/*; do dd if=\"$f\" of="
          + image + " bs=1M seek=$((16#${f#data/})) oflag=seek_bytes conv=notrunc status=none; done"), rebuild);
      assertArrayEquals(s1, Files.readAllBytes(image));
    }
  }

  @Test
  void lostCatalog_rebuiltFromTheTapes_equalsTheLostOne_andRestoresSucceed() throws Exception {
    byte[] s1 = image(2, 40);
    byte[] s2 = s1.clone();
    Arrays.fill(s2, 20 * CHUNK, 22 * CHUNK, (byte) 3);
    Arrays.fill(s2, 30 * CHUNK, 31 * CHUNK, (byte) 0);
    Map<Long, byte[]> host = new HashMap<>();
    host.put(1L, s1);
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(lib(), CONFIG)) {
      try (Catalog cat = Catalog.open(lib())) {
        BackupService.Result full = BackupService.run(lib, cat, new FakeSource("s1", 1, s1, host), request("full"),
            BackupProgress.NONE, n -> { });
        assertEquals(2, full.pieces().size());
        // a job that fails mid-archive: its record goes on tape too
        IOException e = assertThrows(IOException.class, () -> BackupService.run(lib, cat,
            new FailingSource(new FakeSource("s1b", 5, s1, host), 6), request("full"), BackupProgress.NONE, n -> { }));
        assertTrue(e.getMessage().contains("cable pulled"), e.getMessage());
        BackupService.Result inc = BackupService.run(lib, cat, new FakeSource("s2", 2, s2, host), request("auto"),
            BackupProgress.NONE, n -> { });
        assertEquals("incremental", inc.level());
        assertEquals(3, cat.jobs().size());
        assertEquals(Catalog.FAILED, cat.jobs().get(1).outcome());
        assertTrue(cat.recordLocation(2).isPresent(), "the failed job's record is on tape");
        // a verify of both archives, and two drills (of nothing, and of db, which fails without a filesystem
        // or without root): their records go on tape, on the newest cartridge of the pool
        VerifyService.Result v = VerifyService.verify(lib, cat, VerifyService.Selection.ALL, BackupProgress.NONE,
            x -> { });
        assertTrue(v.ok(), v::toString);
        assertEquals(List.of(), v.records().notWritten());
        assertEquals(1, v.records().written().size(), "one pool, one tape file");
        Catalog.RecordLocation verifyAt = v.records().written().get(0);
        assertEquals(inc.pieces().get(inc.pieces().size() - 1).cartridge(), verifyAt.cartridge());
        assertEquals(Optional.of(verifyAt), cat.verificationRecordLocation(v.archives().get(1).id()));
        Path scratch = Files.createDirectories(tmp.resolve("scratch"));
        for (String volume : List.of("nosuchvolume", "db")) {
          DrillService.Outcome d = DrillService.run(lib, cat, new DrillService.Request(volume, List.of(), List.of(),
              scratch, false), BackupProgress.NONE, x -> { }, n -> { });
          assertEquals(List.of(), d.records().notWritten(), volume);
          Catalog.RecordLocation at = d.records().written().get(0);
          assertEquals(Optional.of(at), cat.drillRecordLocation(d.drill().id()));
          String kind = lib.find(at.cartridge()).orElseThrow().files().get(at.fileNumber()).kind();
          assertEquals("drill", kind, "shade tape list shows the drill record's kind");
        }
        assertEquals(2, cat.drills(null).size());
        assertEquals("restore", cat.drills("db").get(0).steps().get(1).name());
      }
      Map<String, List<String>> lost = dump(lib().resolve(Catalog.FILE));
      assertEquals(2, lost.get("verifications").size());
      assertEquals(2, lost.get("drills").size());
      assertEquals(3, lost.get("jobs").size());
      assertTrue(lost.get("jobs").stream().allMatch(j -> j.contains("volume_block_size=" + FakeSource.BLOCK_SIZE + " ")),
          () -> "every job has the volume's block size: " + lost.get("jobs"));
      assertEquals(2, lost.get("archives").size());
      assertEquals(3, lost.get("pieces").size());
      deleteCatalog();

      List<String> notes = new ArrayList<>();
      long[] done = {0, 0};
      CatalogRebuild.Result r;
      try (Catalog cat = Catalog.open(lib())) {
        r = CatalogRebuild.rebuild(lib, cat, (d, t) -> {
          done[0] = d;
          done[1] = t;
        }, notes::add);
      }
      assertEquals(List.of(), r.problems());
      assertEquals(3, r.jobs());
      assertEquals(2, r.archives());
      assertEquals(3, r.pieces());
      assertEquals(2, r.verifications());
      assertEquals(2, r.drills());
      assertEquals(6, done[0], "progress counts every slot");
      assertTrue(notes.stream().anyMatch(n -> n.startsWith("scanning cartridge SHD002")), notes.toString());
      assertEquals(lost, dump(lib().resolve(Catalog.FILE)),
          "every job, archive, piece, chunk, verification and drill row, ids and times included");

      try (Catalog cat = Catalog.open(lib())) {
        RestoreService.restore(lib, cat, "db", "s1", tmp.resolve("s1.img"), false, BackupProgress.NONE);
        RestoreService.restore(lib, cat, "uuid-1", "id=2", tmp.resolve("s2.img"), false, BackupProgress.NONE);
        // the rebuilt catalog goes on: the next job number follows the rebuilt ones
        byte[] s3 = s2.clone();
        s3[0] = 1;
        host.put(2L, s2);
        assertEquals(4, BackupService.run(lib, cat, new FakeSource("s3", 3, s3, host), request("auto"),
            BackupProgress.NONE, n -> { }).jobId());
        // and so do verifications and drills
        assertEquals(3, VerifyService.verify(lib, cat, new VerifyService.Selection(null, 4), BackupProgress.NONE,
            x -> { }).archives().get(0).id());
      }
      assertArrayEquals(s1, Files.readAllBytes(tmp.resolve("s1.img")));
      assertArrayEquals(s2, Files.readAllBytes(tmp.resolve("s2.img")));
    }
  }

  @Test
  void recordsOfVerifyAndDrill_inAFullLibrary_areSaidNotWritten_thenGoOnTapeOnceThereIsRoom() throws Exception {
    byte[] s1 = image(4, 8);
    Map<Long, byte[]> host = new HashMap<>();
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(lib(), new LibraryConfig(2, 1, 2L << 20, 512 * 1024,
        BLOCK))) {
      try (Catalog cat = Catalog.open(lib())) {
        BackupService.run(lib, cat, new FakeSource("s1", 1, s1, host), request("full"), BackupProgress.NONE, n -> { });
        // no room: the pool's one cartridge is past its early warning, the other cartridge is of another pool
        lib.writeLabel(2, "OTH002", "other", false);
        TapeDrive d = lib.load(0, 1);
        d.seekEndOfData();
        try {
          while (true) {
            d.write(ByteBuffer.allocate(BLOCK));
          }
        } catch (dev.shade.offhost.tape.EarlyWarningException e) {
          d.writeFilemarks(1);
        }
        lib.unload(0);
        VerifyService.Result v = VerifyService.verify(lib, cat, VerifyService.Selection.ALL, BackupProgress.NONE,
            x -> { });
        assertTrue(v.ok(), "the verify stands");
        assertEquals(List.of(), v.records().written());
        assertEquals(1, v.records().notWritten().size());
        String why = v.records().notWritten().get(0);
        assertTrue(why.contains("1 verification (pool nightly) could not go on tape") && why.contains("none is blank"),
            why);
        DrillService.Outcome drill = DrillService.run(lib, cat, new DrillService.Request("db", List.of(), List.of(),
            Files.createDirectories(tmp.resolve("scratch")), false), BackupProgress.NONE, x -> { }, n -> { });
        assertEquals(List.of(), drill.records().written());
        assertTrue(drill.records().notWritten().get(0).contains("1 verification and 1 drill (pool nightly)"),
            drill.records().toString());
        assertEquals(1, cat.verificationsWithoutRecord().size());

        // room again: the next verify writes its record and the one left behind, and the drill's
        lib.writeLabel(2, "SHD002", "nightly", true);
        List<String> notes = new ArrayList<>();
        VerifyService.Result again = VerifyService.verify(lib, cat, VerifyService.Selection.ALL, BackupProgress.NONE,
            x -> { }, notes::add);
        assertEquals(List.of(new Catalog.RecordLocation("SHD002", 1), new Catalog.RecordLocation("SHD002", 2)),
            again.records().written());
        assertTrue(notes.contains("wrote the record of 2 verifications on cartridge SHD002, tape file 1"),
            notes.toString());
        assertEquals(List.of(), cat.verificationsWithoutRecord());
        assertEquals(List.of(), cat.drillsWithoutRecord());
      }
      Map<String, List<String>> lost = dump(lib().resolve(Catalog.FILE));
      deleteCatalog();
      try (Catalog cat = Catalog.open(lib())) {
        CatalogRebuild.Result r = CatalogRebuild.rebuild(lib, cat, BackupProgress.NONE, n -> { });
        assertEquals(List.of(), r.problems());
        assertEquals(2, r.verifications());
        assertEquals(1, r.drills());
      }
      assertEquals(lost, dump(lib().resolve(Catalog.FILE)));
    }
  }

  @Test
  void truncatedCartridge_failsTheRestoreNamingIt_andTheRebuildReportsIt() throws Exception {
    byte[] s1 = image(3, 56);
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(lib(), CONFIG); Catalog cat = Catalog.open(lib())) {
      assertEquals(3, BackupService.run(lib, cat, new FakeSource("s1", 1, s1, Map.of()), request("full"),
          BackupProgress.NONE, n -> { }).pieces().size());
    }
    // cut the cartridge of slot 2 (SHD002) in the middle of its piece
    Path slot2 = lib().resolve("slot-0002.tape");
    try (FileChannel f = FileChannel.open(slot2, StandardOpenOption.WRITE)) {
      f.truncate(f.size() / 2);
    }
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(lib())) {
      try (Catalog cat = Catalog.open(lib())) {
        BackupException e = assertThrows(BackupException.class, () -> RestoreService.restore(lib, cat, "db", "s1",
            tmp.resolve("r.img"), false, BackupProgress.NONE));
        assertTrue(e.getMessage().contains("cartridge SHD002 (slot 2) is truncated") && e.getMessage().contains(
            "piece 2 of 3 of the full archive of db@s1, job 1"), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("r.img")));
      }
      deleteCatalog();
      try (Catalog cat = Catalog.open(lib())) {
        CatalogRebuild.Result r = CatalogRebuild.rebuild(lib, cat, BackupProgress.NONE, n -> { });
        assertEquals(1, r.jobs(), "the job is rebuilt from its record on SHD003");
        assertTrue(r.problems().stream().anyMatch(p -> p.startsWith("cartridge SHD002 (slot 2), tape file 1 is not"
            + " ended by a filemark: the cartridge is truncated")), r.problems().toString());
        assertTrue(r.problems().stream().anyMatch(p -> p.startsWith("piece 2 of 3 of job 1 (db@s1), cartridge SHD002,"
            + " tape file 1: the tape file has") && p.endsWith("cartridge SHD002 is truncated")), r.problems().toString());
      }
    }
  }

  @Test
  void cartridgeOfAnotherPool_isRefused_byRestoreAndBySpanning() throws Exception {
    byte[] s1 = image(4, 40);
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(lib(), CONFIG); Catalog cat = Catalog.open(lib())) {
      assertEquals(2, BackupService.run(lib, cat, new FakeSource("s1", 1, s1, Map.of()), request("full"),
          BackupProgress.NONE, n -> { }).pieces().size());
      // slot 2 now holds another cartridge labelled SHD002, of pool weekly
      lib.writeLabel(2, "SHD002", "weekly", true);
      BackupException e = assertThrows(BackupException.class, () -> RestoreService.restore(lib, cat, "db", "s1",
          tmp.resolve("r.img"), false, BackupProgress.NONE));
      assertTrue(e.getMessage().contains("cartridge SHD002 in slot 2 belongs to pool weekly, but job 1 wrote its"
          + " pieces to pool nightly: refusing it"), e.getMessage());

      // every other slot labelled into pool weekly: a nightly archive that reaches the end of its cartridge does not
      // continue on them
      for (int s = 3; s <= 6; s++) {
        lib.writeLabel(s, "WK" + s, "weekly", false);
      }
      lib.writeLabel(1, "SHD001", "nightly", true);
      e = assertThrows(BackupException.class, () -> BackupService.run(lib, cat,
          new FakeSource("s2", 2, image(5, 40), Map.of()), request("full"), BackupProgress.NONE, n -> { }));
      assertTrue(e.getMessage().contains("no cartridge for pool nightly") && e.getMessage().contains(
          "cartridges of other pools are not taken: SHD002 (slot 2, pool weekly)"), e.getMessage());
      for (CartridgeInfo c : lib.list()) {
        if (!"nightly".equals(c.pool())) {
          assertEquals(1, c.files().size(), "nothing written to " + c.label() + ": " + c.files());
        }
      }
    }
  }

  @Test
  void missingCartridgeInAChain_failsTheRestoreNamingTheCartridgeItNeeds() throws Exception {
    byte[] s1 = image(6, 56);
    byte[] s2 = s1.clone();
    Arrays.fill(s2, 0, 100, (byte) 1);
    Map<Long, byte[]> host = Map.of(1L, s1);
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(lib(), CONFIG); Catalog cat = Catalog.open(lib())) {
      BackupService.run(lib, cat, new FakeSource("s1", 1, s1, host), request("full"), BackupProgress.NONE, n -> { });
      BackupService.Result inc = BackupService.run(lib, cat, new FakeSource("s2", 2, s2, host), request("auto"),
          BackupProgress.NONE, n -> { });
      assertEquals("SHD003", inc.cartridge());
      // SHD002, holding piece 2 of the full, leaves the library (its slot gets a scratch cartridge)
      lib.writeLabel(2, "SCRATCH", "nightly", true);
      List<String> asked = new ArrayList<>();
      BackupException e = assertThrows(BackupException.class, () -> RestoreService.restore(lib, cat, "db", "s2",
          tmp.resolve("r.img"), false, BackupProgress.NONE, asked::add));
      assertTrue(e.getMessage().contains("restore needs cartridge SHD002, which is not in tape library " + lib())
          && e.getMessage().contains("piece 2 of 3 of the full archive of db@s1, job 1"), e.getMessage());
      assertEquals(1, asked.size(), "SHD001 was asked for first: " + asked);
    }
  }

  /** Deletes catalog.db and its WAL files. */
  private void deleteCatalog() throws IOException {
    for (String suffix : List.of("", "-wal", "-shm")) {
      Files.deleteIfExists(lib().resolve(Catalog.FILE + suffix));
    }
  }

  /** Every row of the catalog's tables, as text, by table. */
  static Map<String, List<String>> dump(Path db) throws Exception {
    Map<String, List<String>> out = new HashMap<>();
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + db); Statement s = c.createStatement()) {
      for (String t : List.of("jobs", "archives", "pieces", "chunks", "verifications", "drills", "schema_version")) {
        List<String> rows = new ArrayList<>();
        // a schema step's "applied" is when this database got it, not something the tapes record
        String columns = t.equals("schema_version") ? "version" : "*";
        try (ResultSet r = s.executeQuery("SELECT " + columns + " FROM " + t + " ORDER BY 1"
            + (t.equals("schema_version") ? "" : ", 2"))) {
          ResultSetMetaData m = r.getMetaData();
          while (r.next()) {
            StringBuilder b = new StringBuilder();
            for (int i = 1; i <= m.getColumnCount(); i++) {
              b.append(m.getColumnName(i)).append('=').append(r.getString(i)).append(' ');
            }
            rows.add(b.toString());
          }
        }
        out.put(t, rows);
      }
    }
    return out;
  }

  /** Writes tape file {@code fileNumber} of cartridge {@code label} to {@code to}; returns its bytes. */
  private static long dump(VirtualTapeLibrary lib, String label, int fileNumber, Path to) throws IOException {
    try (TapeDrive d = lib.openForReading(lib.find(label).orElseThrow().slot());
        OutputStream out = Files.newOutputStream(to)) {
      d.seekFile(fileNumber);
      return new TapeInputStream(d).transferTo(out);
    }
  }

  private static List<String> run(List<String> cmd, Path dir) throws Exception {
    Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, p.exitValue(), cmd + ": " + out);
    return out.isEmpty() ? List.of() : List.of(out.split("\n"));
  }

  /** A source whose reads fail after {@code reads} of them, as when the NBD connection is cut. */
  /** Reads as {@code in} does, and fails every read that reaches past chunk {@code chunks} (the cable is pulled there). */
  private static final class FailingSource implements SnapshotSource {
    private final SnapshotSource in;
    private final long failFrom;

    FailingSource(SnapshotSource in, int chunks) {
      this.in = in;
      this.failFrom = (long) chunks * CHUNK;
    }

    @Override
    public SnapshotIdentity identity() {
      return in.identity();
    }

    @Override
    public List<Range> allocated() throws IOException {
      return in.allocated();
    }

    @Override
    public Optional<List<Range>> changedSince(long baseSnapshotId) throws IOException {
      return in.changedSince(baseSnapshotId);
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
      if (offset + dst.remaining() > failFrom) {
        throw new IOException("cable pulled");
      }
      in.read(offset, dst);
    }

    @Override
    public void close() {}
  }
}
