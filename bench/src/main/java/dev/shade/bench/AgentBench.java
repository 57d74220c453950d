package dev.shade.bench;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.nativeio.StatVfs;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.requestor.control.ControlClient;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.HdrHistogram.Histogram;

/**
 * The benchmark of {@code shade bench agent}: snapshot creation through a running agent's
 * control socket, with and without a write load over NBD.
 *
 * <p>Not thread-safe: one run at a time per thread; runs share nothing.
 */
public final class AgentBench {
  /*
   * One volume (filled with random data, so every first write after a snapshot copies a real
   * block) is held by a `shade agent` child process (AgentProcess) that serves it on an NBD Unix
   * socket. One control connection (ControlClient) does every snapshot-create and -delete; each
   * create is timed end to end, request written to reply parsed, into an HdrHistogram
   * (microseconds, 3 significant digits). In order, in one run:
   *
   *   1. warm-up: WARMUP creations, not recorded (the agent's JIT, the journal's first frames);
   *   2. idle: N creations with IDLE_PAUSE_MS between them and nothing else running;
   *   3. fio alone: the random-write load (FioLoad) for --seconds, every snapshot deleted
   *      first: the IOPS baseline;
   *   4. fio with snapshots: the same load, and N creations spread evenly over its runtime
   *      (from half a second after fio's ramp to half a second before its end): latency under
   *      load, and the IOPS the load kept while they were taken;
   *   5. fio alone again, every snapshot deleted first, so a drift of the machine over the run
   *      shows (before and after).
   *
   * The load this benchmark defines never flushes (but once at its end), so each
   * snapshot-create, which makes the origin durable before the snapshot takes effect, has to
   * write back whatever the load dirtied since the previous one. --fsync N makes fio flush
   * every N writes (fio --fsync=N, an NBD FLUSH), as a database's commits do, which bounds that.
   *
   * Retention: after each creation, the oldest snapshots beyond KEEP are deleted (untimed for
   * the creation histogram; their own latency is reported). Under load every snapshot turns
   * each block's next write into a first write that copies it, so a snapshot can hold up to the
   * whole volume; the diff area limit is (KEEP + 2) x the volume, so the provider never has to
   * delete one for space. A creation under load that would start after fio has finished is not
   * made (create_under_load.truncated says so).
   */

  /** Creations done first and not recorded. */
  static final int WARMUP = 10;
  /** The most snapshots kept: older ones are deleted after each creation. */
  static final int KEEP = 8;
  /** Pause between two idle creations. */
  static final int IDLE_PAUSE_MS = 10;
  /** What the p99 of creations under load must not exceed. */
  static final double TARGET_P99_MS = 10.0;
  /** The volume's directory name, hence its export name. */
  static final String VOLUME = "vol";

  static final long MIB = 1L << 20;
  /** Highest latency tracked, in microseconds; larger ones are clamped. */
  private static final long HIGHEST_MICROS = TimeUnit.SECONDS.toMicros(120);

  /**
   * What one run measures.
   *
   * @param baseDir where the temporary work directory goes; a real disk, not tmpfs
   * @param volumeBytes size of the volume, a whole number of MiB, at least 16 MiB
   * @param snapshots creations timed in each of the idle and the loaded phase
   * @param seconds how long each fio phase runs (after its ramp)
   * @param fsyncEvery fio flushes after this many writes (its --fsync); 0: only at the end
   */
  public record Settings(Path baseDir, long volumeBytes, int snapshots, int seconds, int fsyncEvery, int blockSize) {
    /** With the volumes' default copy-on-write block (64 KiB). */
    public Settings(Path baseDir, long volumeBytes, int snapshots, int seconds, int fsyncEvery) {
      this(baseDir, volumeBytes, snapshots, seconds, fsyncEvery, 64 << 10);
    }

