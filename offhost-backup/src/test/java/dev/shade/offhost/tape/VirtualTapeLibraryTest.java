package dev.shade.offhost.tape;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The virtual library: slots, drives, labels, listing, locking, torn tails, and GNU tar on its tape files. */
class VirtualTapeLibraryTest {
  static final int BLOCK = 64 * 1024;
  static final long MIB = 1 << 20;

  @TempDir Path tmp;

  private VirtualTapeLibrary create(int slots) throws IOException {
    return VirtualTapeLibrary.create(tmp.resolve("vtl"), LibraryConfig.of(slots, 2, 8 * MIB, BLOCK));
  }

  @Test
  void create_makesBlankCartridgesAndEmptyDrives() throws IOException {
    try (VirtualTapeLibrary lib = create(3)) {
      assertEquals(3, lib.list().size());
      for (CartridgeInfo c : lib.list()) {
        assertTrue(c.blank());
        assertEquals(0, c.usedBytes());
        assertEquals(8 * MIB, c.capacity());
        assertEquals(List.of(), c.files());
        assertEquals(-1, c.loadedIn());
      }
      assertTrue(lib.loadedSlot(0).isEmpty());
      assertEquals(MIB, lib.config().earlyWarningZone(), "an eighth of the capacity");
    }
    assertTrue(Files.exists(tmp.resolve("vtl/slot-0003.tape")));
    assertTrue(VirtualTapeLibrary.isLibrary(tmp.resolve("vtl")));
  }

  @Test
  void create_refusesANonEmptyDirectoryAndBadShapes() throws IOException {
    Files.createDirectories(tmp.resolve("full"));
    Files.writeString(tmp.resolve("full/x"), "x");
    TapeException e = assertThrows(TapeException.class, () -> VirtualTapeLibrary.create(tmp.resolve("full"), 1, 8 * MIB));
    assertTrue(e.getMessage().contains("not empty"), e.getMessage());
    IllegalArgumentException small = assertThrows(IllegalArgumentException.class, () -> LibraryConfig.of(1, 100_000));
    assertTrue(small.getMessage().contains("capacity"), small.getMessage());
    assertThrows(IllegalArgumentException.class, () -> LibraryConfig.of(0, 8 * MIB));
  }

  @Test
  void open_secondOpenWhileTheFirstHoldsItFailsClearly() throws IOException {
    try (VirtualTapeLibrary lib = create(1)) {
      TapeException e = assertThrows(TapeException.class, () -> VirtualTapeLibrary.open(lib.directory()));
      assertTrue(e.getMessage().contains("in use by another process"), e.getMessage());
    }
    VirtualTapeLibrary.open(tmp.resolve("vtl")).close(); // free again
  }

  @Test
  void open_missingOrNotALibraryNamesThePath() throws IOException {
    assertTrue(assertThrows(TapeException.class, () -> VirtualTapeLibrary.open(tmp.resolve("none")))
        .getMessage().contains("does not exist"));
    Files.createDirectories(tmp.resolve("empty"));
    assertTrue(assertThrows(TapeException.class, () -> VirtualTapeLibrary.open(tmp.resolve("empty")))
        .getMessage().contains("not a tape library"));
  }

