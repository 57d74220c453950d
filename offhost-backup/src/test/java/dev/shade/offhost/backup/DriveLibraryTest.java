package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.offhost.tape.CartridgeInfo;
import dev.shade.offhost.tape.CartridgeOperator;
import dev.shade.offhost.tape.FakeDriveBay;
import dev.shade.offhost.tape.TapeException;
import dev.shade.offhost.tape.TapeLibrary;
import dev.shade.testing.Tools;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The backup services on one st drive without a changer (the one-drive library over
 * {@link FakeDriveBay}, a scripted st driver with cartridges on a shelf), with a scripted operator
 * who changes cartridges when asked.
 */
class DriveLibraryTest {
  private static final int CHUNK = 64 * 1024;
  private static final int BLOCK = 64 * 1024;
  /** Early warning after 1.5 MiB of records, the physical end at 2 MiB; the trailer allowance is 448 KiB. */
  private static final long EARLY_WARNING = 3L << 19;
  private static final long END = 2L << 20;
  private static final long TRAILER = 448 * 1024;

  @TempDir Path tmp;

  /** An operator who loads the cartridges of {@code script}, in order, one per request, and declines after. */
  private static final class Operator implements CartridgeOperator {
    final FakeDriveBay bay;
    final Deque<String> script;
    final List<ChangeRequest> asked = new ArrayList<>();

    Operator(FakeDriveBay bay, String... script) {
      this.bay = bay;
      this.script = new ArrayDeque<>(List.of(script));
    }

    @Override
    public void change(ChangeRequest request) throws TapeException {
      asked.add(request);
      if (script.isEmpty()) {
        throw new TapeException("the operator declined: " + request.prompt());
      }
      bay.insert(script.poll());
    }
  }

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

  private Path state() {
    return tmp.resolve("state/nst0.json");
  }

  private Path catalogDir() {
    return tmp.resolve("catalog");
  }

  private TapeLibrary open(FakeDriveBay bay, CartridgeOperator operator) throws IOException {
    return bay.open(state(), operator, BLOCK, TRAILER);
  }

  @Test
  void fullAndIncremental_onOneCartridge_restoreByteForByte_verify_andRebuildEqualsTheLostCatalog() throws Exception {
    FakeDriveBay bay = new FakeDriveBay(EARLY_WARNING, END).blank("A");
    bay.insert("A");
    byte[] s1 = image(1, 12);
    byte[] s2 = s1.clone();
    Arrays.fill(s2, 2 * CHUNK, 3 * CHUNK, (byte) 7);
    Map<Long, byte[]> host = new HashMap<>();
    host.put(1L, s1);
    Files.createDirectories(catalogDir());
    Operator nobody = new Operator(bay);
    try (TapeLibrary lib = open(bay, nobody); Catalog cat = Catalog.open(catalogDir())) {
      assertEquals(List.of(true), lib.list().stream().map(CartridgeInfo::blank).toList(), "a blank in the drive");
      List<String> notes = new ArrayList<>();
      BackupService.Result full = BackupService.run(lib, cat, new FakeSource("s1", 1, s1, host), request("full"),
          BackupProgress.NONE, notes::add);
      assertEquals("SHD001", full.labelled(), "the blank cartridge in the drive is labelled into the pool");
      assertEquals(1, full.fileNumber());
      BackupService.Result inc = BackupService.run(lib, cat, new FakeSource("s2", 2, s2, host), request("auto"),
          BackupProgress.NONE, n -> { });
      assertEquals("incremental", inc.level());
      assertEquals("SHD001", inc.cartridge());
      assertEquals(3, inc.fileNumber(), "appended at the end of data, after the full and its job record");
      assertEquals(List.of(), nobody.asked, "one cartridge: nobody was asked for another");

      // what the library remembers is what is on the tape
      CartridgeInfo c = lib.find("SHD001").orElseThrow();
      assertEquals(List.of("label", "image", "job", "image", "job"),
          c.files().stream().map(f -> f.kind()).toList());
      assertEquals(full.archiveBytes(), c.files().get(1).bytes());
      assertTrue(c.files().stream().allMatch(f -> f.closed()));
      assertEquals(frames(bay, "A"), fileSizes(c), "the tape's files, record for record");

      Path to1 = tmp.resolve("s1.img");
      Path to2 = tmp.resolve("s2.img");
      RestoreService.restore(lib, cat, "db", "s1", to1, false, BackupProgress.NONE);
      RestoreService.restore(lib, cat, "db", "s2", to2, false, BackupProgress.NONE);
      assertArrayEquals(s1, Files.readAllBytes(to1));
      assertArrayEquals(s2, Files.readAllBytes(to2));
      VerifyService.Result v = VerifyService.verify(lib, cat, VerifyService.Selection.ALL, BackupProgress.NONE,
          r -> { });
      assertTrue(v.ok(), v.failures().toString());
      assertEquals(2, v.archives().size());
      assertTrue(bay.calls().stream().anyMatch(s -> s.startsWith("MTSEEK")), "tape files are located by block");
      assertTrue(bay.calls().stream().anyMatch(s -> s.startsWith("MTEOM")), "appends go to the end of data");
    }

    // GNU tar reads the archive from the tape as it would from /dev/nst0
    Path tar = Tools.require("tar", "tar");
    Path piece = tmp.resolve("file1.tar");
    Files.write(piece, tapeFile(bay.frames("A"), 1));
    List<String> names = run(List.of(tar.toString(), "-tf", piece.toString()));
    assertEquals(ImageManifest.HEADER_MEMBER, names.get(0));
    assertEquals(ImageManifest.MANIFEST_MEMBER, names.get(names.size() - 1));

    // the catalog is lost; the state file and the cartridge are not
    Map<String, List<String>> lost = SpanningTest.dump(catalogDir().resolve(Catalog.FILE));
    Files.delete(catalogDir().resolve(Catalog.FILE));
    try (TapeLibrary lib = open(bay, new Operator(bay)); Catalog cat = Catalog.open(catalogDir())) {
      CatalogRebuild.Result r = CatalogRebuild.rebuild(lib, cat, BackupProgress.NONE, n -> { });
      assertEquals(List.of(), r.problems());
      assertEquals(2, r.jobs());
    }
    assertEquals(lost, SpanningTest.dump(catalogDir().resolve(Catalog.FILE)), "every row, times included");

    // and again with the drive's state lost too: the cartridge in the drive is read to its end once
    Files.delete(catalogDir().resolve(Catalog.FILE));
    Files.delete(state());
    try (TapeLibrary lib = open(bay, new Operator(bay)); Catalog cat = Catalog.open(catalogDir())) {
      CatalogRebuild.Result r = CatalogRebuild.rebuild(lib, cat, BackupProgress.NONE, n -> { });
      assertEquals(List.of(), r.problems());
      assertEquals(1, r.cartridges());
      RestoreService.restore(lib, cat, "db", "s2", tmp.resolve("s2b.img"), false, BackupProgress.NONE);
    }
    assertEquals(lost, SpanningTest.dump(catalogDir().resolve(Catalog.FILE)));
    assertArrayEquals(s2, Files.readAllBytes(tmp.resolve("s2b.img")));
  }

