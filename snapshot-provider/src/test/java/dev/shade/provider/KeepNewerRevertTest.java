package dev.shade.provider;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.testing.ChildJvm;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Revert that keeps the newer snapshots: the origin takes the target's contents, every
 * snapshot still reads what it held, reverting to the newest undoes it, the diff area pays
 * only for blocks that really differ, and a SIGKILL in the middle is finished by the next open.
 */
class KeepNewerRevertTest {
  private static final int BLOCK = 4096;
  private static final int SIZE = 8 << 20;

  @TempDir Path tmp;

  /** s1 (random contents), s2 (a quarter of the blocks rewritten, some to zeros), then more writes and "before". */
  private static Volume prepare(Path dir, long seed) throws IOException {
    Volume v = Volume.create(dir, VolumeConfig.of(SIZE).withBlockSize(BLOCK).withDiffMax(4L * SIZE));
    Random r = new Random(seed);
    byte[] all = new byte[SIZE];
    r.nextBytes(all);
    for (int i = 0; i < 16; i++) {
      java.util.Arrays.fill(all, i * 3 * BLOCK, i * 3 * BLOCK + BLOCK, (byte) 0); // zero blocks in s1
    }
    v.write(0, ByteBuffer.wrap(all));
    v.createSnapshot("s1");
    scribble(v, r, SIZE / BLOCK / 4);
    v.createSnapshot("s2");
    scribble(v, r, SIZE / BLOCK / 4);
    v.createSnapshot("before");
    return v;
  }

  /** Rewrites {@code blocks} random blocks: random bytes, zeros, or partial writes. */
  private static void scribble(Volume v, Random r, int blocks) throws IOException {
    for (int i = 0; i < blocks; i++) {
      long b = r.nextInt(SIZE / BLOCK);
      int kind = r.nextInt(4);
      if (kind == 0) {
        v.writeZeroes(b * BLOCK, BLOCK);
      } else {
        byte[] d = new byte[kind == 1 ? 512 : BLOCK * (1 + r.nextInt(3))];
        r.nextBytes(d);
        long at = Math.min(b * BLOCK + (kind == 1 ? 1000 : 0), SIZE - d.length);
        v.write(at, ByteBuffer.wrap(d));
      }
    }
  }

  private static byte[] read(BlockSource s) throws IOException {
    ByteBuffer b = ByteBuffer.allocate((int) s.size());
    s.read(0, b);
    return b.array();
  }

  private static byte[] origin(Volume v) throws IOException {
    return read(v);
  }

  private static Map<String, byte[]> images(Volume v) throws IOException {
    Map<String, byte[]> out = new LinkedHashMap<>();
    for (SnapshotInfo s : v.snapshots()) {
      out.put(s.name(), read(v.openSnapshot(s.name())));
    }
    return out;
  }

  private static void assertImages(Map<String, byte[]> expected, Volume v) throws IOException {
    Map<String, byte[]> got = images(v);
    assertEquals(expected.keySet(), got.keySet(), "snapshots");
    for (String name : expected.keySet()) {
      assertArrayEquals(expected.get(name), got.get(name), "contents of snapshot " + name);
    }
  }

  @Test
  void revertKeepingNewer_originTakesTarget_everySnapshotUnchanged() throws IOException {
    try (Volume v = prepare(tmp.resolve("v"), 1)) {
      byte[] current = origin(v);
      Map<String, byte[]> before = images(v);
      RevertPlan plan = v.planRevert(SnapshotRef.ofName("s1"), true);
      assertEquals(List.of(), plan.deleted());
      assertEquals(v.changedRanges("s1", null).stream().mapToLong(Range::length).sum(), plan.changedBytes());
      assertTrue(plan.preservedBytes() > 0 && plan.preservedBytes() <= plan.changedBytes(), plan.toString());

      long used = v.diffUsedBytes();
      v.revert(SnapshotRef.ofName("s1"), true, Progress.NONE);

      assertArrayEquals(before.get("s1"), origin(v), "origin after the revert");
      assertImages(before, v);
      assertTrue(v.diffUsedBytes() - used <= plan.preservedBytes(),
          "preserved " + (v.diffUsedBytes() - used) + " bytes, plan said at most " + plan.preservedBytes());
      assertArrayEquals(current, before.get("before"));
    }
  }

  @ParameterizedTest
  @ValueSource(booleans = {false, true})
  void revertToNewest_afterRevertKeepingNewer_restoresTheStateBefore(boolean keepNewer) throws IOException {
    Path dir = tmp.resolve("v");
    byte[] current;
    Map<String, byte[]> before;
    try (Volume v = prepare(dir, 2)) {
      current = origin(v);
      before = images(v);
      v.revert(SnapshotRef.ofName("s2"), true, Progress.NONE);
      assertArrayEquals(before.get("s2"), origin(v));
    }
    try (Volume v = Volume.open(dir)) {
      assertImages(before, v);
      v.revert(SnapshotRef.ofName("before"), keepNewer, Progress.NONE);
      assertArrayEquals(current, origin(v), "origin after undoing the revert");
      assertImages(before, v);
    }
  }

