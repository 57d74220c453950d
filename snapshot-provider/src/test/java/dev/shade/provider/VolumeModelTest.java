package dev.shade.provider;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Random operations against a volume and against plain byte arrays side by side: every
 * snapshot and the origin must always read back what the arrays say.
 */
class VolumeModelTest {
  @TempDir Path tmp;

  static Stream<Arguments> configs() {
    return Stream.of(
        Arguments.of(4096, 1 << 20, 1L),
        Arguments.of(4096, (1 << 20) + 1234, 2L), // size not a multiple of the block size
        Arguments.of(65536, 4 << 20, 3L),
        Arguments.of(1 << 20, 8 << 20, 4L));
  }

  @ParameterizedTest(name = "block {0}, size {1}, seed {2}")
  @MethodSource("configs")
  void randomOperations_matchModel(int blockSize, long size, long seed) throws IOException {
    Random rnd = new Random(seed);
    /** Chooses between the two kinds of revert, apart from rnd so that the other choices stay those of the seed. */
    Random keepNewer = new Random(~seed);
    byte[] model = new byte[(int) size];
    Map<String, byte[]> snaps = new LinkedHashMap<>();
    Path dir = tmp.resolve("v");
    Volume v = Volume.create(dir, VolumeConfig.of(size).withBlockSize(blockSize).withDiffMax(size * 8));
    try {
      for (int op = 0; op < 400; op++) {
        int kind = rnd.nextInt(100);
        if (kind < 55) {
          int off = rnd.nextInt((int) size);
          int len = 1 + rnd.nextInt(Math.min((int) size - off, 3 * blockSize));
          byte[] data = new byte[len];
          rnd.nextBytes(data);
          v.write(off, ByteBuffer.wrap(data));
          System.arraycopy(data, 0, model, off, len);
        } else if (kind < 62) {
          int off = rnd.nextInt((int) size);
          int len = 1 + rnd.nextInt(Math.min((int) size - off, 4 * blockSize));
          if (rnd.nextBoolean()) {
            v.trim(off, len);
          } else {
            v.writeZeroes(off, len);
          }
          Arrays.fill(model, off, off + len, (byte) 0);
        } else if (kind < 72) {
          SnapshotInfo s = v.createSnapshot(null);
          snaps.put(s.name(), model.clone());
        } else if (kind < 78 && !snaps.isEmpty()) {
          List<String> names = new ArrayList<>(snaps.keySet());
          String victim = names.get(rnd.nextInt(names.size()));
          v.deleteSnapshot(victim);
          snaps.remove(victim);
        } else if (kind < 80 && !snaps.isEmpty()) {
          List<String> names = new ArrayList<>(snaps.keySet());
          String target = names.get(rnd.nextInt(names.size()));
          if (keepNewer.nextBoolean()) { // a revert that keeps every snapshot as it is
            v.revert(SnapshotRef.ofName(target), true, Progress.NONE);
            model = snaps.get(target).clone();
          } else {
            v.revert(target, Progress.NONE);
            model = snaps.get(target).clone();
            boolean after = false;
            for (String n : names) {
              if (after) {
                snaps.remove(n);
              }
              after |= n.equals(target);
            }
          }
        } else if (kind < 85) {
          v.flush();
        } else if (kind < 88) {
          v.close();
          v = Volume.open(dir);
        } else if (!snaps.isEmpty()) {
          List<String> names = new ArrayList<>(snaps.keySet());
          String from = names.get(rnd.nextInt(names.size()));
          checkChanged(v, from, snaps.get(from), model, blockSize);
        }
        if (op % 25 == 0) {
          verify(v, model, snaps);
        }
      }
      verify(v, model, snaps);
      assertTrue(v.diffUsedBytes() <= size * 8);
    } finally {
      v.close();
    }
    try (Volume again = Volume.open(dir)) {
      verify(again, model, snaps);
    }
  }

  /** Every block that differs between the two images must lie inside a reported range. */
  private static void checkChanged(Volume v, String from, byte[] then, byte[] now, int blockSize) throws IOException {
    List<Range> ranges = v.changedRanges(from, null);
    boolean[] covered = new boolean[now.length];
    for (Range r : ranges) {
      assertEquals(0, r.offset() % blockSize, "ranges start on block boundaries");
      Arrays.fill(covered, (int) r.offset(), (int) r.end(), true);
    }
    for (int i = 0; i < now.length; i++) {
      if (then[i] != now[i]) {
        assertTrue(covered[i], "byte " + i + " changed since " + from + " but no range covers it");
      }
    }
  }