    public Settings {
      if (volumeBytes < 16 * MIB || volumeBytes % MIB != 0) {
        throw new IllegalArgumentException("volume size must be a whole number of MiB, at least 16 MiB: " + volumeBytes);
      }
      if (snapshots < 1 || snapshots > 100_000) {
        throw new IllegalArgumentException("snapshots must be from 1 to 100000: " + snapshots);
      }
      if (seconds < 2 || seconds > 3600) {
        throw new IllegalArgumentException("seconds must be from 2 to 3600: " + seconds);
      }
      if (fsyncEvery < 0) {
        throw new IllegalArgumentException("writes per flush must not be negative: " + fsyncEvery);
      }
    }

    /** The diff area limit: room for {@link #KEEP} + 2 snapshots that each hold the whole volume. */
    long diffMax() {
      return (KEEP + 2) * volumeBytes;
    }
  }

  private AgentBench() {}

  /**
   * Runs the benchmark in a temporary directory {@code shade-bench-agent-*} under the base
   * directory and deletes it afterwards; {@code progress} gets one line per step.
   */
  public static Map<String, Object> run(Settings s, Consumer<String> progress) throws IOException, InterruptedException {
    return run(s, Programs.Lookup.onPath(), progress);
  }

  static Map<String, Object> run(Settings s, Programs.Lookup tools, Consumer<String> progress)
      throws IOException, InterruptedException {
    long start = System.nanoTime();
    Path fio = tools.find("fio").orElseThrow(() -> new IOException(
        "fio is not installed, and the write load runs with it (Debian: apt-get install fio)"));
    Files.createDirectories(s.baseDir());
    long need = s.volumeBytes() + s.diffMax() + 256 * MIB;
    long available = StatVfs.of(s.baseDir()).availableBytes();
    if (available < need) {
      throw new IOException("not enough free space for the agent benchmark in " + s.baseDir() + ": "
          + available / MIB + " MiB available, " + need / MIB + " MiB needed (the volume and its diff area limit); "
          + "free some space, or set -Dshade.bench.dir or a smaller --size");
    }
    String loadBefore = Machine.loadAverage();
    Path work = Files.createTempDirectory(s.baseDir(), "shade-bench-agent-");
    Cleanup cleanup = new Cleanup(work);
    Thread hook = new Thread(cleanup::runQuietly, "shade-bench-agent-cleanup");
    Runtime.getRuntime().addShutdownHook(hook);
    try {
      Programs.Result engine = Programs.run(work, Duration.ofSeconds(30), List.of(fio.toString(), "--enghelp=nbd"));
      if (!engine.ok()) {
        throw new IOException("this fio has no nbd engine (it needs libnbd): " + engine.failure());
      }
      Path volume = work.resolve(VOLUME);
      progress.accept("writing " + s.volumeBytes() / MIB + " MiB of data into a volume in " + volume);
      fill(volume, s);
      progress.accept("starting the agent on it");
      AgentProcess agent = AgentProcess.start(work, volume);
      cleanup.agent = agent;
      Map<String, Object> out;
      try (ControlClient control = agent.connect()) {
        out = new Measure(s, fio, work, agent, control, volume, progress).all();
      }
      agent.close();
      out.put("agent", String.join(" ", agent.command));
      out.put("fio", FioLoad.describe(s.seconds(), s.fsyncEvery()) + " --uri=" + agent.uri(VOLUME));
      out.put("volume_bytes", s.volumeBytes());
      out.put("diff_max_bytes", s.diffMax());
      out.put("work_dir", work.toString());
      out.put("filesystem", Machine.fileSystem(work));
      out.put("fio_version", Machine.version(tools, work, "fio", "--version"));
      out.put("java", Machine.java());
      out.put("cpus", Runtime.getRuntime().availableProcessors());
      out.put("load_average_before", loadBefore);
      out.put("load_average_after", Machine.loadAverage());
      out.put("elapsed_s", NbdBench.round((System.nanoTime() - start) / 1e9, 1));
      return out;
    } finally {
      cleanup.run();
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // the JVM is shutting down already; the hook finds everything cleaned up
      }
    }
  }

  /** Creates the volume and writes every byte of it once (random data, 1 MiB at a time), then closes it. */
  private static void fill(Path dir, Settings s) throws IOException {
    try (Volume v = Volume.create(dir, VolumeConfig.of(s.volumeBytes()).withDiffMax(s.diffMax()).withBlockSize(s.blockSize()))) {
      ByteBuffer chunk = SequentialPass.randomBuffer((int) MIB, 11);
      for (long offset = 0; offset < s.volumeBytes(); offset += MIB) {
        SequentialPass.stamp(chunk, 0, offset);
        v.write(offset, chunk.duplicate().clear());
      }
      v.flush();
    }
  }

  /** Stops the agent and deletes the work directory; once, from the normal path or the shutdown hook. */
  private static final class Cleanup {
    /** The directory to delete. */
    private final Path work;
    /** The agent to stop first, once started. */
    volatile AgentProcess agent;
    /** True once run. */
    private boolean done;

    Cleanup(Path work) {
      this.work = work;
    }

    synchronized void run() throws IOException {
      if (done) {
        return;
      }
      done = true;
      IOException first = null;
      if (agent != null) {
        try {
          agent.close();
        } catch (IOException e) {
          first = e;
        }
      }
      try {
        dev.shade.cli.Directories.delete(work, false);
      } catch (IOException e) {
        first = first == null ? e : first;
      }
      if (first != null) {
        throw first;
      }
    }

    void runQuietly() {
      try {
        run();
      } catch (IOException | RuntimeException e) {
        System.err.println("bench: cleaning up: " + e.getMessage());
      }
    }
  }

  // ---------------------------------------------------------------- measuring

  /** The phases of one run, on one control connection. */
  private static final class Measure {
    /** What to run. */
    private final Settings s;
    /** The fio program. */
    private final Path fio;
    /** Where fio's files go. */
    private final Path work;
    /** The agent under test. */
    private final AgentProcess agent;
    /** The one control connection. */
    private final ControlClient control;
    /** The volume's directory, as the commands name it. */
    private final String volume;
    /** Gets one line per step. */
    private final Consumer<String> progress;
    /** Names of the live snapshots this run made, oldest first. */
    private final Deque<String> live = new ArrayDeque<>();
    /** Latency of the deletions done while the load ran. */
    private final Histogram deletesUnderLoad = histogram();
    /** Snapshots created so far; numbers their names. */
    private int created;
    /** Snapshots deleted so far. */
    private int deleted;
    /** True while the deletions are timed into {@link #deletesUnderLoad}. */
    private boolean underLoad;

    Measure(Settings s, Path fio, Path work, AgentProcess agent, ControlClient control, Path volume,
        Consumer<String> progress) {
      this.s = s;
      this.fio = fio;
      this.work = work;
      this.agent = agent;
      this.control = control;
      this.volume = volume.toString();
      this.progress = progress;
    }

    Map<String, Object> all() throws IOException, InterruptedException {
      progress.accept("warm-up: " + WARMUP + " snapshots, not counted");
      for (int i = 0; i < WARMUP; i++) {
        create("warmup");
        pause(IDLE_PAUSE_MS);
      }
      progress.accept("idle: " + s.snapshots() + " snapshots, no load");
      Histogram idle = histogram();
      for (int i = 0; i < s.snapshots(); i++) {
        idle.recordValue(create("idle"));
        pause(IDLE_PAUSE_MS);
      }
      progress.accept(String.format(Locale.ROOT, "idle: p50 %.3f ms, p99 %.3f ms, max %.3f ms",
          ms(idle.getValueAtPercentile(50)), ms(idle.getValueAtPercentile(99)), ms(idle.getMaxValue())));

      FioLoad.Result before = fioAlone("before");
      Histogram loaded = histogram();
      progress.accept("fio with " + s.snapshots() + " snapshots spread over " + s.seconds() + " s");
      FioLoad load = FioLoad.start(fio, work, agent.uri(VOLUME), s.volumeBytes(), s.seconds(), s.fsyncEvery(), "with-snapshots");
      long fioStart = System.nanoTime();
      boolean truncated = false;
      underLoad = true;
      double intervalMs;
      try {
        long first = fioStart + TimeUnit.MILLISECONDS.toNanos(FioLoad.RAMP_SECONDS * 1000L + 500);
        long window = TimeUnit.SECONDS.toNanos(s.seconds()) - TimeUnit.MILLISECONDS.toNanos(1000);
        long interval = window / s.snapshots();
        intervalMs = interval / 1e6;
        for (int i = 0; i < s.snapshots(); i++) {
          long wait = first + i * interval - System.nanoTime();
          if (wait > 0) {
            TimeUnit.NANOSECONDS.sleep(wait);
          }
          if (!load.running()) {
            truncated = true;
            progress.accept("fio ended after " + i + " of " + s.snapshots() + " snapshots under load; the rest are not made");
            break;
          }
          loaded.recordValue(create("load"));
        }
      } catch (IOException | RuntimeException | InterruptedException e) {
        load.kill();
        throw e;
      } finally {
        underLoad = false;
      }
      JsonNode info = control.execute("volume-info", Map.of("volume", volume));
      long diffUsed = info.path("diffUsedBytes").asLong(-1);
      FioLoad.Result with = load.await();
      progress.accept(String.format(Locale.ROOT, "fio with snapshots: %.0f IOPS, write p99 %.2f ms; "
              + "snapshots p50 %.3f ms, p99 %.3f ms, max %.3f ms", with.iops(), with.p99Ms(),
          ms(loaded.getValueAtPercentile(50)), ms(loaded.getValueAtPercentile(99)), ms(loaded.getMaxValue())));
      FioLoad.Result after = fioAlone("after");

      Map<String, Object> out = new LinkedHashMap<>();
      double p99 = ms(loaded.getValueAtPercentile(99));
      out.put("create_under_load_ms", summary(loaded));
      out.put("create_idle_ms", summary(idle));
      out.put("target", "snapshot creation p99 under load <= " + TARGET_P99_MS + " ms");
      out.put("target_met", loaded.getTotalCount() > 0 && p99 <= TARGET_P99_MS);
      out.put("create_under_load_truncated", truncated);
      double baseline = (before.iops() + after.iops()) / 2;
      Map<String, Object> iops = new LinkedHashMap<>();
      iops.put("without_snapshots_before", Math.round(before.iops()));
      iops.put("with_snapshots", Math.round(with.iops()));
      iops.put("without_snapshots_after", Math.round(after.iops()));
      iops.put("with_vs_without", NbdBench.round(with.iops() / baseline, 3));
      out.put("fio_write_iops", iops);
      out.put("fio_write_p50_ms", triple(before.p50Ms(), with.p50Ms(), after.p50Ms()));
      out.put("fio_write_p99_ms", triple(before.p99Ms(), with.p99Ms(), after.p99Ms()));
      out.put("fio_write_max_ms", triple(before.maxMs(), with.maxMs(), after.maxMs()));
      out.put("delete_under_load_ms", summary(deletesUnderLoad));
      out.put("snapshots", s.snapshots());
      out.put("block_size", s.blockSize());
      out.put("snapshot_interval_under_load_ms", NbdBench.round(intervalMs, 1));
      out.put("snapshots_kept", KEEP);
      out.put("snapshots_deleted", deleted);
      out.put("warmup_snapshots", WARMUP);
      out.put("diff_used_bytes_at_end_of_load", diffUsed);
      out.put("seconds", s.seconds());
      out.put("fio_fsync_every", s.fsyncEvery());
      return out;
    }

    private FioLoad.Result fioAlone(String label) throws IOException, InterruptedException {
      progress.accept("fio alone (" + label + " the snapshots): " + s.seconds() + " s");
      deleteAll();
      FioLoad load = FioLoad.start(fio, work, agent.uri(VOLUME), s.volumeBytes(), s.seconds(), s.fsyncEvery(), label);
      FioLoad.Result r = load.await();
      progress.accept(String.format(Locale.ROOT, "fio alone (%s): %.0f IOPS, write p99 %.2f ms", label, r.iops(), r.p99Ms()));
      return r;
    }

    /** Deletes every snapshot this run made and still has (untimed). */
    private void deleteAll() throws IOException {
      while (!live.isEmpty()) {
        control.execute("snapshot-delete", Map.of("volume", volume, "snapshot", live.removeFirst()));
        deleted++;
      }
    }

    /** Creates one snapshot, returns its latency in microseconds, then deletes the oldest beyond {@link #KEEP}. */
    private long create(String phase) throws IOException {
      String name = String.format(Locale.ROOT, "bench-%s-%05d", phase, ++created);
      Map<String, Object> args = new LinkedHashMap<>();
      args.put("volumes", List.of(volume));
      args.put("name", name);
      long t0 = System.nanoTime();
      control.execute("snapshot-create", args);
      long micros = Math.min((System.nanoTime() - t0) / 1000, HIGHEST_MICROS);
      live.addLast(name);
      while (live.size() > KEEP) {
        long d0 = System.nanoTime();
        control.execute("snapshot-delete", Map.of("volume", volume, "snapshot", live.removeFirst()));
        if (underLoad) {
          deletesUnderLoad.recordValue(Math.min((System.nanoTime() - d0) / 1000, HIGHEST_MICROS));
        }
        deleted++;
      }
      return micros;
    }
  }

  private static Histogram histogram() {
    return new Histogram(HIGHEST_MICROS, 3);
  }

  private static Map<String, Object> summary(Histogram h) {
    Map<String, Object> m = new LinkedHashMap<>();
    boolean any = h.getTotalCount() > 0;
    m.put("p50", any ? ms(h.getValueAtPercentile(50)) : null);
    m.put("p90", any ? ms(h.getValueAtPercentile(90)) : null);
    m.put("p99", any ? ms(h.getValueAtPercentile(99)) : null);
    m.put("max", any ? ms(h.getMaxValue()) : null);
    m.put("mean", any ? NbdBench.round(h.getMean() / 1000.0, 3) : null);
    m.put("count", h.getTotalCount());
    return m;
  }

  private static Map<String, Object> triple(double before, double with, double after) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("without_snapshots_before", NbdBench.round(before, 3));
    m.put("with_snapshots", NbdBench.round(with, 3));
    m.put("without_snapshots_after", NbdBench.round(after, 3));
    return m;
  }

  static double ms(long micros) {
    return NbdBench.round(micros / 1000.0, 3);
  }

  private static void pause(int millis) throws InterruptedIOException {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("agent benchmark interrupted");
    }
  }

  /** The results as aligned lines: the headline figures, then the settings and the machine. */
  @SuppressWarnings("unchecked")
  public static List<String> table(Map<String, Object> r) {
    List<String> lines = new ArrayList<>();
    lines.add(String.format(Locale.ROOT, "%-26s %9s %9s %9s %9s %6s", "snapshot-create, ms", "p50", "p90", "p99", "max", "count"));
    for (String[] row : new String[][] {{"under load", "create_under_load_ms"}, {"idle", "create_idle_ms"},
        {"delete under load", "delete_under_load_ms"}}) {
      Map<String, Object> m = (Map<String, Object>) r.get(row[1]);
      lines.add(String.format(Locale.ROOT, "%-26s %9s %9s %9s %9s %6s", row[0], m.get("p50"), m.get("p90"), m.get("p99"),
          m.get("max"), m.get("count")));
    }
    lines.add("");
    lines.add(String.format(Locale.ROOT, "%-26s %14s %14s %14s", "fio randwrite 4k", "alone before", "with snapshots",
        "alone after"));
    for (String[] row : new String[][] {{"IOPS", "fio_write_iops"}, {"write p50 ms", "fio_write_p50_ms"},
        {"write p99 ms", "fio_write_p99_ms"}, {"write max ms", "fio_write_max_ms"}}) {
      Map<String, Object> m = (Map<String, Object>) r.get(row[1]);
      lines.add(String.format(Locale.ROOT, "%-26s %14s %14s %14s", row[0], m.get("without_snapshots_before"),
          m.get("with_snapshots"), m.get("without_snapshots_after")));
    }
    lines.add("");
    for (Map.Entry<String, Object> e : r.entrySet()) {
      if (!(e.getValue() instanceof Map)) {
        lines.add(e.getKey() + ": " + e.getValue());
      } else if (e.getKey().equals("fio_write_iops")) {
        lines.add("fio_write_iops.with_vs_without: " + ((Map<String, Object>) e.getValue()).get("with_vs_without"));
      }
    }
    return lines;
  }
}
