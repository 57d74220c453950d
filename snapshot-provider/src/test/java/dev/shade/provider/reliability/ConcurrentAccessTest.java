package dev.shade.provider.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.provider.VolumeListener;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Writers on disjoint regions, readers of snapshots and a snapshot taker run at once; each
 * snapshot must show, for every writer, exactly the result of a prefix of that writer's writes.
 */
class ConcurrentAccessTest {
  /*
   * Four writer threads own adjacent regions of 300,007 bytes starting at offset 1,000, so the
   * region edges fall inside blocks and two writers share each edge block: copy-on-write of a
   * block must not lose or tear a neighbour's concurrent write. Each writer issues sequential
   * writes of 1 byte to 3 blocks at seeded offsets in its region, counting "started" before a
   * write and "completed" after it returns.
   *
   * The main thread takes snapshots: before createSnapshot it reads every writer's completed
   * count (lo), after it returns every writer's started count (hi). The snapshot took effect
   * at one instant between two writes of each writer, so for each writer its region in the
   * snapshot equals the region after that writer's first n writes for some n in [lo, hi].
   *
   * Two reader threads meanwhile read random live snapshots whole and check that every read of
   * one snapshot gives the same bytes (CRC32C), while the origin changes under them, and read
   * the origin. At the end the snapshots are checked against replays of each writer's log,
   * the bytes outside the regions must still be zero everywhere, and the origin must equal
   * every writer's full replay.
   */

  private static final int WRITERS = 4;
  private static final int READERS = 2;
  private static final int SNAPSHOTS = 25;
  private static final long SIZE = 4L << 20;
  private static final int REGION = 300_007;
  private static final int FIRST_REGION = 1_000;

