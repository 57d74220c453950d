package dev.shade.nativeio;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.params.provider.Arguments.arguments;

import dev.shade.testing.Host;
import dev.shade.testing.Tools;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Reads and writes a sparse file of more than 4 GiB through {@link MappedFile} (small and
 * default chunks) and through {@link FileHandle} pread/pwrite, over a matrix of offsets that
 * hit page, chunk and 4 GiB boundaries and the end of the file.
 */
class SparseLargeFileTest {
  /** 5 GiB and a few bytes: past 32-bit offsets, and the last chunk is only partly used. */
  private static final long SIZE = (5L << 30) + 123;
  private static final long GIB_4 = 4L << 30;
  private static final int PAGE = (int) MappedFile.PAGE;
  /** How far filesystem block rounding may move a data or hole boundary. */
  private static final long SLACK = 1 << 20;

  @TempDir
  Path dir;

  /** Where a test writes: a described offset and length inside the file. */
  record Placement(String name, long offset, int length) {
    long end() {
      return offset + length;
    }

    @Override
    public String toString() {
      return name + " [" + offset + ", +" + length + ")";
    }
  }

  /** Offsets {start, page - 1, chunk boundary, 4 GiB, last bytes} × chunk powers {20, 30}. */
  static Stream<Arguments> placements() {
    List<Arguments> out = new ArrayList<>();
    for (int power : new int[] {20, MappedFile.DEFAULT_CHUNK_POWER}) {
      long chunk = 1L << power;
      List<Placement> ps = new ArrayList<>(List.of(
          new Placement("start of the file", 0, PAGE + 7),
          new Placement("across the first page boundary", PAGE - 1, 3),
          new Placement("across the first chunk boundary", chunk - 1, PAGE + 2),
          new Placement("start of the second chunk", chunk, 100),
          new Placement("across 4 GiB (a chunk boundary)", GIB_4 - 3, 7),
          new Placement("just above 4 GiB", GIB_4 + 1, PAGE),
          new Placement("across the last chunk boundary to EOF", SIZE - 5000, 5000),
          new Placement("last byte", SIZE - 1, 1)));
      if (power == 20) {
        // Only small chunks make a read over three of them affordable.
        ps.add(new Placement("over three chunks above 4 GiB", GIB_4 + chunk - 5,
            (int) (2 * chunk + 10)));
      }
      for (Placement p : ps) {
        out.add(arguments(power, p));
      }
    }
    return out.stream();
  }

  @ParameterizedTest(name = "chunk 2^{0}, {1}")
  @MethodSource("placements")
  void mappedWrite_readsBackThroughMappingAndPread(int chunkPower, Placement at)
      throws Exception {
    Path path = dir.resolve("sparse.img");
    byte[] data = Patterns.nonZero(at.offset(), at.length());
    try (FileHandle f = sparseFile(path);
        MappedFile m = MappedFile.map(f, SIZE, true, chunkPower)) {
      assertEquals(SIZE, m.length());
      ByteBuffer src = ByteBuffer.wrap(data);
      m.write(at.offset(), src);
      assertEquals(0, src.remaining(), "write consumes its source");
      m.force(at.offset(), at.length());

      assertArrayEquals(data, Patterns.readMapped(m, at.offset(), at.length(), true),
          "read back through the mapping: " + m);
      assertArrayEquals(data, Patterns.readFile(f, at.offset(), at.length(), false),
          "read back with pread: " + f);
      assertNeighboursZero(m, at);
      assertSparse(f, path, at);
    }
  }