  @Test
  void archiveSpanningTwoCartridges_theOperatorChangesThem_andTheRestoreAsksForEachInTurn() throws Exception {
    FakeDriveBay bay = new FakeDriveBay(EARLY_WARNING, END).blank("A").blank("B");
    bay.insert("A");
    byte[] s1 = image(2, 30); // 1.9 MiB: two cartridges
    Files.createDirectories(catalogDir());
    Operator operator = new Operator(bay, "B");
    BackupService.Result r;
    try (TapeLibrary lib = open(bay, operator); Catalog cat = Catalog.open(catalogDir())) {
      List<String> notes = new ArrayList<>();
      r = BackupService.run(lib, cat, new FakeSource("s1", 1, s1, Map.of()), request("full"), BackupProgress.NONE,
          notes::add);
      assertEquals(2, r.pieces().size(), r.pieces().toString());
      assertEquals(List.of("SHD001", "SHD002"), r.labelledAll());
      assertEquals(1, operator.asked.size(), operator.asked.toString());
      CartridgeOperator.ChangeRequest asked = operator.asked.get(0);
      assertNull(asked.label(), "a blank cartridge is asked for");
      assertEquals("load a blank cartridge (to be labelled into pool nightly) into /dev/fake-nst0", asked.prompt());
      assertEquals("B", bay.inDrive());
      assertTrue(bay.calls().contains("MTOFFL 1"), "the full cartridge was ejected");
    }
    Operator restorer = new Operator(bay, "A", "B");
    try (TapeLibrary lib = open(bay, restorer); Catalog cat = Catalog.open(catalogDir())) {
      Path to = tmp.resolve("s1.img");
      RestoreService.restore(lib, cat, "db", "s1", to, false, BackupProgress.NONE);
      assertArrayEquals(s1, Files.readAllBytes(to));
      assertEquals(List.of("SHD001", "SHD002"), restorer.asked.stream().map(q -> q.label()).toList());
      assertEquals("load cartridge SHD001 (pool nightly) into /dev/fake-nst0", restorer.asked.get(0).prompt());
    }
  }

