package dev.shade.provider;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.nativeio.FileHandle;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Background writeback of the origin starts after enough bytes or after its delay, never
 * without writes, stops with the volume, and changes nothing a reader or a snapshot sees:
 * snapshots taken while it runs against concurrent first writes hold exactly their instant,
 * also after the volume is closed and opened again.
 */
class OriginWritebackTest {
  private static final int BLOCK = 65536;
  private static final int SIZE = 16 << 20;

  @TempDir Path tmp;

  private static void awaitStarts(OriginWriteback w, long n, long withinMs) throws InterruptedException {
    long until = System.nanoTime() + withinMs * 1_000_000L;
    while (w.starts() < n && System.nanoTime() < until) {
      Thread.sleep(1);
    }
  }

  @Test
  void startsAfterTheThreshold_orAfterTheDelay_andNotWithoutWrites() throws Exception {
    try (FileHandle f = FileHandle.create(tmp.resolve("origin"))) {
      f.truncate(SIZE);
      OriginWriteback w = new OriginWriteback("t", f, 1 << 20, 400);
      byte[] data = new byte[2 << 20];
      new Random(3).nextBytes(data);
      try {
        Thread.sleep(50);
        assertEquals(0, w.starts(), "no writes: no writeback");
        long t0 = System.nanoTime();
        f.writeFully(0, ByteBuffer.wrap(data));
        w.wrote(data.length);
        awaitStarts(w, 1, 5000);
        assertEquals(1, w.starts(), "2 MiB over the 1 MiB threshold start writeback");
        assertTrue(System.nanoTime() - t0 < 300_000_000L, "the threshold, not the 400 ms delay, started it");

        t0 = System.nanoTime();
        f.writeFully(4096, ByteBuffer.wrap(data, 0, 4096));
        w.wrote(4096);
        awaitStarts(w, 2, 5000);
        assertEquals(2, w.starts(), "a small write starts writeback after the delay");
        assertTrue(System.nanoTime() - t0 >= 390_000_000L, "not before the delay");
        Thread.sleep(50);
        assertEquals(2, w.starts(), "nothing new written: no further start");
      } finally {
        w.close();
      }
      w.wrote(1 << 20); // after close: ignored, no thread to wake
      assertEquals(2, w.starts());
      f.fdatasync();
      ByteBuffer back = ByteBuffer.allocate(data.length);
      f.readFully(0, back);
      System.arraycopy(data, 0, data, 4096, 4096);
      assertArrayEquals(data, back.array(), "the file reads what was written");
    }
  }

  @Test
  void turnedOff_hasNoThread() {
    OriginWriteback w = new OriginWriteback("t", null, 0, 5);
    w.wrote(1 << 30);
    assertEquals(0, w.starts());
    w.close();
  }

  @Test
  void snapshotsUnderConcurrentFirstWrites_holdTheirInstant_whileWritebackRuns() throws Exception {
    byte[] image = new byte[SIZE];
    new Random(1).nextBytes(image);
    Path dir = tmp.resolve("v");
    Volume v = Volume.create(dir, VolumeConfig.of(SIZE).withBlockSize(BLOCK).withDiffMax(16L * SIZE));
    v.write(0, ByteBuffer.wrap(image));
    v.flush();
    int threads = 4;
    int stripe = SIZE / threads;
    byte[] now = image.clone();
    List<byte[]> expected = new ArrayList<>();
    AtomicBoolean stop = new AtomicBoolean();
    ReentrantReadWriteLock between = new ReentrantReadWriteLock();
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int base = t * stripe;
        long seed = 10 + t;
        done.add(pool.submit(() -> {
          Random rnd = new Random(seed);
          byte[] data = new byte[4096];
          while (!stop.get()) {
            int off = base + rnd.nextInt(stripe / 4096) * 4096;
            rnd.nextBytes(data);
            between.readLock().lock(); // writers run at once; a snapshot is taken between two writes
            try {
              v.write(off, ByteBuffer.wrap(data));
              System.arraycopy(data, 0, now, off, data.length); // stripes are disjoint
            } finally {
              between.readLock().unlock();
            }
          }
          return null;
        }));
      }
      for (int i = 0; i < 12; i++) {
        Thread.sleep(20);
        between.writeLock().lock();
        try {
          v.createSnapshot("s" + i);
          expected.add(now.clone());
        } finally {
          between.writeLock().unlock();
        }
      }
      stop.set(true);
      for (Future<?> f : done) {
        f.get();
      }
    } finally {
      stop.set(true);
      pool.shutdownNow();
    }
    assertTrue(v.writeback().starts() > 0, "writeback ran during the writes");
    for (int i = 0; i < expected.size(); i++) {
      try (BlockSource s = v.openSnapshot("s" + i)) {
        assertArrayEquals(expected.get(i), VolumeModelTest.readAll(s), "snapshot s" + i);
      }
    }
    assertArrayEquals(now, VolumeModelTest.readAll(v), "origin");
    v.close();
    try (Volume again = Volume.open(dir)) {
      assertArrayEquals(now, VolumeModelTest.readAll(again), "origin after reopening");
      for (int i = 0; i < expected.size(); i++) {
        try (BlockSource s = again.openSnapshot("s" + i)) {
          assertArrayEquals(expected.get(i), VolumeModelTest.readAll(s), "snapshot s" + i + " after reopening");
        }
      }
    }
  }
}