  private static void verify(Volume v, byte[] model, Map<String, byte[]> snaps) throws IOException {
    assertArrayEquals(model, readAll(v), "origin");
    assertEquals(new ArrayList<>(snaps.keySet()), v.snapshots().stream().map(SnapshotInfo::name).toList());
    for (Map.Entry<String, byte[]> e : snaps.entrySet()) {
      try (BlockSource s = v.openSnapshot(e.getKey())) {
        assertArrayEquals(e.getValue(), readAll(s), "snapshot " + e.getKey());
      }
    }
  }

  static byte[] readAll(BlockSource s) throws IOException {
    ByteBuffer b = ByteBuffer.allocate((int) s.size());
    // odd-sized reads exercise block-crossing paths
    long off = 0;
    while (b.hasRemaining()) {
      int n = Math.min(b.remaining(), 77777);
      ByteBuffer piece = b.slice(b.position(), n);
      s.read(off, piece);
      b.position(b.position() + n);
      off += n;
    }
    return b.array();
  }

  @Test
  void write_outOfRange_isRejectedWithTheOffset() throws IOException {
    try (Volume v = Volume.create(tmp.resolve("r"), VolumeConfig.of(1 << 20))) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> v.write((1 << 20) - 10, ByteBuffer.allocate(11)));
      assertTrue(e.getMessage().contains("offset=1048566"), e.getMessage());
    }
  }

  @Test
  void open_whileOpenElsewhere_fails() throws IOException {
    Path dir = tmp.resolve("busy");
    try (Volume v = Volume.create(dir, VolumeConfig.of(1 << 20))) {
      // flock is per open file description, so a second open in this process conflicts too
      VolumeException e = assertThrows(VolumeException.class, () -> Volume.open(dir));
      assertTrue(e.getMessage().contains("in use"), e.getMessage());
    }
  }

  @Test
  void snapshotSet_sharesNameAndSetId() throws IOException {
    try (Volume a = Volume.create(tmp.resolve("a"), VolumeConfig.of(1 << 20));
         Volume b = Volume.create(tmp.resolve("b"), VolumeConfig.of(1 << 20))) {
      a.createSnapshot(null);
      List<SnapshotInfo> set = Volume.createSnapshotSet(List.of(a, b), null);
      assertEquals(set.get(0).name(), set.get(1).name());
      assertEquals(set.get(0).setId(), set.get(1).setId());
      assertTrue(set.get(0).setId() != null);
      assertEquals("s2", set.get(1).name());
    }
  }

  @Test
  void firstWriteOverZeros_copiesNothingAndSnapshotReadsZeros() throws IOException {
    Path dir = tmp.resolve("z");
    try (Volume v = Volume.create(dir, VolumeConfig.of(4 << 20))) {
      byte[] data = new byte[1 << 20];
      Arrays.fill(data, (byte) 7);
      v.write(0, ByteBuffer.wrap(data));
      v.createSnapshot("s1");
      v.write(1 << 20, ByteBuffer.wrap(data)); // over a hole: nothing to preserve
      assertEquals(0, v.diffUsedBytes());
      assertEquals(0, v.snapshot("s1").diffBytes());
      v.write(0, ByteBuffer.wrap(new byte[1 << 20])); // over data: copied
      assertEquals(1 << 20, v.diffUsedBytes());
      byte[] expected = new byte[4 << 20];
      Arrays.fill(expected, 0, 1 << 20, (byte) 7);
      try (BlockSource s1 = v.openSnapshot("s1")) {
        assertArrayEquals(expected, readAll(s1));
      }
      assertTrue(v.allocation("s1", 1 << 20, 1 << 20).stream().allMatch(Extent::zero),
          "a preserved hole is still a hole: " + v.allocation("s1", 1 << 20, 1 << 20));
      v.revert("s1", Progress.NONE);
      assertArrayEquals(expected, readAll(v));
    }
  }
}
