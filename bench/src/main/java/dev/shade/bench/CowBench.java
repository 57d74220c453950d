package dev.shade.bench;

import dev.shade.nativeio.FileHandle;
import dev.shade.nativeio.StatVfs;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

/** The copy-on-write benchmark of {@code shade bench cow}: shade's write path against the raw file system, in one run. */
public final class CowBench {
  /* Three targets live side by side in a temporary directory on the real disk: a raw file
   * (FileHandle) and two shade volumes with the default 64 KiB blocks, all pre-filled with the
   * same amount of random non-zero data and made durable. Each round then:
   *
   *   1. rotates the snapshots: takes 1 new snapshot of the first volume and 64 of the second,
   *      then deletes the older ones (see rotateSnapshots), so every block is uncopied again;
   *   2. runs three passes interleaved (see SequentialPass): raw (writeFully + fdatasync),
   *      first write on the 1-snapshot volume and first write on the 64-snapshot volume
   *      (Volume.write + flush; every block's first write copies it to the diff area);
   *   3. runs two passes interleaved: raw again, and a rewrite of the same bytes on the
   *      1-snapshot volume (the blocks are copied already: no copy).
   *
   * Each round gives three ratios of throughputs (MiB/s of a lane's own wall time): first
   * write / raw, rewrite / raw, first write with 64 snapshots / with 1, each between passes
   * that ran interleaved. The headline is the median over rounds; min and max show the spread.
   * The diff area use after each first-write pass shows that a block was copied once, however
   * many snapshots there are.
   *
   * A cold round 0 (steps 1 and 2 only) comes first: its copies go to a diff area that has
   * never held data, which costs more (the volume prepares diff space on first use). It is
   * reported on its own (first_write_cold_vs_raw) and kept out of the medians, which describe
   * the steady state of a volume whose snapshots rotate.
   *
   * Then a separate 64 GiB sparse volume measures snapshot creation latency under a
   * concurrent random writer (SnapshotCreateBench). The throughput rounds share a time budget
   * and the creation test has a cap, so a slow implementation gives truncated (and flagged)
   * figures instead of an endless run. The load average before and after is part of the
   * result: other work on the machine moves these figures more than anything else. */

  /** The targets the headline figures are held to; a ratio passes at or above, a latency at or below. */
  static final Map<String, String> TARGETS = targets();

  /** Share of the time budget of the cold first-write group (copies into an unused diff area are slowest). */
  private static final int COLD_WEIGHT = 4;
  /** Share of the time budget of a first-write group. */
  private static final int FIRST_WEIGHT = 3;
  /** Share of the time budget of a rewrite group. */
  private static final int REWRITE_WEIGHT = 1;

  private CowBench() {}

  /**
   * Runs the benchmark in a temporary directory under {@code /var/tmp} (or the
   * {@code shade.bench.dir} system property) and deletes it afterwards. {@code progress} gets
   * one human-readable line per step. Returns the figures in a stable key order.
   */
  public static Map<String, Object> run(Consumer<String> progress) throws IOException {
    return run(BenchSettings.fromSystemProperties(), progress);
  }

  static Map<String, Object> run(BenchSettings s, Consumer<String> progress) throws IOException {
    long start = System.nanoTime();
    String loadBefore = loadAverage();
    Files.createDirectories(s.baseDir());
    checkSpace(s);
    Path work = Files.createTempDirectory(s.baseDir(), "shade-bench-cow-");
    try {
      Map<String, Object> out = measure(s, work, progress);
      out.put("load_average_before", loadBefore);
      out.put("load_average_after", loadAverage());
      out.put("elapsed_s", SnapshotCreateBench.round((System.nanoTime() - start) / 1e9, 1));
      return out;
    } finally {
      dev.shade.cli.Directories.delete(work, false);
    }
  }

