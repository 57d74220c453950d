package dev.shade.nativeio;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.testing.Host;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link FileHandle#punchHole} and {@link FileHandle#allocate} on real files. */
class HolePunchAllocateTest {
  private static final int MIB = 1 << 20;
  private static final int KIB = 1 << 10;

  @TempDir
  Path dir;

  @Test
  void punchHole_blockAlignedRange_readsZerosAndIsAHole() throws Exception {
    Path path = dir.resolve("punch.img");
    byte[] data = Patterns.nonZero(1, MIB);
    try (FileHandle f = filled(path, data)) {
      long before = Host.allocatedBytes(path);

      f.punchHole(256 * KIB, 128 * KIB);

      assertEquals(MIB, f.size(), "punching a hole keeps the size");
      byte[] back = Patterns.readFile(f, 0, MIB, false);
      assertEquals(-1, Patterns.firstNonZero(Arrays.copyOfRange(back, 256 * KIB, 384 * KIB)));
      assertArrayEquals(Arrays.copyOfRange(data, 0, 256 * KIB),
          Arrays.copyOfRange(back, 0, 256 * KIB));
      assertArrayEquals(Arrays.copyOfRange(data, 384 * KIB, MIB),
          Arrays.copyOfRange(back, 384 * KIB, MIB));
      assertEquals(256 * KIB, f.nextHole(0));
      assertEquals(384 * KIB, f.nextData(256 * KIB));
      assertEquals(0, f.nextData(0));
      assertEquals(MIB, f.nextHole(384 * KIB), "the end of the file counts as a hole");
      assertEquals(-1, f.nextData(MIB), "nothing at or past the end");
      assertEquals(-1, f.nextHole(MIB), "nothing at or past the end");
      long freed = before - Host.allocatedBytes(path);
      assertTrue(freed >= 124 * KIB && freed <= 128 * KIB,
          "punching 128 KiB freed " + freed + " bytes of disk");
    }
  }

  @Test
  void punchHole_unalignedRange_zerosExactlyThatRange() throws Exception {
    Path path = dir.resolve("punch.img");
    byte[] data = Patterns.nonZero(2, MIB);
    long pos = 100_000;
    int len = 50_001;
    try (FileHandle f = filled(path, data)) {
      f.punchHole(pos, len);

      byte[] back = Patterns.readFile(f, 0, MIB, true);
      for (int i = 0; i < MIB; i++) {
        byte want = i >= pos && i < pos + len ? 0 : data[i];
        if (back[i] != want) {
          throw new AssertionError("byte " + i + " is " + back[i] + ", expected " + want
              + " after punching [" + pos + ", +" + len + ")");
        }
      }
      // Whole blocks inside the range are deallocated; partial ones were only zeroed.
      long hole = f.nextHole(0);
      assertTrue(hole >= pos && hole < pos + len, "first hole at " + hole);
      long next = f.nextData(hole);
      assertTrue(next > hole && next <= pos + len, "data again at " + next);
    }
  }

  @Test
  void punchHole_throughMapping_mappingReadsZeros() throws Exception {
    Path path = dir.resolve("punch.img");
    byte[] data = Patterns.nonZero(3, MIB);
    try (FileHandle f = filled(path, data); MappedFile m = MappedFile.map(f, MIB, true, 16)) {
      assertArrayEquals(data, Patterns.readMapped(m, 0, MIB, false));

      f.punchHole(60 * KIB, 8 * KIB); // crosses the 64 KiB chunk boundary

      assertEquals(-1, Patterns.firstNonZero(Patterns.readMapped(m, 60 * KIB, 8 * KIB, true)),
          "the mapping sees the hole");
      assertArrayEquals(Arrays.copyOfRange(data, 68 * KIB, MIB),
          Patterns.readMapped(m, 68 * KIB, MIB - 68 * KIB, false));
    }
  }

  @Test
  void punchHole_emptyAndPastEof_changeNothing() throws Exception {
    Path path = dir.resolve("punch.img");
    byte[] data = Patterns.nonZero(4, 64 * KIB);
    try (FileHandle f = filled(path, data)) {
      f.punchHole(0, 0);
      f.punchHole(64 * KIB, MIB);
      assertEquals(64 * KIB, f.size());
      assertArrayEquals(data, Patterns.readFile(f, 0, 64 * KIB, false));
    }
  }

  @Test
  void allocate_sparseRange_reservesBlocksAndKeepsSizeAndZeros() throws Exception {
    Path path = dir.resolve("alloc.img");
    try (FileHandle f = FileHandle.create(path)) {
      f.truncate(8 * MIB);
      long before = Host.allocatedBytes(path);

      f.allocate(MIB, 4 * MIB);

      long reserved = Host.allocatedBytes(path) - before;
      assertTrue(reserved >= 4 * MIB && reserved < 5 * MIB,
          "allocating 4 MiB reserved " + reserved + " bytes");
      assertEquals(8 * MIB, f.size());
      assertEquals(-1, Patterns.firstNonZero(Patterns.readFile(f, 0, 8 * MIB, true)),
          "reserved blocks read as zeros");
    }
  }

  @Test
  void allocate_pastEndOfFile_keepsSize() throws Exception {
    Path path = dir.resolve("alloc.img");
    try (FileHandle f = FileHandle.create(path)) {
      f.writeFully(0, ByteBuffer.wrap(Patterns.nonZero(5, 4096)));

      f.allocate(0, 2 * MIB);
      f.allocate(0, 0);

      assertEquals(4096, f.size(), "FALLOC_FL_KEEP_SIZE");
      assertTrue(Host.allocatedBytes(path) >= 2 * MIB, "blocks are reserved past EOF");
      assertArrayEquals(Patterns.nonZero(5, 4096), Patterns.readFile(f, 0, 4096, false));
    }
  }

  @Test
  void allocateAndPunchHole_negativeArguments_nameTheValue() throws Exception {
    try (FileHandle f = FileHandle.create(dir.resolve("args.img"))) {
      assertEquals("offset is negative: -1",
          assertThrows(IllegalArgumentException.class, () -> f.allocate(-1, 1)).getMessage());
      assertEquals("length is negative: -4096",
          assertThrows(IllegalArgumentException.class, () -> f.allocate(0, -4096)).getMessage());
      assertEquals("offset is negative: -7",
          assertThrows(IllegalArgumentException.class, () -> f.punchHole(-7, 1)).getMessage());
      assertEquals("length is negative: -2",
          assertThrows(IllegalArgumentException.class, () -> f.punchHole(0, -2)).getMessage());
    }
  }

  /** A file holding {@code data}, made durable so its blocks are really allocated. */
  private static FileHandle filled(Path path, byte[] data) throws Exception {
    FileHandle f = FileHandle.create(path);
    f.writeFully(0, ByteBuffer.wrap(data));
    f.fsync();
    return f;
  }
}
