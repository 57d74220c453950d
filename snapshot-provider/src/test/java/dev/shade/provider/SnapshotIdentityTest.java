package dev.shade.provider;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.provider.reliability.VolumeCopies;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Snapshot ids are never reused, lookups by id, and windowed changed ranges. */
class SnapshotIdentityTest {
  private static final int BLOCK = 4096;
  private static final long SIZE = 1 << 20;

  @TempDir Path tmp;

  private Volume create(Path dir) throws IOException {
    return Volume.create(dir, VolumeConfig.of(SIZE).withBlockSize(BLOCK).withDiffMax(8 * SIZE));
  }

  @Test
  void id_afterDeletingNewestAndReopening_isNotReused() throws IOException {
    Path dir = tmp.resolve("v");
    long newest;
    try (Volume v = create(dir)) {
      v.createSnapshot("a");
      newest = v.createSnapshot("b").id();
      v.deleteSnapshot("b");
    }
    try (Volume v = Volume.open(dir)) {
      assertTrue(v.createSnapshot("c").id() > newest, "id of the deleted newest snapshot handed out again: " + v.snapshots());
    }
  }

  @Test
  void id_afterDeletingNewestAndCrashing_isNotReused() throws IOException {
    Path dir = tmp.resolve("v");
    Path copy = tmp.resolve("crashed");
    long newest;
    try (Volume v = create(dir)) {
      v.createSnapshot("a");
      newest = v.createSnapshot("b").id();
      v.deleteSnapshot("b");
      VolumeCopies.copyOpen(dir, copy); // the files as a crash now would leave them (journal not folded)
    }
    try (Volume v = Volume.open(copy)) {
      assertEquals(List.of("a"), names(v));
      assertTrue(v.createSnapshot("c").id() > newest, "id reused after a crash: " + v.snapshots());
    }
  }

  @Test
  void id_afterDeletingAll_isNotReused() throws IOException {
    Path dir = tmp.resolve("v");
    Set<Long> seen = new HashSet<>();
    for (int round = 0; round < 3; round++) {
      try (Volume v = round == 0 ? create(dir) : Volume.open(dir)) {
        for (int i = 0; i < 3; i++) {
          assertTrue(seen.add(v.createSnapshot(null).id()), "id reused in round " + round + ": " + seen);
        }
        for (SnapshotInfo s : v.snapshots()) {
          v.deleteSnapshot(s.name());
        }
      }
    }
  }

  @Test
  void id_afterRevert_isNotReused() throws IOException {
    Path dir = tmp.resolve("v");
    long newest;
    try (Volume v = create(dir)) {
      v.write(0, ByteBuffer.wrap(new byte[] {1}));
      v.createSnapshot("a");
      v.write(0, ByteBuffer.wrap(new byte[] {2}));
      v.createSnapshot("b");
      newest = v.createSnapshot("c").id();
      v.revert("a", Progress.NONE);
      assertEquals(List.of("a"), names(v));
      long next = v.createSnapshot("d").id();
      assertTrue(next > newest, "id " + next + " after revert reuses one up to " + newest);
    }
    try (Volume v = Volume.open(dir)) {
      assertTrue(v.createSnapshot("e").id() > newest + 1);
    }
  }

  @Test
  void snapshotById_findsAndThrows() throws IOException {
    try (Volume v = create(tmp.resolve("v"))) {
      SnapshotInfo a = v.createSnapshot("a");
      SnapshotInfo b = v.createSnapshot("b");
      assertEquals(a, v.snapshotById(a.id()));
      assertEquals(b, v.snapshot(SnapshotRef.ofId(b.id())));
      v.deleteSnapshot(SnapshotRef.ofId(a.id()));
      SnapshotNotFoundException e = assertThrows(SnapshotNotFoundException.class, () -> v.snapshotById(a.id()));
      assertTrue(e.getMessage().contains("id " + a.id()), e.getMessage());
      assertThrows(SnapshotNotFoundException.class, () -> v.openSnapshot(SnapshotRef.ofId(a.id())));
      assertThrows(SnapshotNotFoundException.class, () -> v.changedRanges(SnapshotRef.ofId(999), null));
      assertThrows(IllegalArgumentException.class, () -> SnapshotRef.ofId(0));
      assertThrows(IllegalArgumentException.class, () -> new SnapshotRef("x", 3));
    }
  }