  @Test
  void missingCartridge_withoutAnOperator_failsNamingIt_andLeavesTheDriveAlone() throws Exception {
    FakeDriveBay bay = new FakeDriveBay(EARLY_WARNING, END).blank("A").blank("B");
    bay.insert("A");
    byte[] s1 = image(3, 30);
    Files.createDirectories(catalogDir());
    try (TapeLibrary lib = open(bay, new Operator(bay, "B")); Catalog cat = Catalog.open(catalogDir())) {
      BackupService.run(lib, cat, new FakeSource("s1", 1, s1, Map.of()), request("full"), BackupProgress.NONE,
          n -> { });
    }
    // B is in the drive; a restore needs A first
    try (TapeLibrary lib = open(bay, CartridgeOperator.none()); Catalog cat = Catalog.open(catalogDir())) {
      int opens = bay.opens();
      IOException e = assertThrows(IOException.class, () -> RestoreService.restore(lib, cat, "db", "s1",
          tmp.resolve("s1.img"), false, BackupProgress.NONE));
      assertTrue(e.getMessage().contains("cartridge SHD001 (pool nightly) is needed in /dev/fake-nst0, which holds"
          + " cartridge SHD002 (pool nightly); nobody can be asked to change it"), e.getMessage());
      assertEquals("B", bay.inDrive(), "nothing was ejected");
      assertEquals(opens, bay.opens());
    }
    // a backup that spans needs a blank one: the job fails cleanly and the catalog has no good archive of it
    bay.blank("C");
    try (TapeLibrary lib = open(bay, CartridgeOperator.none()); Catalog cat = Catalog.open(catalogDir())) {
      IOException e = assertThrows(IOException.class, () -> BackupService.run(lib, cat,
          new FakeSource("s2", 2, image(4, 30), Map.of()), request("full"), BackupProgress.NONE, n -> { }));
      assertTrue(e.getMessage().contains("a blank cartridge (to be labelled into pool nightly) is needed in"
          + " /dev/fake-nst0"), e.getMessage());
      List<Catalog.JobRecord> jobs = cat.jobs();
      assertEquals(2, jobs.size());
      assertEquals(Catalog.FAILED, jobs.get(1).outcome());
      assertNull(jobs.get(1).archive());
    }
  }

  @Test
  void wrongCartridgeLoaded_isRefusedByItsLabel_andTheOperatorIsAskedAgain() throws Exception {
    FakeDriveBay bay = new FakeDriveBay(EARLY_WARNING, END).blank("A").blank("B").blank("X").blank("Y");
    // Y gets the label SHD001 elsewhere (another library's state): the same label as A's, another cartridge
    bay.insert("Y");
    try (TapeLibrary other = bay.open(tmp.resolve("other.json"), CartridgeOperator.none(), BLOCK, TRAILER)) {
      other.writeLabel(1, "SHD001", "nightly", false);
    }
    Thread.sleep(5); // a later creation time for A's label
    bay.takeOut();
    bay.insert("A");
    byte[] s1 = image(5, 30);
    Files.createDirectories(catalogDir());
    try (TapeLibrary lib = open(bay, new Operator(bay, "B")); Catalog cat = Catalog.open(catalogDir())) {
      BackupService.run(lib, cat, new FakeSource("s1", 1, s1, Map.of()), request("full"), BackupProgress.NONE,
          n -> { });
    }
    // the operator first loads the blank X, then B again, then Y (labelled SHD001 too), then at last A
    Operator clumsy = new Operator(bay, "X", "B", "Y", "A", "B");
    try (TapeLibrary lib = open(bay, clumsy); Catalog cat = Catalog.open(catalogDir())) {
      Path to = tmp.resolve("s1.img");
      RestoreService.restore(lib, cat, "db", "s1", to, false, BackupProgress.NONE);
      assertArrayEquals(s1, Files.readAllBytes(to));
      List<String> refused = clumsy.asked.stream().map(q -> String.valueOf(q.refused())).toList();
      assertEquals(5, refused.size(), refused.toString());
      assertEquals(List.of("null", "the drive holds a blank cartridge",
          "the drive holds cartridge SHD002 (pool nightly)"), refused.subList(0, 3));
      assertTrue(refused.get(3).startsWith("the drive holds another cartridge labelled SHD001 (labelled "),
          refused.get(3));
      assertTrue(refused.get(3).contains("; the one wanted was labelled "), refused.get(3));
      assertEquals("null", refused.get(4));
      assertEquals(List.of("SHD001", "SHD001", "SHD001", "SHD001", "SHD002"),
          clumsy.asked.stream().map(q -> q.label()).toList());
      assertEquals(List.of(), cat.jobs().stream().filter(j -> !j.outcome().equals(Catalog.OK)).toList());
    }
    // an operator who declines: the load fails, and the cartridge that was in the drive is out
    Operator gaveUp = new Operator(bay);
    try (TapeLibrary lib = open(bay, gaveUp); Catalog cat = Catalog.open(catalogDir())) {
      assertEquals("B", bay.inDrive());
      assertThrows(TapeException.class, () -> lib.load(0, lib.find("SHD001").orElseThrow().slot()));
      assertEquals(1, gaveUp.asked.size());
      assertFalse(lib.loadedSlot(0).isPresent(), "the cartridge in the drive was ejected for the change");
    }
  }

