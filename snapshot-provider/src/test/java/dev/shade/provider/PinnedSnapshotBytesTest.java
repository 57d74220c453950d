package dev.shade.provider;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Volume#pinSnapshotBytes}: views of a snapshot's blocks, wherever they live, that keep
 * the snapshot's bytes while the origin is written: the point-in-time guarantee of a zero-copy
 * send. Real volume files; the writers run on threads of their own and must wait for the release.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class PinnedSnapshotBytesTest {
  private static final int BLOCK = VolumeConfig.DEFAULT_BLOCK_SIZE;
  private static final int SIZE = 64 * BLOCK;
  /** How long a writer is given to get past a pin it must wait for (it must not). */
  private static final long BLOCKED_MS = 300;

  @TempDir Path tmp;
  private final ExecutorService pool = Executors.newCachedThreadPool();
  private Volume v;
  /** The volume's contents when snapshot "s" was taken. */
  private byte[] before;

  @BeforeEach
  void setUp() throws IOException {
    v = Volume.create(tmp.resolve("v"), VolumeConfig.of(SIZE).withDiffMax(4L * SIZE));
    before = new byte[SIZE];
    new Random(11).nextBytes(before);
    v.write(0, ByteBuffer.wrap(before));
    v.flush();
    v.createSnapshot("s");
  }

  @AfterEach
  void tearDown() throws IOException {
    pool.shutdownNow();
    v.close();
  }

  @Test
  void originBlocks_largeWriteWaitsForTheRelease() throws Exception {
    long off = 4L * BLOCK;
    int len = 16 * BLOCK; // 1 MiB: copied directly and written at once, no write-behind
    PinnedBytes p = v.pinSnapshotBytes(SnapshotRef.ofName("s"), off, len);
    assertNotNull(p, "the snapshot's blocks are the origin's, just written, so in memory");
    assertEquals(1, p.buffers().length, "one run of unchanged blocks is one view of the origin");
    byte[] fresh = random(len, 12);
    Future<?> write = pool.submit(() -> {
      v.write(off, ByteBuffer.wrap(fresh));
      return null;
    });
    assertBlocked(write, "a write over pinned origin blocks");
    assertArrayEquals(slice(before, off, len), bytes(p), "the pinned view during the write");
    p.release();
    write.get(10, TimeUnit.SECONDS);
    p.release(); // idempotent
    assertArrayEquals(fresh, read(v, off, len), "origin after the write");
    assertArrayEquals(slice(before, off, len), readSnapshot(off, len), "snapshot after the write");
  }

  @Test
  void aWriteOverPinnedBlocks_tellsTheHolder_whichCopiesAndReleases() throws Exception {
    long off = 4L * BLOCK;
    int len = 16 * BLOCK;
    PinnedBytes p = v.pinSnapshotBytes(SnapshotRef.ofName("s"), off, len);
    assertNotNull(p);
    byte[][] copied = new byte[1][];
    java.util.concurrent.CountDownLatch told = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.atomic.AtomicInteger calls = new java.util.concurrent.atomic.AtomicInteger();
    p.whenWanted(() -> { // as a sender does: copy what is left to send, then let go
      calls.incrementAndGet();
      copied[0] = bytes(p);
      p.release();
      told.countDown();
    });
    assertEquals(0, calls.get(), "nobody wants the bytes yet");
    byte[] fresh = random(len, 17);
    Future<?> write = pool.submit(() -> {
      v.write(off, ByteBuffer.wrap(fresh));
      return null;
    });
    assertTrue(told.await(10, TimeUnit.SECONDS), "the waiting write told the holder");
    write.get(10, TimeUnit.SECONDS);
    assertEquals(1, calls.get(), "told once");
    assertArrayEquals(slice(before, off, len), copied[0], "the holder's copy is the snapshot's bytes");
    assertArrayEquals(fresh, read(v, off, len), "origin after the write");
    assertArrayEquals(slice(before, off, len), readSnapshot(off, len), "snapshot after the write");
  }

  @Test
  void aHolderRegisteringAfterTheWriteBeganWaiting_isToldAtOnce() throws Exception {
    PinnedBytes p = v.pinSnapshotBytes(SnapshotRef.ofName("s"), 0, 16 * BLOCK);
    assertNotNull(p);
    try {
      Future<?> write = pool.submit(() -> {
        v.write(0, ByteBuffer.wrap(random(16 * BLOCK, 18))); // 1 MiB: written at once, so it waits
        return null;
      });
      assertBlocked(write, "a write over pinned origin blocks");
      java.util.concurrent.atomic.AtomicInteger calls = new java.util.concurrent.atomic.AtomicInteger();
      p.whenWanted(() -> {
        calls.incrementAndGet();
        p.release();
      });
      assertEquals(1, calls.get(), "told on this thread, at once");
      write.get(10, TimeUnit.SECONDS);
    } finally {
      p.release();
    }
  }

  @Test
  void aDeleteTellsEveryHolder() throws Exception {
    long off = 20L * BLOCK;
    v.write(off + BLOCK, ByteBuffer.wrap(random(BLOCK, 19))); // block 21 copied to the diff area
    v.flush();
    readSnapshot(off, 4 * BLOCK);
    PinnedBytes mixed = v.pinSnapshotBytes(SnapshotRef.ofName("s"), off, 4 * BLOCK); // origin and diff area
    PinnedBytes origin = v.pinSnapshotBytes(SnapshotRef.ofName("s"), 40L * BLOCK, BLOCK);
    assertNotNull(mixed);
    assertNotNull(origin);
    java.util.concurrent.atomic.AtomicInteger calls = new java.util.concurrent.atomic.AtomicInteger();
    for (PinnedBytes p : new PinnedBytes[] {mixed, origin}) {
      p.whenWanted(() -> {
        calls.incrementAndGet();
        p.release();
      });
    }
    v.deleteSnapshot("s"); // waits for both releases, which it asks for
    assertEquals(2, calls.get(), "each holder told once, though the mixed one holds several pins");
  }

  @Test
  void originBlocks_heldSmallWriteIsAppliedOnlyAfterTheRelease() throws Exception {
    long off = 9L * BLOCK + 100;
    int len = 4096; // a small first write: held behind, applied to the origin by the committer
    PinnedBytes p = v.pinSnapshotBytes(SnapshotRef.ofName("s"), 8L * BLOCK, 3 * BLOCK);
    assertNotNull(p);
    byte[] fresh = random(len, 13);
    v.write(off, ByteBuffer.wrap(fresh)); // returns: the origin is not touched yet
    // no read of the block here: the committer may already hold its stripe, waiting for the pin,
    // and a read of that stripe waits behind it until the release below
    Future<?> flush = pool.submit(() -> {
      v.flush(); // waits for the committer, which waits for the pin
      return null;
    });
    assertBlocked(flush, "a flush that must apply a held block over a pinned one");
    assertArrayEquals(slice(before, 8L * BLOCK, 3 * BLOCK), bytes(p), "the pinned view while the write is held");
    p.release();
    flush.get(10, TimeUnit.SECONDS);
    assertArrayEquals(fresh, read(v, off, len), "origin after the flush");
    assertArrayEquals(slice(before, 8L * BLOCK, 3 * BLOCK), readSnapshot(8L * BLOCK, 3 * BLOCK), "snapshot after it");
  }

  @Test
  void writesOutsideThePinnedBlocks_doNotWait() throws Exception {
    PinnedBytes p = v.pinSnapshotBytes(SnapshotRef.ofName("s"), 0, 2 * BLOCK);
    assertNotNull(p);
    try {
      byte[] fresh = random(16 * BLOCK, 14);
      Future<?> write = pool.submit(() -> {
        v.write(32L * BLOCK, ByteBuffer.wrap(fresh));
        v.flush();
        return null;
      });
      write.get(10, TimeUnit.SECONDS);
      assertArrayEquals(fresh, read(v, 32L * BLOCK, fresh.length));
    } finally {
      p.release();
    }
  }

  @Test
  void copiedBlocks_comeFromTheDiffAreaAndHoldOffTheDelete() throws Exception {
    long off = 20L * BLOCK;
    int len = 8 * BLOCK;
    byte[] fresh = random(4 * BLOCK, 15);
    v.write(off + 2L * BLOCK, ByteBuffer.wrap(fresh)); // blocks 22..25 copied to the diff area
    v.flush();
    readSnapshot(off, len); // the copies went O_DIRECT: this read brings them into the page cache
    PinnedBytes p = v.pinSnapshotBytes(SnapshotRef.ofName("s"), off, len);
    assertNotNull(p);
    assertTrue(p.buffers().length >= 2, "origin, diff area, origin: " + p.buffers().length + " buffers");
    assertArrayEquals(slice(before, off, len), bytes(p), "the snapshot's bytes across origin and diff area");
    Future<?> delete = pool.submit(() -> {
      v.deleteSnapshot("s"); // would free the slots the view reads
      return null;
    });
    assertBlocked(delete, "a delete that frees pinned diff slots");
    assertArrayEquals(slice(before, off, len), bytes(p), "the pinned view while the delete waits");
    p.release();
    delete.get(10, TimeUnit.SECONDS);
    assertNull(v.pinSnapshotBytes(SnapshotRef.ofName("s"), off, len), "a deleted snapshot has nothing to pin");
  }

  @Test
  void trimmedBlocks_areZerosOfTheSnapshotAfterItsWrite() throws Exception {
    v.trim(40L * BLOCK, 2L * BLOCK);
    v.flush();
    v.createSnapshot("t");
    byte[] fresh = random(2 * BLOCK, 16);
    v.write(40L * BLOCK, ByteBuffer.wrap(fresh)); // "t" now holds zero entries for both blocks
    v.flush();
    PinnedBytes p = v.pinSnapshotBytes(SnapshotRef.ofName("t"), 40L * BLOCK, 2 * BLOCK);
    assertNotNull(p);
    try {
      assertArrayEquals(new byte[2 * BLOCK], bytes(p), "zeros, not the later write");
    } finally {
      p.release();
    }
  }

  @Test
  void aStripeHeldByAWrite_afterPinsWereTaken_makesThePinGiveUpInsteadOfDeadlocking() throws Exception {
    // a write over blocks 59..60 holds both stripes, then waits for pins of them; a pin of the same range that
    // took block 59's pin and then waited for block 60's stripe would wait for the write, and the write for it
    java.util.concurrent.locks.ReentrantReadWriteLock second = v.locks().stripe(60);
    assertNotSame(v.locks().stripe(59), second, "two stripes");
    second.writeLock().lock();
    try {
      Future<PinnedBytes> pin = pool.submit(() -> v.pinSnapshotBytes(SnapshotRef.ofName("s"), 59L * BLOCK,
          2 * BLOCK));
      assertNull(pin.get(10, TimeUnit.SECONDS), "no view: the read copies instead");
      v.locks().awaitUnpinned(59, 60); // returns: the pin of block 59 was let go
    } finally {
      second.writeLock().unlock();
    }
    PinnedBytes p = v.pinSnapshotBytes(SnapshotRef.ofName("s"), 59L * BLOCK, 2 * BLOCK);
    assertNotNull(p, "with the stripe free the range pins as before");
    assertArrayEquals(Arrays.copyOfRange(before, 59 * BLOCK, 61 * BLOCK), bytes(p));
    p.release();
  }

  @Test
  void closedVolumeOrUnknownSnapshot_givesNoView() throws IOException {
    assertNull(v.pinSnapshotBytes(SnapshotRef.ofName("none"), 0, BLOCK));
    assertNull(v.pinSnapshotBytes(SnapshotRef.ofName("s"), SIZE - 10, 20), "past the end");
    v.close();
    assertNull(v.pinSnapshotBytes(SnapshotRef.ofName("s"), 0, BLOCK));
  }

  /** Asserts that {@code f} is still running after {@link #BLOCKED_MS}. */
  private static void assertBlocked(Future<?> f, String what) throws InterruptedException {
    Thread.sleep(BLOCKED_MS);
    assertFalse(f.isDone(), what + " went ahead while the bytes were pinned");
  }

  private static byte[] bytes(PinnedBytes p) {
    ByteBuffer[] bufs = p.buffers();
    int n = 0;
    for (ByteBuffer b : bufs) {
      n += b.remaining();
    }
    byte[] out = new byte[n];
    int at = 0;
    for (ByteBuffer b : bufs) {
      ByteBuffer d = b.duplicate();
      int k = d.remaining();
      d.get(out, at, k);
      at += k;
    }
    return out;
  }

  private byte[] readSnapshot(long off, int len) throws IOException {
    try (BlockSource s = v.openSnapshot("s")) {
      ByteBuffer b = ByteBuffer.allocate(len);
      s.read(off, b);
      return b.array();
    }
  }

  private static byte[] read(Volume v, long off, int len) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(len);
    v.read(off, b);
    return b.array();
  }

  private static byte[] slice(byte[] a, long off, int len) {
    return Arrays.copyOfRange(a, (int) off, (int) off + len);
  }

  private static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }
}
