package dev.shade.offhost.tape;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The frame index a cartridge keeps beside it ({@code CARTRIDGE.index}): the next open takes the
 * frames from it instead of reading every header, and whatever makes it doubtful (another
 * cartridge's, a flipped byte, frames cut since, a cartridge shorter than it) means the full
 * scan, with the same frames as without it.
 */
class CartridgeIndexTest {
  private static final long CAPACITY = 64L << 20;
  private static final long ZONE = 1L << 20;
  @TempDir Path tmp;

  /** A closed cartridge of {@code files} tape files of three records each, a filemark after each. */
  private Path cartridge(String name, int files) throws IOException {
    Path p = tmp.resolve(name);
    try (CartridgeFile c = CartridgeFile.create(p, CAPACITY, ZONE)) {
      for (int f = 0; f < files; f++) {
        for (int r = 0; r < 3; r++) {
          c.appendRecord(TapeDriveContractTest.record(f * 10 + r, 1000 + 100 * f + r));
        }
        c.appendFilemarks(1);
      }
    }
    return p;
  }

  /** Every frame as (length or -1) and each record's bytes, read with CRC checks. */
  private static List<String> frames(CartridgeFile c) throws IOException {
    List<String> out = new ArrayList<>();
    for (int f = 0; f < c.frames(); f++) {
      if (c.isFilemark(f)) {
        out.add("F");
      } else {
        ByteBuffer b = ByteBuffer.allocate(c.length(f));
        c.readRecord(f, b);
        out.add(c.length(f) + ":" + java.util.Arrays.hashCode(b.array()));
      }
    }
    return out;
  }

  private static List<String> scanned(Path p) throws IOException {
    try (CartridgeFile c = CartridgeFile.open(p)) {
      return frames(c);
    }
  }

  @Test
  void closeKeepsTheIndex_andTheNextOpenReadsNoHeader() throws IOException {
    Path p = cartridge("a.tape", 4);
    assertTrue(Files.exists(CartridgeFile.indexPath(p)), "close wrote the index");
    List<String> want;
    Files.move(CartridgeFile.indexPath(p), tmp.resolve("kept.index"));
    try (CartridgeFile c = CartridgeFile.open(p)) {
      assertEquals(16, c.headersScanned, "without an index every frame header is read");
      want = frames(c);
    }
    try (CartridgeFile c = CartridgeFile.open(p)) {
      assertEquals(0, c.headersScanned, "the index written by the last close covers every frame");
      assertEquals(want, frames(c));
      assertEquals(16, c.frames());
    }
  }

  @Test
  void framesAppendedAfterTheIndex_areScanned_aTornTailAfterItIsCut() throws IOException {
    Path p = cartridge("a.tape", 2);
    Path oldIndex = tmp.resolve("old.index");
    Files.copy(CartridgeFile.indexPath(p), oldIndex);
    try (CartridgeFile c = CartridgeFile.open(p)) {
      c.appendRecord(TapeDriveContractTest.record(99, 4000));
      c.appendFilemarks(1);
    }
    List<String> want = scanned(p);
    // as after a process killed before its close wrote the index: the old one covers a prefix
    Files.copy(oldIndex, CartridgeFile.indexPath(p), StandardCopyOption.REPLACE_EXISTING);
    long good = Files.size(p);
    try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
      f.seek(good);
      f.write(new byte[] {'R', 0, 0}); // an incomplete frame header: the torn tail
    }
    try (CartridgeFile c = CartridgeFile.open(p)) {
      assertEquals(3, c.headersScanned, "the record and the filemark after the index, and the torn header");
      assertEquals(want, frames(c));
    }
    assertEquals(good, Files.size(p), "the torn tail is cut");
  }

  @Test
  void aCutBelowTheIndex_deletesIt_beforeTheFramesAreWrittenAgain() throws IOException {
    Path p = cartridge("a.tape", 3);
    try (CartridgeFile c = CartridgeFile.open(p)) {
      assertEquals(0, c.headersScanned);
      c.truncate(5); // inside the second tape file
      assertFalse(Files.exists(CartridgeFile.indexPath(p)), "the index is gone before the tape is written again");
      c.appendRecord(TapeDriveContractTest.record(7, 777));
    }
    try (CartridgeFile c = CartridgeFile.open(p)) {
      assertEquals(0, c.headersScanned, "the close indexed the new frames");
      assertEquals(6, c.frames());
      assertEquals(777, c.length(5));
    }
  }

  @Test
  void aDoubtfulIndex_isNotTaken_andTheScanFindsTheSameFrames() throws IOException {
    Path p = cartridge("a.tape", 3);
    Path index = CartridgeFile.indexPath(p);
    byte[] good = Files.readAllBytes(index);
    List<String> want = scanned(p);

    byte[] flipped = good.clone();
    flipped[60] ^= 1; // a frame length
    Files.write(index, flipped);
    assertFullScan(p, want, "a flipped byte (CRC mismatch)");

    Files.write(index, java.util.Arrays.copyOf(good, 30));
    assertFullScan(p, want, "a cut index");

    // another cartridge's index, of the same frames
    Path other = cartridge("b.tape", 3);
    Files.copy(CartridgeFile.indexPath(other), index, StandardCopyOption.REPLACE_EXISTING);
    if (!java.util.Arrays.equals(Files.readAllBytes(index), good)) { // created in another millisecond
      assertFullScan(p, want, "another cartridge's index");
    }

    // the cartridge cut outside shade, shorter than what the index covers
    Files.write(index, good);
    try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
      f.setLength(f.length() - 16); // the last filemark
    }
    try (CartridgeFile c = CartridgeFile.open(p)) {
      assertEquals(11, c.headersScanned, "every frame read again");
      assertEquals(want.subList(0, 11), frames(c));
    }
  }

  private static void assertFullScan(Path p, List<String> want, String why) throws IOException {
    try (CartridgeFile c = CartridgeFile.open(p)) {
      assertEquals(want.size(), c.headersScanned, why + ": every frame header is read");
      assertEquals(want, frames(c), why);
    }
    try (CartridgeFile c = CartridgeFile.open(p)) {
      assertEquals(0, c.headersScanned, why + ": the close wrote a good index again");
    }
  }

  @Test
  void notesOnClosedFiles_areKept_andACutDropsThoseOfTheFilesItChanges() throws IOException {
    Path p = cartridge("a.tape", 3);
    try (CartridgeFile c = CartridgeFile.open(p)) {
      c.note(0, "kind1:label");
      c.note(4, "kind1:image");
      c.note(8, "kind1:job");
    }
    try (CartridgeFile c = CartridgeFile.open(p)) {
      assertEquals(0, c.headersScanned);
      assertEquals("kind1:label", c.note(0));
      assertEquals("kind1:image", c.note(4));
      assertEquals("kind1:job", c.note(8));
      c.truncate(6); // inside the second tape file (frames 4 to 7)
      assertEquals("kind1:label", c.note(0));
      assertNull(c.note(4), "the file the cut is in changed");
      assertNull(c.note(8));
    }
    try (CartridgeFile c = CartridgeFile.open(p)) {
      assertEquals("kind1:label", c.note(0));
      assertNull(c.note(4));
    }
  }

  @Test
  void theLibraryListsTheSameKinds_withTheIndexAndWithout() throws IOException {
    Path dir = tmp.resolve("vtl");
    List<String> withIndex;
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(dir, new LibraryConfig(1, 1, CAPACITY, ZONE, 64 * 1024))) {
      lib.writeLabel(1, "SHD001", "p", false);
      TapeDrive d = lib.load(1);
      d.seekEndOfData();
      d.write(TapeDriveContractTest.record(1, 5000)); // not a tar: "data"
      d.writeFilemarks(1);
    }
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(dir)) {
      withIndex = kinds(lib);
    }
    assertTrue(Files.readString(CartridgeFile.indexPath(dir.resolve("slot-0001.tape")),
        java.nio.charset.StandardCharsets.ISO_8859_1).contains("kind1:label"), "the kinds are kept as notes");
    Files.delete(CartridgeFile.indexPath(dir.resolve("slot-0001.tape")));
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(dir)) {
      assertEquals(withIndex, kinds(lib));
    }
    assertEquals(List.of("label", "data"), withIndex);
  }

  private static List<String> kinds(VirtualTapeLibrary lib) throws IOException {
    List<String> out = new ArrayList<>();
    for (TapeFileInfo f : lib.list().get(0).files()) {
      out.add(f.kind());
    }
    return out;
  }

  @Test
  void aNewCartridge_dropsAnIndexLeftWhereItIsMade() throws IOException {
    Path p = cartridge("a.tape", 2);
    Path index = CartridgeFile.indexPath(p);
    Path keep = tmp.resolve("keep.index");
    Files.copy(index, keep);
    Files.delete(p); // the index stays behind
    CartridgeFile.create(p, CAPACITY, ZONE).close();
    try (CartridgeFile c = CartridgeFile.open(p)) {
      assertEquals(0, c.frames(), "a blank cartridge");
    }
    byte[] b = Files.readAllBytes(index);
    assertFalse(java.util.Arrays.equals(Files.readAllBytes(keep), b), "the old index is gone");
    assertArrayEquals(java.util.Arrays.copyOf(CartridgeFile.INDEX_MAGIC, 8), java.util.Arrays.copyOf(b, 8));
  }
}