  private static Map<String, Object> measure(BenchSettings s, Path work, Consumer<String> progress)
      throws IOException {
    long region = s.regionBytes();
    long mib = region / BenchSettings.MIB;
    int many = s.manySnapshots();
    ByteBuffer buf = SequentialPass.newBuffer(1);
    long pass = 0;

    List<PassResult> raw = new ArrayList<>();
    List<PassResult> first = new ArrayList<>();
    List<PassResult> firstMany = new ArrayList<>();
    List<PassResult> rawRewrite = new ArrayList<>();
    List<PassResult> rewrite = new ArrayList<>();
    List<Long> diffFirst = new ArrayList<>();
    List<Long> diffRewrite = new ArrayList<>();
    List<Long> diffMany = new ArrayList<>();
    PassResult coldRaw = null;
    PassResult coldFirst = null;
    PassResult coldMany = null;
    int blockSize;

    Path rawFile = work.resolve("raw.img");
    VolumeConfig config = new VolumeConfig(region, VolumeConfig.DEFAULT_BLOCK_SIZE, 2 * region, null, null);
    try (FileHandle file = FileHandle.create(rawFile);
        Volume one = Volume.create(work.resolve("volume-1"), config);
        Volume manyVolume = Volume.create(work.resolve("volume-" + many), config)) {
      blockSize = one.blockSize();
      Sink rawSink = fileSink(file);
      Sink oneSink = volumeSink(one);
      Sink manySink = volumeSink(manyVolume);

      progress.accept("pre-filling a raw file and two volumes with " + mib + " MiB each under " + work);
      SequentialPass.run(rawSink, region, pass++, buf);
      SequentialPass.run(oneSink, region, pass++, buf);
      SequentialPass.run(manySink, region, pass++, buf);

      long deadline = System.nanoTime() + s.throughputCapNanos();
      // weights: a first-write group runs three lanes, two of them slow; a rewrite group two fast ones
      int weightLeft = COLD_WEIGHT + s.rounds() * (FIRST_WEIGHT + REWRITE_WEIGHT);
      for (int round = 0; round <= s.rounds(); round++) {
        boolean cold = round == 0;
        String tag = cold ? "cold diff area: " : "round " + round + "/" + s.rounds() + ": ";
        rotateSnapshots(one, 1);
        rotateSnapshots(manyVolume, many);

        Lane rawLane = new Lane(rawSink, region, pass++);
        Lane firstLane = new Lane(oneSink, region, pass++);
        Lane manyLane = new Lane(manySink, region, pass++);
        int weight = cold ? COLD_WEIGHT : FIRST_WEIGHT;
        SequentialPass.interleave(List.of(rawLane, firstLane, manyLane), buf,
            groupCap(deadline, weight, weightLeft));
        weightLeft -= weight;
        progress.accept(tag + "raw " + mibs(rawLane.result()) + ", shade first write "
            + mibs(firstLane.result()) + " (1 snapshot), " + mibs(manyLane.result()) + " ("
            + many + " snapshots)");
        if (cold) {
          coldRaw = rawLane.result();
          coldFirst = firstLane.result();
          coldMany = manyLane.result();
          continue;
        }
        raw.add(rawLane.result());
        first.add(firstLane.result());
        firstMany.add(manyLane.result());
        diffFirst.add(one.diffUsedBytes());
        diffMany.add(manyVolume.diffUsedBytes());

        long covered = firstLane.result().bytes();
        Lane rawAgain = new Lane(rawSink, covered, pass++);
        Lane rewriteLane = new Lane(oneSink, covered, pass++);
        SequentialPass.interleave(List.of(rewriteLane, rawAgain), buf,
            groupCap(deadline, REWRITE_WEIGHT, weightLeft));
        weightLeft -= REWRITE_WEIGHT;
        rawRewrite.add(rawAgain.result());
        rewrite.add(rewriteLane.result());
        diffRewrite.add(one.diffUsedBytes());
        progress.accept(tag + "raw " + mibs(rawAgain.result()) + ", shade rewrite "
            + mibs(rewriteLane.result()));
      }
    }
    Files.deleteIfExists(rawFile);

    progress.accept("snapshot create latency: " + s.createVolumeBytes() / BenchSettings.GIB
        + " GiB sparse volume, " + s.createCount() + " snapshots under a random writer");
    Map<String, Object> create = SnapshotCreateBench.run(work.resolve("create"), s, progress);

    String manyKey = "snapshots" + many + "_vs_1";
    double[] firstVsRaw = ratios(first, raw);
    double[] rewriteVsRaw = ratios(rewrite, rawRewrite);
    double[] manyVsOne = ratios(firstMany, first);
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("first_write_vs_raw", median(firstVsRaw));
    out.put("rewrite_vs_raw", median(rewriteVsRaw));
    out.put(manyKey, median(manyVsOne));
    out.put("create_p99_ms", create.get("create_p99_ms"));
    out.put("targets", TARGETS);
    Map<String, Boolean> met = new LinkedHashMap<>();
    met.put("first_write_vs_raw", median(firstVsRaw) >= 0.4);
    met.put("rewrite_vs_raw", median(rewriteVsRaw) >= 0.9);
    met.put(manyKey, median(manyVsOne) >= 0.9);
    met.put("create_p99_ms", (Double) create.get("create_p99_ms") <= 10.0);
    out.put("targets_met", met);

    putSpread(out, "first_write_vs_raw", firstVsRaw);
    putSpread(out, "rewrite_vs_raw", rewriteVsRaw);
    putSpread(out, manyKey, manyVsOne);
    out.put("first_write_cold_vs_raw", SnapshotCreateBench.round(coldFirst.mibPerSecond() / coldRaw.mibPerSecond(), 3));
    out.put(manyKey + "_cold", SnapshotCreateBench.round(coldMany.mibPerSecond() / coldFirst.mibPerSecond(), 3));

    out.put("raw_mib_s", throughputs(raw));
    out.put("shade_first_write_mib_s", throughputs(first));
    out.put("shade_first_write_" + many + "_snapshots_mib_s", throughputs(firstMany));
    out.put("raw_beside_rewrite_mib_s", throughputs(rawRewrite));
    out.put("shade_rewrite_mib_s", throughputs(rewrite));
    Map<String, Object> phases = new LinkedHashMap<>();
    phases.put("raw", phases(raw));
    phases.put("shade_first_write", phases(first));
    phases.put("shade_first_write_" + many + "_snapshots", phases(firstMany));
    phases.put("raw_beside_rewrite", phases(rawRewrite));
    phases.put("shade_rewrite", phases(rewrite));
    phases.put("cold_raw", phases(List.of(coldRaw)));
    phases.put("cold_shade_first_write", phases(List.of(coldFirst)));
    phases.put("cold_shade_first_write_" + many + "_snapshots", phases(List.of(coldMany)));
    out.put("phase_ms", phases);
    out.put("diff_used_mib_after_first_write", toMib(diffFirst));
    out.put("diff_used_mib_after_first_write_" + many + "_snapshots", toMib(diffMany));
    out.put("diff_used_mib_after_rewrite", toMib(diffRewrite));
    out.put("truncated_passes", Stream.of(raw, first, firstMany, rawRewrite, rewrite,
            List.of(coldRaw, coldFirst, coldMany))
        .flatMap(List::stream).filter(PassResult::truncated).count());

    out.putAll(create);

    out.put("data_mib", mib);
    out.put("write_size_bytes", SequentialPass.WRITE_SIZE);
    out.put("slice_mib", SequentialPass.SLICE / BenchSettings.MIB);
    out.put("block_size", blockSize);
    out.put("rounds", s.rounds());
    out.put("snapshots_many", many);
    out.put("kernel", System.getProperty("os.name") + " " + System.getProperty("os.version"));
    out.put("filesystem", Files.getFileStore(s.baseDir()).type());
    out.put("filesystem_device", Files.getFileStore(s.baseDir()).name());
    out.put("temp_dir", s.baseDir().toString());
    out.put("cpus", Runtime.getRuntime().availableProcessors());
    out.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version"));
    return out;
  }