  @Test
  void idVariants_answerAsNameVariants() throws IOException {
    try (Volume v = create(tmp.resolve("v"))) {
      v.write(BLOCK, ByteBuffer.wrap(new byte[3 * BLOCK]));
      v.write(0, ByteBuffer.wrap(new byte[] {5}));
      SnapshotInfo a = v.createSnapshot("a");
      v.write(2 * BLOCK, ByteBuffer.wrap(new byte[] {6}));
      v.trim(BLOCK, BLOCK);
      SnapshotInfo b = v.createSnapshot("b");
      v.write(5 * BLOCK, ByteBuffer.wrap(new byte[] {7}));
      SnapshotRef ra = SnapshotRef.ofId(a.id());
      SnapshotRef rb = SnapshotRef.ofId(b.id());
      assertEquals(v.changedRanges("a", "b"), v.changedRanges(ra, rb));
      assertEquals(v.changedRanges("a", null), v.changedRanges(ra, null));
      assertEquals(v.allocation("a", 0, SIZE), v.allocationOf(ra, 0, SIZE));
      assertEquals(v.planRevert("a"), v.planRevert(ra));
      try (BlockSource byName = v.openSnapshot("a"); BlockSource byId = v.openSnapshot(ra)) {
        byte[] x = new byte[(int) SIZE];
        byte[] y = new byte[(int) SIZE];
        byName.read(0, ByteBuffer.wrap(x));
        byId.read(0, ByteBuffer.wrap(y));
        assertArrayEquals(x, y);
      }
    }
  }

  @ParameterizedTest(name = "seed {0}")
  @ValueSource(longs = {1, 2, 3, 4})
  void changedRangesWindow_equalsWholeAnswerClipped(long seed) throws IOException {
    Random rnd = new Random(seed);
    long size = SIZE + (seed % 2 == 0 ? 0 : 777); // a short last block in odd seeds
    try (Volume v = Volume.create(tmp.resolve("v"), VolumeConfig.of(size).withBlockSize(BLOCK).withDiffMax(8 * size))) {
      List<String> snaps = new ArrayList<>();
      for (int round = 0; round < 4; round++) {
        snaps.add(v.createSnapshot(null).name());
        int writes = rnd.nextInt(40);
        for (int i = 0; i < writes; i++) {
          long off = (long) (rnd.nextDouble() * size);
          int len = 1 + rnd.nextInt((int) Math.min(size - off, 6 * BLOCK));
          v.write(off, ByteBuffer.wrap(new byte[len]));
        }
      }
      for (int q = 0; q < 300; q++) {
        String from = snaps.get(rnd.nextInt(snaps.size()));
        String to = rnd.nextInt(4) == 0 ? null : snaps.get(rnd.nextInt(snaps.size()));
        long off = rnd.nextInt(3) == 0 ? rnd.nextInt(4) * BLOCK : (long) (rnd.nextDouble() * size);
        long len = rnd.nextInt(3) == 0 ? size - off : (long) (rnd.nextDouble() * Math.min(size - off, (rnd.nextBoolean() ? 4 : 100) * BLOCK));
        List<Range> want = clip(v.changedRanges(from, to), off, len);
        assertEquals(want, v.changedRanges(from, to, off, len),
            "window " + off + "+" + len + " of changed ranges " + from + ".." + to);
      }
      assertEquals(v.changedRanges(snaps.get(0), null), v.changedRanges(snaps.get(0), null, 0, size));
      assertEquals(List.of(), v.changedRanges(snaps.get(0), null, 10, 0));
    }
  }

  /** The ranges overlapping [off, off+len), clipped to it: the windowed query's contract. */
  static List<Range> clip(List<Range> whole, long off, long len) {
    List<Range> out = new ArrayList<>();
    for (Range r : whole) {
      long s = Math.max(r.offset(), off);
      long e = Math.min(r.end(), off + len);
      if (s < e) {
        out.add(new Range(s, e - s));
      }
    }
    return out;
  }

  private static List<String> names(Volume v) {
    List<String> n = new ArrayList<>();
    for (SnapshotInfo s : v.snapshots()) {
      n.add(s.name());
    }
    return n;
  }
}
