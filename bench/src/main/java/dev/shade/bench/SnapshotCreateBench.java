package dev.shade.bench;

import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.HdrHistogram.Histogram;

/** Snapshot creation latency on a large sparse volume while another thread keeps writing. */
final class SnapshotCreateBench {
  /* One background thread writes 64 KiB blocks at random block-aligned offsets of the whole
   * volume and flushes every few writes, so most of its writes are first writes that copy a
   * block, and every creation has to hold in-flight I/O and flush. The main thread creates
   * snapshots one after another with a short pause, timing each createSnapshot call into an
   * HdrHistogram (microseconds, 3 significant digits); the first few are warm-up and not
   * recorded. After each creation the oldest snapshots beyond the kept count are deleted,
   * outside the timing, so deletion with its merge work also runs concurrently with the
   * writer. Writer latencies (write plus, every few writes, flush) go to a second histogram. */

  /** Size of one background write. */
  static final int WRITE_SIZE = 64 * 1024;

  /** Highest value either histogram tracks, in microseconds; larger ones are clamped. */
  private static final long HIGHEST_MICROS = TimeUnit.SECONDS.toMicros(120);

  private SnapshotCreateBench() {}

  static Map<String, Object> run(Path dir, BenchSettings s, Consumer<String> progress)
      throws IOException {
    VolumeConfig config = new VolumeConfig(s.createVolumeBytes(), VolumeConfig.DEFAULT_BLOCK_SIZE,
        s.createDiffMax(), null, null);
    Histogram create = new Histogram(HIGHEST_MICROS, 3);
    long deleted = 0;
    boolean truncated = false;
    Writer writer;
    long start;
    long elapsed;
    try (Volume volume = Volume.create(dir, config)) {
      writer = new Writer(volume, s.writerFlushEvery());
      Thread thread = new Thread(writer, "shade-bench-writer");
      thread.setDaemon(true);
      start = System.nanoTime();
      thread.start();
      try {
        int total = s.createWarmup() + s.createCount();
        for (int i = 0; i < total; i++) {
          if (System.nanoTime() - start > s.createCapNanos()) {
            truncated = true;
            break;
          }
          writer.rethrow();
          long t0 = System.nanoTime();
          volume.createSnapshot(null);
          long micros = (System.nanoTime() - t0) / 1000;
          if (i >= s.createWarmup()) {
            create.recordValue(Math.min(micros, HIGHEST_MICROS));
          }
          List<SnapshotInfo> snapshots = volume.snapshots();
          for (int k = 0; k < snapshots.size() - s.createKeep(); k++) {
            volume.deleteSnapshot(snapshots.get(k).name());
            deleted++;
          }
          if ((i + 1) % 50 == 0) {
            progress.accept("snapshot create: " + (i + 1) + "/" + total + ", p99 so far "
                + ms(create.getValueAtPercentile(99)) + " ms");
          }
          sleep(s.createPauseMillis());
        }
      } finally {
        writer.stop();
        joinQuietly(thread);
      }
      elapsed = System.nanoTime() - start;
      writer.rethrow();
    }

    Map<String, Object> out = new LinkedHashMap<>();
    out.put("create_p50_ms", ms(create.getValueAtPercentile(50)));
    out.put("create_p99_ms", ms(create.getValueAtPercentile(99)));
    out.put("create_max_ms", ms(create.getMaxValue()));
    out.put("create_mean_ms", round(create.getMean() / 1000.0, 3));
    out.put("create_count", create.getTotalCount());
    out.put("create_warmup", s.createWarmup());
    out.put("create_truncated", truncated);
    out.put("create_snapshots_kept", s.createKeep());
    out.put("create_snapshots_deleted", deleted);
    out.put("create_volume_gib", s.createVolumeBytes() / BenchSettings.GIB);
    out.put("create_diff_max_gib", s.createDiffMax() / BenchSettings.GIB);
    out.put("create_seconds", round(elapsed / 1e9, 1));
    out.put("create_writer_writes", writer.histogram.getTotalCount());
    out.put("create_writer_flush_every", s.writerFlushEvery());
    out.put("create_writer_mib_s", round(
        writer.histogram.getTotalCount() * (double) WRITE_SIZE / BenchSettings.MIB / (elapsed / 1e9), 1));
    out.put("create_writer_p99_ms", ms(writer.histogram.getValueAtPercentile(99)));
    out.put("create_writer_max_ms", ms(writer.histogram.getMaxValue()));
    return out;
  }

  /** The background writer: random 64 KiB block writes with a flush every few writes. */
  private static final class Writer implements Runnable {
    /** The volume written; shared with the creating thread (the volume is thread-safe). */
    private final Volume volume;
    /** Flush after this many writes. */
    private final int flushEvery;
    /** Latency of each write (and of the flush that follows it, when one does); writer thread
     *  only, read by others after join. */
    final Histogram histogram = new Histogram(HIGHEST_MICROS, 3);
    /** Set by the main thread to end the loop. */
    private volatile boolean stopped;
    /** The first failure of the writer, reported by {@link #rethrow()}. */
    private volatile Throwable failure;

    Writer(Volume volume, int flushEvery) {
      this.volume = volume;
      this.flushEvery = flushEvery;
    }

    @Override
    public void run() {
      ByteBuffer buf = SequentialPass.randomBuffer(WRITE_SIZE, 7);
      SplittableRandom random = new SplittableRandom(42);
      long blocks = volume.size() / WRITE_SIZE;
      long n = 0;
      try {
        while (!stopped) {
          long offset = random.nextLong(blocks) * WRITE_SIZE;
          SequentialPass.stamp(buf, n, offset);
          long t0 = System.nanoTime();
          volume.write(offset, buf.duplicate().clear());
          if (++n % flushEvery == 0) {
            volume.flush();
          }
          histogram.recordValue(Math.min((System.nanoTime() - t0) / 1000, HIGHEST_MICROS));
        }
        volume.flush();
      } catch (Throwable t) {
        failure = t;
      }
    }

    void stop() {
      stopped = true;
    }

    void rethrow() throws IOException {
      Throwable t = failure;
      if (t instanceof IOException e) {
        throw new IOException("background writer failed on " + volume.directory() + ": " + e, e);
      }
      if (t != null) {
        throw new IllegalStateException("background writer failed on " + volume.directory(), t);
      }
    }
  }

  private static void sleep(int millis) throws IOException {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("snapshot creation benchmark interrupted");
    }
  }

  private static void joinQuietly(Thread thread) {
    try {
      thread.join(TimeUnit.SECONDS.toMillis(60));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  static double ms(long micros) {
    return round(micros / 1000.0, 3);
  }

  static double round(double value, int digits) {
    double scale = Math.pow(10, digits);
    return Math.round(value * scale) / scale;
  }
}
