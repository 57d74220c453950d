package dev.shade.provider;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * First writes after a snapshot return before their copies are durable and are held in memory
 * until then: whatever the timing, the origin must read the new bytes at once, the snapshot the
 * old ones, and every operation that looks at snapshots must see the held blocks.
 */
class WriteBehindTest {
  private static final int BLOCK = 65536;
  private static final int SIZE = 16 << 20;

  @TempDir Path tmp;

  /** A volume full of non-zero data (zero blocks of a file origin are never held) and one snapshot. */
  private Volume filledWithSnapshot(Path dir, byte[] image) throws IOException {
    new Random(1).nextBytes(image);
    for (int i = 0; i < image.length; i += 4096) {
      image[i] |= 1; // no all-zero block
    }
    Volume v = Volume.create(dir, VolumeConfig.of(SIZE).withBlockSize(BLOCK).withDiffMax(SIZE));
    v.write(0, ByteBuffer.wrap(image));
    v.flush();
    v.createSnapshot("before");
    return v;
  }

  @Test
  void concurrentFirstWrites_readBackAtOnce_andTheSnapshotKeepsTheOldBytes() throws Exception {
    byte[] before = new byte[SIZE];
    Path dir = tmp.resolve("v");
    Volume v = filledWithSnapshot(dir, before);
    byte[] now = before.clone();
    int threads = 4;
    int stripe = SIZE / threads;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int base = t * stripe;
        long seed = 100 + t;
        done.add(pool.submit(() -> {
          Random rnd = new Random(seed);
          for (int i = 0; i < 600; i++) {
            int off = base + rnd.nextInt(stripe / 4096) * 4096 + rnd.nextInt(64);
            int len = Math.min(base + stripe - off, 1 + rnd.nextInt(3 * 4096));
            byte[] data = new byte[len];
            rnd.nextBytes(data);
            v.write(off, ByteBuffer.wrap(data));
            synchronized (now) {
              System.arraycopy(data, 0, now, off, len);
            }
            ByteBuffer back = ByteBuffer.allocate(len);
            v.read(off, back);
            assertArrayEquals(data, back.array(), "read right after the write at " + off);
            if (i % 50 == 0) {
              ByteBuffer old = ByteBuffer.allocate(len);
              try (BlockSource s = v.openSnapshot("before")) {
                s.read(off, old);
              }
              byte[] expected = new byte[len];
              System.arraycopy(before, off, expected, 0, len);
              assertArrayEquals(expected, old.array(), "snapshot read at " + off + " during the writes");
            }
          }
          return null;
        }));
      }
      for (Future<?> f : done) {
        f.get();
      }
    } finally {
      pool.shutdownNow();
    }
    assertArrayEquals(now, VolumeModelTest.readAll(v), "origin after the writes");
    try (BlockSource s = v.openSnapshot("before")) {
      assertArrayEquals(before, VolumeModelTest.readAll(s), "snapshot after the writes");
    }
    v.flush();
    v.close();
    try (Volume again = Volume.open(dir)) {
      assertArrayEquals(now, VolumeModelTest.readAll(again), "origin after reopening");
      try (BlockSource s = again.openSnapshot("before")) {
        assertArrayEquals(before, VolumeModelTest.readAll(s), "snapshot after reopening");
      }
    }
  }

  @Test
  void heldWrites_areSeenBySnapshotsDiffsAndFigures() throws IOException {
    byte[] before = new byte[SIZE];
    try (Volume v = filledWithSnapshot(tmp.resolve("v"), before)) {
      byte[] data = new byte[4096];
      new Random(7).nextBytes(data);
      long off = 5L * BLOCK + 100;
      v.write(off, ByteBuffer.wrap(data)); // straight to the checks: no flush in between

      assertEquals(List.of(new Range(5L * BLOCK, BLOCK)), v.changedRanges("before", null), "changed ranges");
      assertEquals(BLOCK, v.snapshot("before").diffBytes(), "the snapshot's diff bytes");

      v.createSnapshot("after");
      ByteBuffer got = ByteBuffer.allocate(data.length);
      try (BlockSource s = v.openSnapshot("after")) {
        s.read(off, got);
      }
      assertArrayEquals(data, got.array(), "a snapshot taken right after the write holds it");
      got.clear();
      try (BlockSource s = v.openSnapshot("before")) {
        s.read(off, got);
      }
      byte[] old = new byte[data.length];
      System.arraycopy(before, (int) off, old, 0, old.length);
      assertArrayEquals(old, got.array(), "the older snapshot still reads the old bytes");
    }
  }

  @Test
  void trimAndRevert_overHeldBlocks_land() throws IOException {
    byte[] before = new byte[SIZE];
    try (Volume v = filledWithSnapshot(tmp.resolve("v"), before)) {
      byte[] data = new byte[3 * BLOCK];
      new Random(8).nextBytes(data);
      v.write(2L * BLOCK, ByteBuffer.wrap(data));
      v.trim(3L * BLOCK, BLOCK); // the middle block, held a moment ago
      ByteBuffer got = ByteBuffer.allocate(data.length);
      v.read(2L * BLOCK, got);
      byte[] expected = data.clone();
      java.util.Arrays.fill(expected, BLOCK, 2 * BLOCK, (byte) 0);
      assertArrayEquals(expected, got.array(), "write, then trim of its middle block");

      v.write(9L * BLOCK, ByteBuffer.wrap(data));
      v.revert("before", Progress.NONE);
      assertArrayEquals(before, VolumeModelTest.readAll(v), "revert right after held writes");
      try (BlockSource s = v.openSnapshot("before")) {
        assertArrayEquals(before, VolumeModelTest.readAll(s), "the snapshot reverted to");
      }
    }
  }
}