  @Test
  void tapeOfAnotherProgram_isNeverLabelledOverByABackup_onlyWhenForced() throws Exception {
    FakeDriveBay bay = new FakeDriveBay(EARLY_WARNING, END).blank("T");
    byte[] data = "not a shade tape".getBytes(StandardCharsets.UTF_8);
    bay.frames("T").add(data);
    bay.frames("T").add(null);
    bay.insert("T");
    Files.createDirectories(catalogDir());
    try (TapeLibrary lib = open(bay, CartridgeOperator.none()); Catalog cat = Catalog.open(catalogDir())) {
      assertEquals(0, lib.slots(), "neither a shade cartridge nor a blank one");
      IOException e = assertThrows(IOException.class, () -> BackupService.run(lib, cat,
          new FakeSource("s1", 1, image(6, 12), Map.of()), request("full"), BackupProgress.NONE, n -> { }));
      assertTrue(e.getMessage().contains("a blank cartridge (to be labelled into pool nightly) is needed in"
          + " /dev/fake-nst0, which holds a cartridge with data but no shade label"), e.getMessage());
      assertArrayEquals(data, bay.frames("T").get(0), "the tape is untouched");
      int slot = lib.loadedSlot(0).orElseThrow();
      TapeException refused = assertThrows(TapeException.class, () -> lib.writeLabel(slot, "SHD001", "p", false));
      assertTrue(refused.getMessage().contains("a blank cartridge (to be labelled into pool p) is needed"),
          refused.getMessage());
      assertEquals("SHD001", lib.writeLabel(slot, "SHD001", "p", true).label());
      assertEquals(List.of("label"), lib.find("SHD001").orElseThrow().files().stream().map(f -> f.kind()).toList());
    }
  }

  @Test
  void writeProtectedCartridge_isRestoredFrom_butNeverWrittenTo() throws Exception {
    FakeDriveBay bay = new FakeDriveBay(EARLY_WARNING, END).blank("A");
    bay.insert("A");
    byte[] s1 = image(7, 12);
    Files.createDirectories(catalogDir());
    try (TapeLibrary lib = open(bay, CartridgeOperator.none()); Catalog cat = Catalog.open(catalogDir())) {
      BackupService.run(lib, cat, new FakeSource("s1", 1, s1, Map.of()), request("full"), BackupProgress.NONE,
          n -> { });
    }
    bay.writeProtect("A");
    List<byte[]> before = new ArrayList<>(bay.frames("A"));
    try (TapeLibrary lib = open(bay, CartridgeOperator.none()); Catalog cat = Catalog.open(catalogDir())) {
      RestoreService.restore(lib, cat, "db", "s1", tmp.resolve("s1.img"), false, BackupProgress.NONE);
      assertArrayEquals(s1, Files.readAllBytes(tmp.resolve("s1.img")));
      IOException e = assertThrows(IOException.class, () -> BackupService.run(lib, cat,
          new FakeSource("s2", 2, s1, Map.of()), request("full"), BackupProgress.NONE, n -> { }));
      assertTrue(e.getMessage().contains("a blank cartridge (to be labelled into pool nightly) is needed in"
          + " /dev/fake-nst0, which holds cartridge SHD001 (pool nightly)"), e.getMessage());
      assertEquals(1, cat.jobs().size(), "the backup failed before its job started");
    }
    assertEquals(before.size(), bay.frames("A").size(), "nothing was written to the protected cartridge");
  }

  /** The bytes of each tape file on {@code name}'s tape, from its records. */
  private static List<Long> frames(FakeDriveBay bay, String name) {
    List<Long> sizes = new ArrayList<>();
    long n = 0;
    for (byte[] f : bay.frames(name)) {
      if (f == null) {
        sizes.add(n);
        n = 0;
      } else {
        n += f.length;
      }
    }
    return sizes;
  }

  private static List<Long> fileSizes(CartridgeInfo c) {
    return c.files().stream().map(f -> f.bytes()).toList();
  }

  /** The records of tape file {@code n} of {@code frames}, concatenated. */
  private static byte[] tapeFile(List<byte[]> frames, int n) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int file = 0;
    for (byte[] f : frames) {
      if (f == null) {
        if (file++ == n) {
          break;
        }
      } else if (file == n) {
        out.write(f, 0, f.length);
      }
    }
    return out.toByteArray();
  }

  private List<String> run(List<String> cmd) throws Exception {
    Process p = new ProcessBuilder(cmd).directory(tmp.toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, p.exitValue(), cmd + ": " + out);
    return out.isEmpty() ? List.of() : List.of(out.split("\n"));
  }
}