  @Test
  void loadUnload_isRememberedAcrossOpens() throws IOException {
    try (VirtualTapeLibrary lib = create(3)) {
      TapeDrive d = lib.load(1, 2);
      d.write(ByteBuffer.wrap(new byte[100]));
      d.writeFilemarks(1);
      assertTrue(assertThrows(TapeException.class, () -> lib.load(1, 3)).getMessage().contains("unload it first"));
      assertTrue(assertThrows(TapeException.class, () -> lib.load(0, 2)).getMessage().contains("is in drive 1"));
    }
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(tmp.resolve("vtl"))) {
      assertEquals(2, lib.loadedSlot(1).getAsInt());
      assertEquals(1, lib.cartridgeInfo(2).loadedIn());
      TapeDrive d = lib.drive(1);
      assertTrue(d.status().beginningOfTape());
      assertEquals(100, d.read(ByteBuffer.allocate(BLOCK)));
      lib.unload(1);
      assertTrue(lib.loadedSlot(1).isEmpty());
      assertThrows(TapeException.class, () -> lib.drive(1));
      assertThrows(TapeException.class, () -> lib.unload(1));
    }
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(tmp.resolve("vtl"))) {
      assertTrue(lib.loadedSlot(1).isEmpty());
    }
  }

  @Test
  void label_isAPaxTarInFileZeroWithTheNextSequenceOfItsPool() throws Exception {
    try (VirtualTapeLibrary lib = create(3)) {
      TapeLabel a = lib.writeLabel(1, "SHD001", "nightly", false);
      TapeLabel b = lib.writeLabel(3, "SHD003", "nightly", false);
      TapeLabel c = lib.writeLabel(2, "WK0001", "weekly", false);
      assertEquals(1, a.sequence());
      assertEquals(2, b.sequence());
      assertEquals(1, c.sequence());
      assertEquals(TapeLabel.FORMAT, a.format());
      CartridgeInfo one = lib.cartridgeInfo(1);
      assertEquals("SHD001", one.label());
      assertEquals("nightly", one.pool());
      assertEquals(1, one.files().size());
      assertEquals("label", one.files().get(0).kind());
      assertEquals(1, one.files().get(0).records());
      assertTrue(one.files().get(0).closed());
      assertEquals(3, lib.find("SHD003").get().slot());
      assertTrue(lib.find("NOPE").isEmpty());

      TapeException dup = assertThrows(TapeException.class, () -> lib.writeLabel(2, "SHD001", "nightly", true));
      assertTrue(dup.getMessage().contains("already on the cartridge of slot 1"), dup.getMessage());
      TapeException again = assertThrows(TapeException.class, () -> lib.writeLabel(1, "SHD009", "nightly", false));
      assertTrue(again.getMessage().contains("already labelled 'SHD001'"), again.getMessage());
      assertThrows(IllegalArgumentException.class, () -> lib.writeLabel(1, "bad label", "p", true));

      // GNU tar reads the label file: a PAX archive with the one member
      byte[] file0 = tapeFile(lib.openForReading(1), 0);
      assertEquals(BLOCK, file0.length, "one full record: the tar is blocked at the drive's block size");
      assertEquals("shade-label.json\n", tar(file0, "-t"));
      String json = tar(file0, "-x", "-O");
      assertTrue(json.contains("\"label\" : \"SHD001\"") && json.contains("\"pool\" : \"nightly\"")
          && json.contains("\"sequence\" : 1") && json.contains("\"format\" : \"shade-tape-1\""), json);
      assertTrue(new String(file0, StandardCharsets.US_ASCII).contains("comment="), "a pax extended header");
    }
  }

  @Test
  void relabel_withForceErasesTheTape() throws IOException {
    try (VirtualTapeLibrary lib = create(1)) {
      lib.writeLabel(1, "A", "p", false);
      TapeDrive d = lib.load(1);
      d.seekEndOfData();
      d.write(ByteBuffer.wrap(new byte[1000]));
      d.writeFilemarks(1);
      assertEquals(2, lib.cartridgeInfo(1).files().size());
      lib.unload(0);
      lib.writeLabel(1, "B", "p", true);
      CartridgeInfo c = lib.cartridgeInfo(1);
      assertEquals("B", c.label());
      assertEquals(1, c.files().size());
    }
  }

  @Test
  void list_describesEachFileWithItsKindAndSize() throws Exception {
    try (VirtualTapeLibrary lib = create(1)) {
      lib.writeLabel(1, "SHD001", "p", false);
      TapeDrive d = lib.load(1);
      d.seekEndOfData();
      writeTar(d, "shade-archive.json", 3 * BLOCK + 17); // a shade archive, by its first member
      writeTar(d, "etc/hosts", 10); // some other tar
      d.writeFilemarks(1); // an empty file
      d.write(ByteBuffer.wrap("raw bytes".getBytes(StandardCharsets.US_ASCII))); // left open
      List<TapeFileInfo> files = lib.cartridgeInfo(1).files();
      assertEquals(List.of("label", "archive", "data", "empty", "data"), files.stream().map(TapeFileInfo::kind).toList());
      assertEquals(List.of(0, 1, 2, 3, 4), files.stream().map(TapeFileInfo::fileNumber).toList());
      assertEquals(9, files.get(4).bytes());
      assertFalse(files.get(4).closed());
      assertEquals(files.get(1).firstBlock() + files.get(1).records() + 1, files.get(2).firstBlock());
      assertEquals(files.stream().mapToLong(TapeFileInfo::bytes).sum(), lib.cartridgeInfo(1).usedBytes());
    }
  }

  @Test
  void list_again_isTheSameUntilATapeFileIsWrittenOrTheTapeIsCut() throws Exception {
    try (VirtualTapeLibrary lib = create(1)) {
      lib.writeLabel(1, "SHD001", "p", false);
      TapeDrive d = lib.load(1);
      d.seekEndOfData();
      writeTar(d, "shade-archive.json", 2 * BLOCK);
      List<TapeFileInfo> first = lib.find("SHD001").orElseThrow().files();
      assertEquals(List.of("label", "archive"), first.stream().map(TapeFileInfo::kind).toList());
      assertEquals(first, lib.cartridgeInfo(1).files(), "listed twice, nothing written between");

      writeTar(d, "shade-job.json", 10); // a new file
      assertEquals(List.of("label", "archive", "job"),
          lib.find("SHD001").orElseThrow().files().stream().map(TapeFileInfo::kind).toList());
      d.write(ByteBuffer.wrap(new byte[5])); // a record appended to an open file
      assertEquals(List.of(false, 5L), List.of(lib.cartridgeInfo(1).files().get(3).closed(),
          lib.cartridgeInfo(1).files().get(3).bytes()));

      d.seekFile(1);
      writeTar(d, "etc/hosts", 10); // written over file 1: files 1 to 3 are gone, file 1 is another tar
      List<TapeFileInfo> cut = lib.find("SHD001").orElseThrow().files();
      assertEquals(List.of("label", "data"), cut.stream().map(TapeFileInfo::kind).toList());
    }
  }

  @Test
  void tarOfATapeFile_readsAPaxArchiveWrittenWithCommonsCompress() throws Exception {
    Random random = new Random(7);
    byte[] big = new byte[5 * BLOCK + 123];
    random.nextBytes(big);
    try (VirtualTapeLibrary lib = create(1)) {
      lib.writeLabel(1, "SHD001", "p", false);
      TapeDrive d = lib.load(1);
      d.seekEndOfData();
      try (TapeOutputStream out = new TapeOutputStream(d);
          TarArchiveOutputStream tar = new TarArchiveOutputStream(out, BLOCK, "UTF-8")) {
        tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        String longName = "data/" + "d".repeat(120) + "/volume.img";
        for (String name : List.of("shade-archive.json", longName, "data/small.txt")) {
          byte[] body = name.equals(longName) ? big : name.getBytes(StandardCharsets.UTF_8);
          TarArchiveEntry e = new TarArchiveEntry(name);
          e.setSize(body.length);
          tar.putArchiveEntry(e);
          tar.write(body);
          tar.closeArchiveEntry();
        }
      }
      byte[] file1 = tapeFile(lib.openForReading(1), 1);
      assertEquals(0, file1.length % BLOCK);
      String names = tar(file1, "-t");
      assertEquals("shade-archive.json\ndata/" + "d".repeat(120) + "/volume.img\ndata/small.txt\n", names);
      Path out = Files.createDirectories(tmp.resolve("x"));
      tar(file1, "-x", "-C", out.toString());
      assertArrayEquals(big, Files.readAllBytes(out.resolve("data/" + "d".repeat(120) + "/volume.img")));
    }
  }

  @Test
  void tornTail_isCutAtOpenAndEveryCompleteRecordReadsBack() throws IOException {
    Path dir = tmp.resolve("vtl");
    try (VirtualTapeLibrary lib = create(1)) {
      TapeDrive d = lib.load(1);
      for (int i = 0; i < 5; i++) {
        d.write(TapeDriveContractTest.record(i, 1000 + i));
      }
    }
    Path cart = dir.resolve("slot-0001.tape");
    long good = Files.size(cart);
    // a record whose write was cut short: a valid header, half its payload
    try (RandomAccessFile f = new RandomAccessFile(cart.toFile(), "rw")) {
      ByteBuffer h = ByteBuffer.allocate(16);
      h.put(CartridgeFile.RECORD).put(new byte[3]).putInt(5000).putInt(0);
      java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
      crc.update(h.array(), 0, 12);
      h.putInt((int) crc.getValue());
      f.seek(good);
      f.write(h.array());
      f.write(new byte[2500]);
    }
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(dir)) {
      TapeDrive d = lib.drive(0);
      assertEquals(good, Files.size(cart), "the torn record is cut off");
      for (int i = 0; i < 5; i++) {
        ByteBuffer b = ByteBuffer.allocate(BLOCK);
        d.read(b);
        assertArrayEquals(TapeDriveContractTest.record(i, 1000 + i).array(), java.util.Arrays.copyOf(b.array(), b.position()));
      }
      assertEquals(0, d.read(ByteBuffer.allocate(BLOCK)), "the filemark written at the close");
      assertEquals(-1, d.read(ByteBuffer.allocate(BLOCK)));
    }
  }

  @Test
  void corruptRecord_readsAsAMediumError() throws IOException {
    Path dir = tmp.resolve("vtl");
    try (VirtualTapeLibrary lib = create(1)) {
      TapeDrive d = lib.load(1);
      d.write(ByteBuffer.wrap(new byte[1000]));
      d.write(ByteBuffer.wrap(new byte[1000]));
      d.writeFilemarks(1);
    }
    try (RandomAccessFile f = new RandomAccessFile(dir.resolve("slot-0001.tape").toFile(), "rw")) {
      f.seek(CartridgeFile.HEADER_SIZE + CartridgeFile.FRAME_HEADER + 10);
      f.write(1);
    }
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(dir)) {
      TapeDrive d = lib.drive(0);
      TapeException e = assertThrows(TapeException.class, () -> d.read(ByteBuffer.allocate(BLOCK)));
      assertTrue(e.getMessage().contains("medium error") && e.getMessage().contains("block 0"), e.getMessage());
    }
  }

  @Test
  void handleOnACartridgeAnotherHandleCut_findsItselfAtTheNewEndOfData() throws IOException {
    try (VirtualTapeLibrary lib = create(1)) {
      TapeDrive d = lib.load(1);
      for (int i = 0; i < 5; i++) {
        d.write(ByteBuffer.wrap(new byte[100]));
      }
      d.writeFilemarks(1);
      TapeDrive reader = lib.openForReading(1);
      reader.seekEndOfData();
      lib.writeLabel(1, "A", "p", false); // erases the tape under both handles
      assertEquals(-1, reader.read(ByteBuffer.allocate(BLOCK)));
      assertTrue(reader.status().endOfData());
      d.seekFile(1);
      assertEquals(-1, d.read(ByteBuffer.allocate(BLOCK)), "only the label is left");
    }
  }

  @Test
  void readOnlyHandle_refusesWrites() throws IOException {
    try (VirtualTapeLibrary lib = create(1)) {
      TapeDrive r = lib.openForReading(1);
      assertTrue(r.status().writeProtected());
      assertTrue(assertThrows(TapeException.class, () -> r.write(ByteBuffer.allocate(1))).getMessage()
          .contains("write-protected"));
    }
  }

  static void writeTar(TapeDrive d, String name, int size) throws IOException {
    try (TapeOutputStream out = new TapeOutputStream(d);
        TarArchiveOutputStream tar = new TarArchiveOutputStream(out, d.blockSize(), "UTF-8")) {
      TarArchiveEntry e = new TarArchiveEntry(name);
      e.setSize(size);
      tar.putArchiveEntry(e);
      tar.write(new byte[size]);
      tar.closeArchiveEntry();
    }
  }

  /** The bytes of tape file {@code n}. */
  static byte[] tapeFile(TapeDrive d, int n) throws IOException {
    d.seekFile(n);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    new TapeInputStream(d).transferTo(out);
    d.close();
    return out.toByteArray();
  }

  /** Runs GNU tar with {@code args} and {@code -f -} on {@code archive}; returns its stdout. */
  static String tar(byte[] archive, String... args) throws Exception {
    List<String> cmd = new java.util.ArrayList<>(List.of(dev.shade.testing.Tools.require("tar", "tar").toString()));
    cmd.addAll(List.of(args));
    cmd.addAll(List.of("-f", "-"));
    Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    // fed from another thread: tar may stop reading at the end-of-archive blocks, before the padding
    Thread feeder = new Thread(() -> {
      try (OutputStream in = p.getOutputStream()) {
        in.write(archive);
      } catch (IOException e) {
        // broken pipe: tar has what it needs
      }
    });
    feeder.start();
    String out;
    try (InputStream s = p.getInputStream()) {
      out = new String(s.readAllBytes(), StandardCharsets.UTF_8);
    }
    assertTrue(p.waitFor(30, TimeUnit.SECONDS));
    feeder.join();
    assertEquals(0, p.exitValue(), "tar " + cmd + " failed; stdout: " + out);
    return out;
  }

  @Test
  void unlabelledCartridge_hasNoLabel() throws IOException {
    try (VirtualTapeLibrary lib = create(1)) {
      assertTrue(lib.label(1).isEmpty());
      assertNull(lib.cartridgeInfo(1).label());
    }
  }
}
