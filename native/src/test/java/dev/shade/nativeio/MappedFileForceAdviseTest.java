package dev.shade.nativeio;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.params.provider.Arguments.arguments;

import dev.shade.nativeio.MappedFile.Advice;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link MappedFile#force} and {@link MappedFile#advise} over ranges that start unaligned and
 * cross page and chunk boundaries, observed through the kernel's view in /proc/self/smaps.
 */
class MappedFileForceAdviseTest {
  /** Chunks of 1 MiB, so a few MiB of file cross several chunk boundaries. */
  private static final int POWER = 20;
  private static final long CHUNK = 1L << POWER;
  private static final long PAGE = MappedFile.PAGE;
  /** Three full chunks and a last chunk of 1000 bytes, less than a page. */
  private static final long SIZE = 3 * CHUNK + 1000;

  @TempDir
  Path dir;

  static Stream<Arguments> ranges() {
    return Stream.of(
        arguments("first byte", 0L, 1L),
        arguments("unaligned start inside a page", PAGE + 17, 100L),
        arguments("unaligned, across a page boundary", PAGE - 10, 20L),
        arguments("unaligned, across a chunk boundary", CHUNK - 100, 200L),
        arguments("page-aligned, across a chunk boundary", CHUNK - PAGE, 2 * PAGE),
        arguments("unaligned, over three chunks", CHUNK - PAGE - 3, 2 * CHUNK + 50),
        arguments("last byte, in the partial last page", SIZE - 1, 1L),
        arguments("whole file", 0L, SIZE));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("ranges")
  void force_range_leavesNoDirtyPageOfTheRange(String name, long pos, long len)
      throws Exception {
    Path path = dir.resolve("force.img");
    byte[] data = Patterns.nonZero(pos, (int) len);
    try (FileHandle f = sparseFile(path); MappedFile m = MappedFile.map(f, SIZE, true, POWER)) {
      m.write(pos, ByteBuffer.wrap(data));
      // Only the pages of [pos, pos+len) were touched, so they are all the dirty ones.
      assertTrue(Smaps.of(path).dirtyKilobytes() > 0,
          "writing through the mapping dirties its pages: " + Smaps.of(path));

      m.force(pos, len);

      assertEquals(0, Smaps.of(path).dirtyKilobytes(),
          "msync(MS_SYNC) wrote back every page of " + name + ": " + Smaps.of(path));
      assertArrayEquals(data, Patterns.readFile(f, pos, (int) len, false));
    }
  }

  @Test
  void force_emptyRangeAndReadOnlyMapping_succeed() throws Exception {
    Path path = dir.resolve("force.img");
    try (FileHandle f = sparseFile(path)) {
      try (MappedFile m = MappedFile.map(f, SIZE, false, POWER)) {
        m.force(SIZE, 0);
        m.force(CHUNK - 1, 2);
        m.force(0, SIZE);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(Advice.class)
  void advise_unalignedRangeAcrossChunks_keepsData(Advice advice) throws Exception {
    Path path = dir.resolve("advise.img");
    long pos = CHUNK - 3 * PAGE - 5;
    int len = (int) (6 * PAGE);
    byte[] data = Patterns.nonZero(advice.ordinal(), len);
    try (FileHandle f = sparseFile(path); MappedFile m = MappedFile.map(f, SIZE, true, POWER)) {
      m.write(pos, ByteBuffer.wrap(data));
      m.advise(pos, len, advice);
      m.advise(SIZE - 1, 1, advice);
      m.advise(0, 0, advice);
      assertArrayEquals(data, Patterns.readMapped(m, pos, len, false), "after " + advice);
    }
  }

  @Test
  void advise_dontNeed_dropsResidentPagesButNotUnsyncedData() throws Exception {
    Path path = dir.resolve("advise.img");
    long pos = CHUNK - 3 * PAGE - 5;
    int len = (int) (6 * PAGE);
    byte[] data = Patterns.nonZero(42, len);
    try (FileHandle f = sparseFile(path); MappedFile m = MappedFile.map(f, SIZE, true, POWER)) {
      m.write(pos, ByteBuffer.wrap(data));
      assertTrue(Smaps.of(path).kilobytes("Rss") > 0, () -> "written pages are resident: "
          + smaps(path));

      m.advise(pos, len, Advice.DONTNEED);

      assertEquals(0, Smaps.of(path).kilobytes("Rss"),
          "DONTNEED unmapped every page of the range, across the chunk boundary: " + smaps(path));
      // A shared file mapping keeps the dirty data in the page cache: nothing is lost.
      assertArrayEquals(data, Patterns.readFile(f, pos, len, true));
      assertArrayEquals(data, Patterns.readMapped(m, pos, len, false));
    }
  }

  @Test
  void advise_randomOverPartOfTwoChunks_marksExactlyThosePages() throws Exception {
    Path path = dir.resolve("advise.img");
    long pos = CHUNK - 2 * PAGE - 7;
    long len = 5 * PAGE;
    long covered = roundUp(pos + len) - (pos & ~(PAGE - 1));
    try (FileHandle f = sparseFile(path); MappedFile m = MappedFile.map(f, SIZE, true, POWER)) {
      assertEquals(0, Smaps.of(path).bytesWithFlag("rr"), () -> smaps(path));

      m.advise(pos, len, Advice.RANDOM);
      assertEquals(covered, Smaps.of(path).bytesWithFlag("rr"),
          () -> "MADV_RANDOM on [" + pos + ", +" + len + "): " + smaps(path));

      m.advise(0, SIZE, Advice.SEQUENTIAL);
      assertEquals(0, Smaps.of(path).bytesWithFlag("rr"), () -> smaps(path));
      assertEquals(3 * CHUNK + PAGE, Smaps.of(path).bytesWithFlag("sr"),
          () -> "MADV_SEQUENTIAL on the whole mapping: " + smaps(path));

      m.advise(0, SIZE, Advice.NORMAL);
      assertEquals(0, Smaps.of(path).bytesWithFlag("sr") + Smaps.of(path).bytesWithFlag("rr"),
          () -> smaps(path));
    }
  }

  private static long roundUp(long n) {
    return (n + PAGE - 1) & ~(PAGE - 1);
  }

  private static String smaps(Path path) {
    try {
      return Smaps.of(path).toString();
    } catch (java.io.IOException e) {
      return "smaps unreadable: " + e;
    }
  }

  private static FileHandle sparseFile(Path path) throws ErrnoException {
    FileHandle f = FileHandle.create(path);
    f.truncate(SIZE);
    return f;
  }
}