  @ParameterizedTest(name = "chunk 2^{0}, {1}")
  @MethodSource("placements")
  void writeFully_readsBackThroughMappingMadeBefore(int chunkPower, Placement at)
      throws Exception {
    Path path = dir.resolve("sparse.img");
    byte[] data = Patterns.nonZero(~at.offset(), at.length());
    try (FileHandle f = sparseFile(path);
        MappedFile m = MappedFile.map(f, SIZE, false, chunkPower)) {
      // The first half goes from a heap buffer, the rest from a direct one: both pwrite paths.
      int half = at.length() / 2;
      ByteBuffer heap = ByteBuffer.wrap(data, 0, half);
      ByteBuffer direct = ByteBuffer.allocateDirect(at.length() - half);
      direct.put(data, half, at.length() - half).flip();
      f.writeFully(at.offset(), heap);
      f.writeFully(at.offset() + half, direct);
      assertEquals(0, heap.remaining() + direct.remaining(), "writeFully consumes its source");
      f.fdatasync();
      assertEquals(SIZE, f.size(), "writes inside the file keep its size");

      // The mapping shares the page cache with pwrite, so it sees the data without remapping.
      assertArrayEquals(data, Patterns.readMapped(m, at.offset(), at.length(), false),
          "read back through the mapping: " + m);
      assertArrayEquals(data, Patterns.readFile(f, at.offset(), at.length(), true),
          "read back with pread: " + f);
      assertNeighboursZero(m, at);
      assertSparse(f, path, at);
    }
  }

  @Test
  void map_defaultChunks_coverFileWithPartialLastChunk() throws Exception {
    Path path = dir.resolve("sparse.img");
    try (FileHandle f = sparseFile(path); MappedFile m = MappedFile.map(f, true)) {
      assertEquals(SIZE, m.length());
      assertEquals("MappedFile(" + path + ", length=" + SIZE + ", chunk=2^30)", m.toString());
      // The last chunk holds only the 123 bytes past 5 GiB.
      m.write(SIZE - 123, ByteBuffer.wrap(Patterns.nonZero(5, 123)));
      assertArrayEquals(Patterns.nonZero(5, 123), Patterns.readFile(f, SIZE - 123, 123, false));
    }
  }

  /** Creates a sparse file of {@link #SIZE} bytes with ftruncate. */
  private static FileHandle sparseFile(Path path) throws Exception {
    FileHandle f = FileHandle.create(path);
    try {
      f.truncate(SIZE);
      assertEquals(SIZE, f.size());
      // a CI machine must give its tests a temporary directory on ext4, xfs or tmpfs
      long allocated = Host.allocatedBytes(path);
      Tools.requireThat(allocated < SLACK,
          () -> "the temporary directory's filesystem does not keep a truncated file sparse: " + path);
    } catch (Exception | Error e) {
      f.close();
      throw e;
    }
    return f;
  }

  /** The bytes just outside the written range are still zero. */
  private static void assertNeighboursZero(MappedFile m, Placement at) throws IOException {
    if (at.offset() > 0) {
      assertEquals(0, Patterns.readMapped(m, at.offset() - 1, 1, false)[0],
          "byte before " + at + " must stay zero");
    }
    if (at.end() < SIZE) {
      assertEquals(0, Patterns.readMapped(m, at.end(), 1, false)[0],
          "byte after " + at + " must stay zero");
    }
  }

  /** Only blocks around the written range hold data; the rest of the 5 GiB is a hole. */
  private static void assertSparse(FileHandle f, Path path, Placement at) throws Exception {
    long data = f.nextData(0);
    assertTrue(data >= 0 && data <= at.offset() && at.offset() - data < SLACK,
        "first data at " + data + " for a write at " + at);
    long hole = f.nextHole(at.offset());
    assertTrue(hole >= at.end() && hole - at.end() < SLACK,
        "hole after the data at " + hole + " for a write at " + at);
    if (hole < SIZE) {
      assertEquals(-1, f.nextData(hole), "no data after " + hole + " for a write at " + at);
    }
    long allocated = Host.allocatedBytes(path);
    assertTrue(allocated <= at.length() + 2 * SLACK,
        "allocated " + allocated + " bytes of a " + SIZE + "-byte file for a write at " + at);
  }
}
