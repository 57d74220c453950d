package dev.shade.provider;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Writes, reads, snapshot reads and changed ranges of a 6 GiB sparse volume at the places where
 * offsets change shape: block edges, the 1 GiB chunks of the origin's mapping, 2 GiB (past a
 * signed int) and 4 GiB (past an unsigned int), and above 4 GiB, checked against a sparse model.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LargeVolumeBoundaryTest {
  /*
   * One volume serves the whole matrix: each case writes around its spot, takes its snapshots
   * between further writes that overlap the spot, checks a window around it and deletes its
   * snapshots again, so the next case starts with none. The model is a map of 4 KiB pages
   * (absent = zeros), the snapshots copies of it; nothing of the volume's code is shared. The
   * volume's files are sparse: the whole matrix writes a few MiB.
   */
  private static final long GIB = 1L << 30;
  private static final int BLOCK = VolumeConfig.DEFAULT_BLOCK_SIZE;
  private static final long SIZE = 6 * GIB;
  private static final int PAGE = 4096;

  /** Where a case writes. */
  enum Spot {
    ZERO(0),
    BLOCK_MINUS_1(BLOCK - 1),
    BLOCK_EDGE(BLOCK),
    CHUNK_1G_MINUS_1(GIB - 1),
    CHUNK_1G(GIB),
    INT_2G_MINUS_1(2 * GIB - 1),
    INT_2G(2 * GIB),
    UINT_4G_MINUS_1(4 * GIB - 1),
    UINT_4G(4 * GIB),
    ABOVE_4G(5 * GIB + 12_345),
    END(-1);

    /** The offset, or -1 for "ending at the volume's end". */
    final long offset;

    Spot(long offset) {
      this.offset = offset;
    }

    long offset(int length) {
      return offset >= 0 ? offset : SIZE - length;
    }
  }

  private Path dir;
  private Volume volume;
  private final Map<Long, byte[]> model = new HashMap<>();

  @BeforeAll
  void createVolume() throws IOException {
    dir = Files.createTempDirectory("shade-large-boundary-");
    volume = Volume.create(dir.resolve("vol"), VolumeConfig.of(SIZE).withDiffMax(256L << 20));
  }

  @AfterAll
  void deleteVolume() throws IOException {
    if (volume != null) {
      volume.close();
    }
    dev.shade.provider.reliability.VolumeCopies.deleteTree(dir);
  }

  static Stream<Arguments> matrix() {
    List<Arguments> out = new ArrayList<>();
    for (Spot spot : Spot.values()) {
      for (int length : new int[] {1, PAGE + 1, 2 * BLOCK + 3}) {
        for (int snapshots : new int[] {0, 1, 3}) {
          out.add(Arguments.of(spot, length, snapshots));
        }
      }
    }
    return out.stream();
  }

  @ParameterizedTest(name = "{0}, {1} bytes, {2} snapshots")
  @MethodSource("matrix")
  void writeReadSnapshot_matchModel(Spot spot, int length, int snapshots) throws IOException {
    long offset = spot.offset(length);
    SplittableRandom rnd = new SplittableRandom(spot.ordinal() * 1000L + length * 10L + snapshots);
    // old contents around the spot, so that copies preserve non-zero data
    long lo = Math.max(0, offset - BLOCK);
    long hi = Math.min(SIZE, offset + length + BLOCK);
    write(lo, (int) (hi - lo), rnd);
    List<String> names = new ArrayList<>();
    List<Map<Long, byte[]>> copies = new ArrayList<>();
    List<TreeSet<Long>> changedSince = new ArrayList<>();
    for (int s = 0; s < snapshots; s++) {
      String name = "c" + spot.ordinal() + "-" + length + "-" + s;
      volume.createSnapshot(name);
      names.add(name);
      copies.add(copyModel());
      changedSince.add(new TreeSet<>());
      // overlapping writes, shifted by half a block per snapshot, clipped to the volume
      long at = Math.max(0, Math.min(SIZE - length, offset - (long) s * BLOCK / 2));
      write(at, length, rnd);
      for (TreeSet<Long> c : changedSince) {
        addBlocks(c, at, length);
      }
    }
    write(offset, length, rnd);
    for (TreeSet<Long> c : changedSince) {
      addBlocks(c, offset, length);
    }
    if (rnd.nextBoolean()) {
      volume.flush();
    }

    long wlo = Math.max(0, offset - 2L * BLOCK);
    long whi = Math.min(SIZE, offset + length + 2L * BLOCK);
    String where = spot + " (offset " + offset + "), " + length + " bytes, " + snapshots + " snapshots";
    check("origin", volume, wlo, whi, model, where);
    for (int s = 0; s < snapshots; s++) {
      try (BlockSource view = volume.openSnapshot(names.get(s))) {
        check("snapshot " + names.get(s), view, wlo, whi, copies.get(s), where);
      }
      List<Range> expected = ranges(changedSince.get(s));
      assertEquals(expected, volume.changedRanges(names.get(s), null), where + ": changed ranges since " + names.get(s));
      assertEquals(SnapshotIdentityTest.clip(expected, wlo, whi - wlo),
          volume.changedRanges(names.get(s), null, wlo, whi - wlo), where + ": windowed changed ranges");
      assertEquals(SnapshotIdentityTest.clip(expected, offset, length),
          volume.changedRanges(names.get(s), null, offset, length), where + ": changed ranges of the written range");
      if (s + 1 < snapshots) {
        TreeSet<Long> between = new TreeSet<>(changedSince.get(s));
        between.removeAll(changedSince.get(s + 1));
        // blocks written between s and s+1 (those written later too are in both sets)
        List<Range> got = volume.changedRanges(names.get(s), names.get(s + 1));
        for (Range r : ranges(between)) {
          if (SnapshotIdentityTest.clip(got, r.offset(), r.length()).stream().mapToLong(Range::length).sum() != r.length()) {
            fail(where + ": changed ranges " + names.get(s) + ".." + names.get(s + 1) + " " + got + " miss " + r);
          }
        }
      }
    }
    for (String n : names) {
      volume.deleteSnapshot(n);
    }
    check("origin after deleting the snapshots", volume, wlo, whi, model, where);
  }

  @Test
  void allocation_aboveFourGiB_reportsHolesAndData() throws IOException {
    long at = 5 * GIB + 3L * BLOCK;
    byte[] data = new byte[BLOCK];
    Arrays.fill(data, (byte) 1);
    volume.write(at, ByteBuffer.wrap(data));
    putModel(at, data);
    volume.createSnapshot("alloc");
    try {
      volume.trim(at, BLOCK);
      putModel(at, new byte[BLOCK]);
      List<Extent> origin = volume.allocation(null, at - BLOCK, 3L * BLOCK);
      assertEquals(List.of(new Extent(at - BLOCK, 3L * BLOCK, true)), origin, "origin around the trimmed block");
      List<Extent> snap = volume.allocation("alloc", at - BLOCK, 3L * BLOCK);
      assertEquals(new Extent(at, BLOCK, false), snap.get(1), "the snapshot's preserved block is data: " + snap);
      assertEquals(List.of(new Range(at, BLOCK)), volume.changedRanges("alloc", null, 4 * GIB, 2 * GIB));
    } finally {
      volume.deleteSnapshot("alloc");
    }
  }

  private void write(long offset, int length, SplittableRandom rnd) throws IOException {
    byte[] b = new byte[length];
    rnd.nextBytes(b);
    volume.write(offset, ByteBuffer.wrap(b));
    putModel(offset, b);
  }

  private void putModel(long offset, byte[] b) {
    for (int i = 0; i < b.length; ) {
      long pos = offset + i;
      long page = pos / PAGE;
      int within = (int) (pos % PAGE);
      int n = Math.min(b.length - i, PAGE - within);
      System.arraycopy(b, i, model.computeIfAbsent(page, k -> new byte[PAGE]), within, n);
      i += n;
    }
  }

  private Map<Long, byte[]> copyModel() {
    Map<Long, byte[]> c = new HashMap<>();
    model.forEach((k, v) -> c.put(k, v.clone()));
    return c;
  }

  private static byte[] expected(Map<Long, byte[]> m, long lo, long hi) {
    byte[] out = new byte[(int) (hi - lo)];
    for (long page = lo / PAGE; page <= (hi - 1) / PAGE; page++) {
      byte[] p = m.get(page);
      if (p == null) {
        continue;
      }
      long start = Math.max(lo, page * PAGE);
      long end = Math.min(hi, (page + 1) * PAGE);
      System.arraycopy(p, (int) (start - page * PAGE), out, (int) (start - lo), (int) (end - start));
    }
    return out;
  }

  /** Reads [lo, hi) in one request and in pieces of odd sizes, and compares both with the model. */
  private static void check(String what, BlockSource s, long lo, long hi, Map<Long, byte[]> m, String where)
      throws IOException {
    byte[] want = expected(m, lo, hi);
    byte[] whole = new byte[want.length];
    s.read(lo, ByteBuffer.wrap(whole));
    int at = Arrays.mismatch(want, whole);
    if (at >= 0) {
      fail(where + ": " + what + " differs at offset " + (lo + at) + ": expected " + want[at] + ", read " + whole[at]);
    }
    byte[] pieces = new byte[want.length];
    for (int pos = 0; pos < pieces.length; ) {
      int n = Math.min(pieces.length - pos, 4093);
      s.read(lo + pos, ByteBuffer.wrap(pieces, pos, n));
      pos += n;
    }
    at = Arrays.mismatch(want, pieces);
    if (at >= 0) {
      fail(where + ": " + what + " read in pieces differs at offset " + (lo + at));
    }
  }

  private static void addBlocks(TreeSet<Long> blocks, long offset, long length) {
    for (long b = offset / BLOCK; b <= (offset + length - 1) / BLOCK; b++) {
      blocks.add(b);
    }
  }

  private static List<Range> ranges(TreeSet<Long> blocks) {
    List<Range> out = new ArrayList<>();
    long start = -1;
    long prev = -2;
    for (long b : blocks) {
      if (b != prev + 1) {
        if (start >= 0) {
          out.add(range(start, prev));
        }
        start = b;
      }
      prev = b;
    }
    if (start >= 0) {
      out.add(range(start, prev));
    }
    return out;
  }

  private static Range range(long first, long last) {
    long s = first * BLOCK;
    long e = Math.min(SIZE, (last + 1) * BLOCK);
    return new Range(s, e - s);
  }
}