  /** The time a group of lanes may take: its weight's share of what is left of the budget. */
  private static long groupCap(long deadline, int weight, int weightLeft) {
    return Math.max(0, (deadline - System.nanoTime()) / Math.max(1, weightLeft) * weight);
  }

  private static Sink fileSink(FileHandle file) {
    return new Sink() {
      @Override public void write(long offset, ByteBuffer src) throws IOException {
        file.writeFully(offset, src);
      }

      @Override public void sync() throws IOException {
        file.fdatasync();
      }
    };
  }

  private static Sink volumeSink(Volume volume) {
    return new Sink() {
      @Override public void write(long offset, ByteBuffer src) throws IOException {
        volume.write(offset, src);
      }

      @Override public void sync() throws IOException {
        volume.flush();
      }
    };
  }

  /**
   * Takes {@code count} new snapshots, then deletes the older ones, oldest first. The blocks
   * copied for the old snapshots have no older snapshot left to move to, so their diff slots
   * are freed; the volume always keeps a snapshot, so the diff area keeps its formatted space
   * and the next first writes reuse it, as under a rotating schedule.
   */
  private static void rotateSnapshots(Volume volume, int count) throws IOException {
    List<SnapshotInfo> old = volume.snapshots();
    for (int i = 0; i < count; i++) {
      volume.createSnapshot(null);
    }
    for (SnapshotInfo info : old) {
      volume.deleteSnapshot(info.name());
    }
  }