  @Test
  void revertKeepingNewer_blocksRewrittenToTheirOldBytes_costNoCopy() throws IOException {
    try (Volume v = Volume.create(tmp.resolve("v"), VolumeConfig.of(SIZE).withBlockSize(BLOCK).withDiffMax(SIZE))) {
      byte[] data = new byte[SIZE];
      new Random(3).nextBytes(data);
      v.write(0, ByteBuffer.wrap(data));
      v.createSnapshot("s1");
      v.write(0, ByteBuffer.wrap(data, 0, 64 * BLOCK)); // same bytes again: changed in the tables only
      byte[] other = new byte[2 * BLOCK];
      new Random(33).nextBytes(other);
      v.write(100L * BLOCK, ByteBuffer.wrap(other));
      v.createSnapshot("before");
      assertEquals(66L * BLOCK, v.planRevert(SnapshotRef.ofName("s1"), true).changedBytes());
      long used = v.diffUsedBytes();
      v.revert(SnapshotRef.ofName("s1"), true, Progress.NONE);
      assertEquals(2L * BLOCK, v.diffUsedBytes() - used, "only the two blocks that differ are preserved");
      assertArrayEquals(data, origin(v));
    }
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 2})
  void revertKeepingNewer_partialLastBlock_isRevertedToo(int kind) throws IOException {
    int size = (1 << 20) + 1234;
    try (Volume v = Volume.create(tmp.resolve("v"), VolumeConfig.of(size).withBlockSize(BLOCK).withDiffMax(4L * size))) {
      Random r = new Random(8);
      byte[] data = new byte[size];
      r.nextBytes(data);
      v.write(0, ByteBuffer.wrap(data));
      v.createSnapshot("s1");
      byte[] tail = new byte[1234 + 100];
      r.nextBytes(tail);
      if (kind == 0) {
        v.write(size - tail.length, ByteBuffer.wrap(tail));
      } else if (kind == 1) {
        v.writeZeroes(size - 1234, 1234);
      } else {
        v.trim(size - 5000, 5000);
      }
      v.createSnapshot("before");
      byte[] now = origin(v);
      v.revert(SnapshotRef.ofName("s1"), true, Progress.NONE);
      assertArrayEquals(data, origin(v));
      assertArrayEquals(now, read(v.openSnapshot("before")));
    }
  }

  @Test
  void revertKeepingNewer_targetIsNewest_revertsAndKeepsIt() throws IOException {
    try (Volume v = Volume.create(tmp.resolve("v"), VolumeConfig.of(SIZE).withBlockSize(BLOCK).withDiffMax(2L * SIZE))) {
      byte[] data = new byte[SIZE];
      new Random(4).nextBytes(data);
      v.write(0, ByteBuffer.wrap(data));
      v.createSnapshot("s1");
      v.writeZeroes(0, SIZE / 2);
      assertEquals(0, v.planRevert(SnapshotRef.ofName("s1"), true).preservedBytes());
      v.revert(SnapshotRef.ofName("s1"), true, Progress.NONE);
      assertArrayEquals(data, origin(v));
      assertArrayEquals(data, read(v.openSnapshot("s1")));
    }
  }

  @Test
  void revertKeepingNewer_diffAreaTooSmall_refusesAndChangesNothing() throws IOException {
    try (Volume v = Volume.create(tmp.resolve("v"), VolumeConfig.of(SIZE).withBlockSize(BLOCK).withDiffMax(SIZE / 2 + 4 * BLOCK))) {
      byte[] data = new byte[SIZE];
      new Random(5).nextBytes(data);
      v.write(0, ByteBuffer.wrap(data));
      v.createSnapshot("s1");
      byte[] next = new byte[SIZE / 2];
      new Random(6).nextBytes(next);
      v.write(0, ByteBuffer.wrap(next));
      v.createSnapshot("before");
      byte[] current = origin(v);
      Map<String, byte[]> images = images(v);
      VolumeException e = assertThrows(VolumeException.class, () -> v.revert(SnapshotRef.ofName("s1"), true, Progress.NONE));
      assertTrue(e.getMessage().contains("diff area") && e.getMessage().contains("nothing was changed"), e.getMessage());
      assertArrayEquals(current, origin(v));
      assertImages(images, v);
    }
  }

  /** SIGKILL at a point inside the copy back (paused there, or at a random instant); the next open finishes. */
  @ParameterizedTest
  @ValueSource(strings = {"0.5 pause", "0.1", "0.6", "0.0 pause"})
  void revertKeepingNewer_killedMidway_nextOpenFinishesAndSnapshotsUnchanged(String point) throws Exception {
    Path dir = tmp.resolve("v");
    byte[] current;
    Map<String, byte[]> before;
    try (Volume v = prepare(dir, 7)) {
      current = origin(v);
      before = images(v);
    }
    String[] p = point.split(" ");
    Path work = tmp.resolve("child");
    java.nio.file.Files.createDirectories(work);
    try (ChildJvm child = p.length > 1
        ? ChildJvm.start(work, KeepRevertChild.class, dir.toString(), "s1", p[0], p[1])
        : ChildJvm.start(work, KeepRevertChild.class, dir.toString(), "s1", p[0])) {
      assertTrue(child.awaitAck(0, Duration.ofSeconds(60)), "child ended early: " + child.output());
      assertEquals(ChildJvm.SIGKILL_STATUS, child.kill());
    }
    try (Volume v = Volume.open(dir)) {
      assertArrayEquals(before.get("s1"), origin(v), "origin after the open finished the revert");
      assertImages(before, v);
      v.revert(SnapshotRef.ofName("before"), false, Progress.NONE);
      assertArrayEquals(current, origin(v), "origin after undoing the revert");
    }
  }
}