  @ParameterizedTest(name = "block size {0}")
  @ValueSource(ints = {4096, 65536})
  @Timeout(120)
  void createSnapshot_whileWritingAndReading_isPointInTimePerWriter(int blockSize, @TempDir Path tmp) throws Exception {
    long seed = Long.getLong("shade.concurrency.seed", System.nanoTime());
    String ctx = "seed " + seed + " (rerun with -Dshade.concurrency.seed=" + seed + "), block size " + blockSize;
    SplittableRandom seeds = new SplittableRandom(seed);
    ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
    AtomicBoolean stop = new AtomicBoolean();
    List<String> overflowed = new CopyOnWriteArrayList<>();

    try (Volume volume = Volume.create(tmp.resolve("vol"), new VolumeConfig(SIZE, blockSize, 256L << 20, null, null))) {
      volume.addListener(new VolumeListener() {
        @Override
        public void snapshotDeletedForSpace(SnapshotInfo deleted, long diffMaxBytes) {
          overflowed.add(deleted.name());
        }
      });
      Writer[] writers = new Writer[WRITERS];
      List<Thread> threads = new ArrayList<>();
      for (int w = 0; w < WRITERS; w++) {
        writers[w] = new Writer(w, seeds.nextLong(), blockSize, volume, stop, errors);
        threads.add(new Thread(writers[w], "writer-" + w));
      }
      List<Taken> taken = new CopyOnWriteArrayList<>();
      Map<String, Long> firstCrc = new ConcurrentHashMap<>();
      for (int r = 0; r < READERS; r++) {
        long readerSeed = seeds.nextLong();
        threads.add(new Thread(() -> read(volume, taken, firstCrc, readerSeed, stop, errors), "reader-" + r));
      }
      threads.forEach(Thread::start);
      try {
        for (int k = 0; k < SNAPSHOTS && errors.isEmpty(); k++) {
          Thread.sleep(15 + seeds.nextInt(30));
          int[] lo = new int[WRITERS];
          for (int w = 0; w < WRITERS; w++) {
            lo[w] = writers[w].completed.get();
          }
          String name = "c" + k;
          volume.createSnapshot(name);
          int[] hi = new int[WRITERS];
          for (int w = 0; w < WRITERS; w++) {
            hi[w] = writers[w].started.get();
          }
          taken.add(new Taken(name, lo, hi));
        }
        Thread.sleep(30);
      } finally {
        stop.set(true);
        for (Thread t : threads) {
          t.join(60_000);
          assertTrue(!t.isAlive(), ctx + ": thread " + t.getName() + " did not stop");
        }
      }
      if (!errors.isEmpty()) {
        AssertionError e = new AssertionError(ctx + ": " + errors.size() + " thread(s) failed; first: " + errors.peek(),
            errors.peek());
        errors.stream().skip(1).forEach(e::addSuppressed);
        throw e;
      }
      assertEquals(List.of(), overflowed, ctx + ": snapshots deleted for space although the limit is 256 MiB");
      int[] counts = new int[WRITERS];
      for (int w = 0; w < WRITERS; w++) {
        counts[w] = writers[w].log.size();
        assertTrue(counts[w] > 10, ctx + ": writer " + w + " made only " + counts[w] + " writes");
      }
      System.out.println("concurrent access, " + ctx + ": " + taken.size() + " snapshots, writes per writer "
          + Arrays.toString(counts) + ", readers read " + firstCrc.size() + " of the snapshots while writes went on");

      byte[][] originRegions = new byte[WRITERS][];
      byte[] origin = VolumeImages.readAll(volume);
      for (int w = 0; w < WRITERS; w++) {
        originRegions[w] = Arrays.copyOfRange(origin, regionStart(w), regionStart(w) + REGION);
      }
      checkOutsideRegionsZero(origin, ctx + ": origin");
      Replay[] replays = new Replay[WRITERS];
      for (int w = 0; w < WRITERS; w++) {
        replays[w] = new Replay(writers[w].log, regionStart(w));
      }
      for (Taken t : taken) {
        byte[] snap = VolumeImages.readSnapshot(volume, t.name);
        checkOutsideRegionsZero(snap, ctx + ": snapshot " + t.name);
        Long crc = firstCrc.get(t.name);
        if (crc != null) {
          assertEquals(crc.longValue(), crc(snap), ctx + ": snapshot " + t.name + " changed between reads");
        }
        for (int w = 0; w < WRITERS; w++) {
          byte[] region = Arrays.copyOfRange(snap, regionStart(w), regionStart(w) + REGION);
          String problem = replays[w].matchPrefix(region, t.lo[w], t.hi[w]);
          if (problem != null) {
            fail(ctx + ": snapshot " + t.name + ", writer " + w + " (region at " + regionStart(w) + "): " + problem);
          }
        }
      }
      for (int w = 0; w < WRITERS; w++) {
        int n = writers[w].log.size();
        String problem = replays[w].matchPrefix(originRegions[w], n, n);
        if (problem != null) {
          fail(ctx + ": origin, writer " + w + " after all its " + n + " writes: " + problem);
        }
      }
    }
  }

  private static int regionStart(int w) {
    return FIRST_REGION + w * REGION;
  }

  private static void checkOutsideRegionsZero(byte[] image, String what) {
    int end = regionStart(WRITERS);
    for (int i = 0; i < image.length; i++) {
      if (i == FIRST_REGION) {
        i = end;
      }
      if (i < image.length && image[i] != 0) {
        fail(what + ": byte " + i + " outside every writer's region is 0x" + Integer.toHexString(image[i] & 0xff));
      }
    }
  }

  private static long crc(byte[] b) {
    CRC32C c = new CRC32C();
    c.update(b);
    return c.getValue();
  }

  /** Reads random snapshots whole (and the origin) until stopped, checking snapshots are stable. */
  private static void read(Volume volume, List<Taken> taken, Map<String, Long> firstCrc, long seed, AtomicBoolean stop,
      ConcurrentLinkedQueue<Throwable> errors) {
    SplittableRandom rnd = new SplittableRandom(seed);
    try {
      while (!stop.get()) {
        int n = taken.size();
        if (n == 0 || rnd.nextInt(4) == 0) {
          VolumeImages.readAll(volume);
          continue;
        }
        String name = taken.get(rnd.nextInt(n)).name;
        long crc = crc(VolumeImages.readSnapshot(volume, name));
        Long first = firstCrc.putIfAbsent(name, crc);
        if (first != null && first != crc) {
          throw new AssertionError("snapshot " + name + " read back different bytes on a later read (CRC32C "
              + Long.toHexString(first) + " then " + Long.toHexString(crc) + ")");
        }
      }
    } catch (Throwable t) {
      errors.add(t);
    }
  }