  /** The 1, 5 and 15 minute load averages from {@code /proc/loadavg}, or "unknown". */
  private static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException | RuntimeException e) {
      return "unknown";
    }
  }

  private static void checkSpace(BenchSettings s) throws IOException {
    // raw file + two origins + two diff areas + room for the sparse volume's writes
    long need = 5 * s.regionBytes() + 2 * BenchSettings.GIB;
    long available = StatVfs.of(s.baseDir()).availableBytes();
    if (available < need) {
      throw new IOException("not enough free space for the benchmark in " + s.baseDir() + ": "
          + available / BenchSettings.MIB + " MiB available, " + need / BenchSettings.MIB
          + " MiB needed; free some space or set -Dshade.bench.dir or a smaller -Dshade.bench.mib");
    }
  }

  private static double[] ratios(List<PassResult> top, List<PassResult> bottom) {
    double[] r = new double[Math.min(top.size(), bottom.size())];
    for (int i = 0; i < r.length; i++) {
      r[i] = SnapshotCreateBench.round(top.get(i).mibPerSecond() / bottom.get(i).mibPerSecond(), 3);
    }
    return r;
  }

  static double median(double[] values) {
    if (values.length == 0) {
      return Double.NaN;
    }
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    int mid = sorted.length / 2;
    double m = sorted.length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    return SnapshotCreateBench.round(m, 3);
  }

  private static void putSpread(Map<String, Object> out, String key, double[] values) {
    out.put(key + "_min", Arrays.stream(values).min().orElse(Double.NaN));
    out.put(key + "_max", Arrays.stream(values).max().orElse(Double.NaN));
    out.put(key + "_per_round", Arrays.stream(values).boxed().toList());
  }

  private static List<Double> throughputs(List<PassResult> passes) {
    return passes.stream().map(p -> SnapshotCreateBench.round(p.mibPerSecond(), 1)).toList();
  }

  /** Time summed over all rounds of a pass kind, split into write calls and syncs. */
  private static Map<String, Object> phases(List<PassResult> passes) {
    long total = 0;
    long write = 0;
    long sync = 0;
    long bytes = 0;
    for (PassResult p : passes) {
      total += p.nanos();
      write += p.writeNanos();
      sync += p.syncNanos();
      bytes += p.bytes();
    }
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("total", total / 1_000_000);
    m.put("write", write / 1_000_000);
    m.put("sync", sync / 1_000_000);
    m.put("mib", bytes / BenchSettings.MIB);
    return m;
  }

  private static List<Double> toMib(List<Long> bytes) {
    return bytes.stream().map(b -> SnapshotCreateBench.round(b / (double) BenchSettings.MIB, 1)).toList();
  }

  private static String mibs(PassResult p) {
    return String.format("%.1f", p.mibPerSecond()) + (p.truncated() ? " (time cap hit)" : "");
  }

  private static Map<String, String> targets() {
    Map<String, String> t = new LinkedHashMap<>();
    t.put("first_write_vs_raw", ">= 0.4");
    t.put("rewrite_vs_raw", ">= 0.9");
    t.put("snapshots64_vs_1", ">= 0.9");
    t.put("create_p99_ms", "<= 10");
    return java.util.Collections.unmodifiableMap(t);
  }
}