  /**
   * A snapshot and, per writer, the window of write counts it may show.
   *
   * @param lo writes each writer had completed before createSnapshot was called
   * @param hi writes each writer had started when createSnapshot returned
   */
  private record Taken(String name, int[] lo, int[] hi) {}

  /** One writer thread: sequential seeded writes inside its own region. */
  private static final class Writer implements Runnable {
    /** Which region this writer owns. */
    private final int index;
    /** Chooses offsets, lengths and data seeds. */
    private final SplittableRandom rnd;
    /** The volume's block size; writes are up to three blocks long. */
    private final int blockSize;
    /** The volume written. */
    private final Volume volume;
    /** Set by the test thread when writers must finish. */
    private final AtomicBoolean stop;
    /** Where a failure goes. */
    private final ConcurrentLinkedQueue<Throwable> errors;
    /** Every write issued, in order; read by the test thread only after join. */
    final List<Op> log = new ArrayList<>();
    /** Writes issued (incremented before each write call). */
    final AtomicInteger started = new AtomicInteger();
    /** Writes returned (incremented after each write call). */
    final AtomicInteger completed = new AtomicInteger();

    Writer(int index, long seed, int blockSize, Volume volume, AtomicBoolean stop, ConcurrentLinkedQueue<Throwable> errors) {
      this.index = index;
      this.rnd = new SplittableRandom(seed);
      this.blockSize = blockSize;
      this.volume = volume;
      this.stop = stop;
      this.errors = errors;
    }

    @Override
    public void run() {
      try {
        while (!stop.get()) {
          int length = 1 + rnd.nextInt(Math.min(REGION, 3 * blockSize));
          long offset = regionStart(index) + rnd.nextInt(REGION - length + 1);
          Op op = Op.write(offset, length, rnd.nextLong());
          log.add(op);
          started.incrementAndGet();
          op.applyTo(volume);
          completed.incrementAndGet();
        }
      } catch (Throwable t) {
        errors.add(new AssertionError("writer " + index + " failed at write " + log.size(), t));
      }
    }
  }

  /** Replays one writer's log on its region to find which prefix a region image shows. */
  private static final class Replay {
    /** The writer's writes, in order. */
    private final List<Op> log;
    /** Volume offset of the writer's region. */
    private final int start;
    /** Region contents after {@link #applied} writes. */
    private final byte[] state = new byte[REGION];
    /** How many writes {@link #state} holds; only grows, as windows are checked in order. */
    private int applied;

    Replay(List<Op> log, int start) {
      this.log = log;
      this.start = start;
    }

    private static void apply(Op op, byte[] region, int start) {
      System.arraycopy(op.data(), 0, region, (int) op.offset() - start, (int) op.length());
    }

    /**
     * Null if {@code image} equals the region after n writes for some n in [lo, hi]; else a
     * description of how it differs from the state after lo writes. Windows must come with
     * non-decreasing lo.
     */
    String matchPrefix(byte[] image, int lo, int hi) {
      if (lo < applied) {
        throw new IllegalStateException("windows must come in order: lo " + lo + " < " + applied);
      }
      while (applied < lo) {
        apply(log.get(applied++), state, start);
      }
      int first = Arrays.mismatch(state, image);
      if (first < 0) {
        return null;
      }
      byte[] probe = state.clone();
      for (int n = lo + 1; n <= Math.min(hi, log.size()); n++) {
        apply(log.get(n - 1), probe, start);
        if (Arrays.equals(probe, image)) {
          return null;
        }
      }
      return "matches the region after no n writes with " + lo + " <= n <= " + hi + "; after " + lo + " writes: "
          + VolumeImages.describe(state, image, first) + " (region-relative offset; region starts at " + start + ")";
    }
  }
}
