package dev.shade.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.nativeio.StatVfs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;

/** The NBD benchmark of {@code shade bench nbd}: fio against shade's NBD server, nbdkit and qemu-nbd, in one run. */
public final class NbdBench {
  /*
   * NbdTestbed prepares the targets (same export size, same data, same file system) and starts
   * their servers. fio's nbd engine (libnbd, one connection, iodepth 16) then runs four jobs
   * for a fixed time each: seqwrite (1 MiB), randwrite (4 KiB), randread (4 KiB), seqread
   * (1 MiB). Write jobs end with a flush (end_fsync=1) that counts in their time, so no target
   * leaves dirty pages behind for the next one and every target pays for durability.
   *
   * Interleaving: each round runs job after job, and for each job every target in turn, the
   * order rotating from round to round and job to job. The machine is shared and a virtual
   * disk's speed drifts within seconds, so targets compared in one job ran minutes apart at
   * most, never one whole benchmark apart. A short warm-up per target (random reads, plus
   * random writes where writable) comes first and is not reported: it starts each server's
   * worker threads, and shade's JIT compilation, before anything is timed.
   *
   * Reported per job and target: median, min and max over rounds of MiB/s and IOPS (fio's
   * bw_bytes and iops). Ratios pair the two targets' figures of the same round and report
   * the median of those per-round ratios. The first round's write jobs copy (shade) or
   * allocate (qcow2) blocks that later rounds only overwrite; min and max show the spread.
   */

  static final long MIB = 1L << 20;
  static final long GIB = 1L << 30;
  /** Requests in flight per fio job, for every job and target. */
  static final int IODEPTH = 16;
  private static final ObjectMapper JSON = new ObjectMapper();

  /** A fio job, in the order each round runs them. */
  enum Job {
    SEQWRITE("write", "1m", true),
    RANDWRITE("randwrite", "4k", true),
    RANDREAD("randread", "4k", false),
    SEQREAD("read", "1m", false);

    /** fio's --rw. */
    final String rw;
    /** fio's --bs. */
    final String bs;
    /** True for jobs that write (and end with a flush). */
    final boolean writes;

    Job(String rw, String bs, boolean writes) {
      this.rw = rw;
      this.bs = bs;
      this.writes = writes;
    }

    String key() {
      return name().toLowerCase(Locale.ROOT);
    }

    String describe() {
      return "fio --rw=" + rw + " --bs=" + bs + " --iodepth=" + IODEPTH + (writes ? " --end_fsync=1" : "");
    }
  }

  /**
   * What one run measures.
   *
   * @param baseDir where the temporary work directory goes; a real disk, not tmpfs
   * @param exportBytes size of every export, a whole number of MiB, at least 16 MiB
   * @param seconds how long each fio job runs
   * @param rounds how many times every job runs on every target
   * @param targets names of the targets to measure (see {@link NbdTestbed#ALL})
   * @param qemuAio qemu-nbd's --aio (io_uring, threads or native); threads is used if it is refused
   */
  public record Settings(Path baseDir, long exportBytes, int seconds, int rounds, Set<String> targets, String qemuAio) {
    public Settings {
      if (!Set.of("io_uring", "threads", "native").contains(qemuAio)) {
        throw new IllegalArgumentException("qemu-nbd --aio must be io_uring, threads or native: " + qemuAio);
      }
      if (exportBytes < 16 * MIB || exportBytes % MIB != 0) {
        throw new IllegalArgumentException("export size must be a whole number of MiB, at least 16 MiB: " + exportBytes);
      }
      if (seconds < 1) {
        throw new IllegalArgumentException("seconds per job must be at least 1: " + seconds);
      }
      if (rounds < 1) {
        throw new IllegalArgumentException("rounds must be at least 1: " + rounds);
      }
      for (String t : targets) {
        if (!NbdTestbed.ALL.contains(t)) {
          throw new IllegalArgumentException("unknown target '" + t + "': choose from " + String.join(", ", NbdTestbed.ALL));
        }
      }
      targets = Set.copyOf(targets);
    }

    /**
     * {@code seconds} per job and {@code rounds}, with the system properties
     * {@code shade.bench.dir} (default /var/tmp), {@code shade.bench.nbd.mib} (export size,
     * default 1024), {@code shade.bench.nbd.targets} (comma-separated, default all) and
     * {@code shade.bench.nbd.qemu.aio} (default io_uring).
     */
    public static Settings of(int seconds, int rounds) {
      String only = System.getProperty("shade.bench.nbd.targets", "");
      Set<String> targets = only.isBlank() ? new LinkedHashSet<>(NbdTestbed.ALL)
          : new LinkedHashSet<>(Arrays.asList(only.strip().split("\\s*,\\s*")));
      return new Settings(Path.of(System.getProperty("shade.bench.dir", "/var/tmp")),
          Long.getLong("shade.bench.nbd.mib", 1024) * MIB, seconds, rounds, targets,
          System.getProperty("shade.bench.nbd.qemu.aio", "io_uring"));
    }
  }

  /** One measured fio run. */
  record Sample(int round, double mibs, double iops) {}

  private NbdBench() {}

  /**
   * Runs the benchmark in a temporary directory and deletes it afterwards; {@code progress}
   * gets one human-readable line per step. Returns {@code {"jobs": {...}, "environment": {...}}}.
   */
  public static Map<String, Object> run(Settings s, Consumer<String> progress) throws IOException, InterruptedException {
    return run(s, Programs.Lookup.onPath(), progress);
  }

  static Map<String, Object> run(Settings s, Programs.Lookup tools, Consumer<String> progress)
      throws IOException, InterruptedException {
    long start = System.nanoTime();
    Path fio = tools.find("fio").orElseThrow(() -> new IOException(
        "fio is not installed, and every target is measured with it (Debian: apt-get install fio)"));
    Files.createDirectories(s.baseDir());
    Path work = Files.createTempDirectory(s.baseDir(), "shade-bench-nbd-");
    NbdTestbed bed = new NbdTestbed(work, s.exportBytes(), s.targets(), s.qemuAio(), tools, progress);
    // Ctrl-C: stop the servers and remove the images rather than leave gigabytes behind
    Thread cleanup = new Thread(() -> closeQuietly(bed), "shade-bench-nbd-cleanup");
    Runtime.getRuntime().addShutdownHook(cleanup);
    try {
      Programs.Result engine = Programs.run(work, Duration.ofSeconds(30), List.of(fio.toString(), "--enghelp=nbd"));
      if (!engine.ok()) {
        throw new IOException("this fio has no nbd engine (it needs libnbd): " + engine.failure());
      }
      checkSpace(s);
      String loadBefore = loadAverage();
      bed.setUp();
      Map<NbdTarget, Map<Job, List<Sample>>> samples = new LinkedHashMap<>();
      Map<NbdTarget, List<String>> errors = new LinkedHashMap<>();
      Measure m = new Measure(s, fio, work, progress, samples, errors);
      m.warmUp(bed.targets);
      m.rounds(bed.targets);
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("jobs", jobs(bed.targets, samples, errors));
      Map<String, Object> env = environment(s, tools, work, bed);
      env.put("load_average_before", loadBefore);
      env.put("load_average_after", loadAverage());
      env.put("elapsed_s", round((System.nanoTime() - start) / 1e9, 1));
      out.put("environment", env);
      return out;
    } finally {
      bed.close();
      try {
        Runtime.getRuntime().removeShutdownHook(cleanup);
      } catch (IllegalStateException e) {
        // the JVM is shutting down already; the hook finds everything closed
      }
    }
  }

  private static void closeQuietly(NbdTestbed bed) {
    try {
      bed.close();
    } catch (IOException | RuntimeException e) {
      System.err.println("bench: cleaning up: " + e.getMessage());
    }
  }

  private static void checkSpace(Settings s) throws IOException {
    // two plain files, a qcow2 chain and its growth, two shade origins and a diff area of up to 1.6 x
    long need = 9 * s.exportBytes() + GIB;
    long available = StatVfs.of(s.baseDir()).availableBytes();
    if (available < need) {
      throw new IOException("not enough free space for the benchmark in " + s.baseDir() + ": "
          + available / MIB + " MiB available, " + need / MIB
          + " MiB needed; free some space or set -Dshade.bench.dir or a smaller -Dshade.bench.nbd.mib");
    }
  }

  // ---------------------------------------------------------------- measuring

  /** Runs the fio jobs and collects their figures. */
  private static final class Measure {
    /** What to run: sizes, seconds and rounds. */
    private final Settings s;
    /** The fio program. */
    private final Path fio;
    /** Where fio's JSON output goes. */
    private final Path work;
    /** Gets one line per run. */
    private final Consumer<String> progress;
    /** Figures by target and job, in round order. */
    private final Map<NbdTarget, Map<Job, List<Sample>>> samples;
    /** Failed runs by target, as one line each. */
    private final Map<NbdTarget, List<String>> errors;

    Measure(Settings s, Path fio, Path work, Consumer<String> progress,
        Map<NbdTarget, Map<Job, List<Sample>>> samples, Map<NbdTarget, List<String>> errors) {
      this.s = s;
      this.fio = fio;
      this.work = work;
      this.progress = progress;
      this.samples = samples;
      this.errors = errors;
    }

    /** A short untimed run per target; a target that fails it is skipped. */
    void warmUp(List<NbdTarget> targets) throws IOException, InterruptedException {
      int seconds = Math.min(2, s.seconds());
      for (NbdTarget t : targets) {
        if (!t.measured()) {
          continue;
        }
        progress.accept("warming up " + t.name + " (" + seconds + " s)");
        try {
          fio(t, t.readOnly ? "randread" : "randrw", "4k", false, seconds, "warmup");
        } catch (FioException e) {
          t.skip("warm-up failed: " + e.getMessage());
          progress.accept(t.name + " skipped: " + t.skipped);
        }
      }
    }

    void rounds(List<NbdTarget> targets) throws IOException, InterruptedException {
      List<NbdTarget> live = targets.stream().filter(NbdTarget::measured).toList();
      int runs = 0;
      for (Job job : Job.values()) {
        runs += (int) live.stream().filter(t -> !job.writes || !t.readOnly).count();
      }
      progress.accept(String.format(Locale.ROOT, "measuring %d targets, %d round%s of %d fio runs of %d s (about %d min)",
          live.size(), s.rounds(), s.rounds() == 1 ? "" : "s", runs, s.seconds(),
          Math.max(1, Math.round(s.rounds() * runs * (s.seconds() + 1.5) / 60))));
      for (int round = 1; round <= s.rounds(); round++) {
        for (Job job : Job.values()) {
          List<NbdTarget> order = live.stream().filter(t -> t.measured() && (!job.writes || !t.readOnly)).toList();
          int n = order.size();
          for (int i = 0; i < n; i++) {
            NbdTarget t = order.get((i + round - 1 + job.ordinal()) % n);
            run(t, job, round);
          }
        }
      }
    }

    private void run(NbdTarget t, Job job, int round) throws IOException, InterruptedException {
      try {
        Sample x = fio(t, job.rw, job.bs, job.writes, s.seconds(), job.key() + "-" + round);
        x = new Sample(round, x.mibs(), x.iops());
        samples.computeIfAbsent(t, k -> new LinkedHashMap<>()).computeIfAbsent(job, k -> new ArrayList<>()).add(x);
        progress.accept(String.format(Locale.ROOT, "round %d/%d %-9s %-22s %9.1f MiB/s %9.0f IOPS",
            round, s.rounds(), job.key(), t.name, x.mibs(), x.iops()));
      } catch (FioException e) {
        errors.computeIfAbsent(t, k -> new ArrayList<>()).add(job.key() + " round " + round + ": " + e.getMessage());
        progress.accept("round " + round + " " + job.key() + " " + t.name + " failed: " + e.getMessage());
      }
    }

    /** Runs one fio job against {@code t} and returns its figures (round 0). */
    private Sample fio(NbdTarget t, String rw, String bs, boolean writes, int seconds, String label)
        throws IOException, InterruptedException, FioException {
      Path out = work.resolve("fio-" + t.name + "-" + label + ".json");
      List<String> cmd = new ArrayList<>(List.of(fio.toString(), "--name=" + label, "--ioengine=nbd",
          "--uri=" + t.uri, "--rw=" + rw, "--bs=" + bs, "--iodepth=" + IODEPTH, "--numjobs=1",
          "--size=" + s.exportBytes(), "--time_based", "--runtime=" + seconds + "s",
          "--output-format=json", "--output=" + out));
      if (writes) {
        cmd.add("--end_fsync=1");
      }
      Programs.Result r = Programs.run(work, Duration.ofSeconds(seconds + 120L), cmd);
      try {
        if (!r.ok()) {
          throw new FioException(r.failure());
        }
        JsonNode job = JSON.readTree(out.toFile()).path("jobs").path(0);
        if (job.path("error").asInt(0) != 0) {
          throw new FioException("fio reported error " + job.path("error").asInt() + ": " + r.failure());
        }
        double bytesPerSecond = 0;
        double iops = 0;
        for (String side : List.of("read", "write")) {
          bytesPerSecond += job.path(side).path("bw_bytes").asDouble(0);
          iops += job.path(side).path("iops").asDouble(0);
        }
        if (bytesPerSecond <= 0) {
          throw new FioException("fio moved no data: " + r.failure());
        }
        return new Sample(0, bytesPerSecond / MIB, iops);
      } catch (IOException e) {
        throw new FioException("unreadable fio output " + out + ": " + e.getMessage());
      } finally {
        Files.deleteIfExists(out);
      }
    }
  }

  /** A fio run that failed; its message is one line naming the command and what it printed. */
  private static final class FioException extends Exception {
    private static final long serialVersionUID = 1L;

    FioException(String message) {
      super(message);
    }
  }

  // ---------------------------------------------------------------- results

  private static Map<String, Object> jobs(List<NbdTarget> targets, Map<NbdTarget, Map<Job, List<Sample>>> samples,
      Map<NbdTarget, List<String>> errors) {
    Map<String, Object> jobs = new LinkedHashMap<>();
    for (Job job : Job.values()) {
      Map<String, List<Sample>> byName = new LinkedHashMap<>();
      for (NbdTarget t : targets) {
        byName.put(t.name, samples.getOrDefault(t, Map.of()).getOrDefault(job, List.of()));
      }
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("fio", job.describe());
      List<Sample> shade = byName.getOrDefault(NbdTestbed.SHADE_ORIGIN, List.of());
      m.put("shade_mibs", median(shade, Sample::mibs, 1));
      m.put("shade_iops", median(shade, Sample::iops, 0));
      m.put("vs_qemu_nbd_raw", ratio(byName, NbdTestbed.SHADE_ORIGIN, NbdTestbed.QEMU_NBD_RAW));
      m.put("vs_nbdkit_file", ratio(byName, NbdTestbed.SHADE_ORIGIN, NbdTestbed.NBDKIT_FILE));
      m.put("snap8_vs_qcow2_chain8", ratio(byName, NbdTestbed.SHADE_ORIGIN_SNAP8, NbdTestbed.QEMU_NBD_QCOW2));
      m.put("snap8_vs_origin", ratio(byName, NbdTestbed.SHADE_ORIGIN_SNAP8, NbdTestbed.SHADE_ORIGIN));
      if (!job.writes) {
        m.put("snapshot_vs_qcow2_chain8", ratio(byName, NbdTestbed.SHADE_SNAPSHOT, NbdTestbed.QEMU_NBD_QCOW2));
      }
      Map<String, Object> raw = new LinkedHashMap<>();
      for (NbdTarget t : targets) {
        Map<String, Object> r = new LinkedHashMap<>();
        List<Sample> xs = byName.get(t.name);
        if (!t.measured() && xs.isEmpty()) {
          r.put("skipped", t.skipped);
        } else if (job.writes && t.readOnly) {
          r.put("skipped", "read-only export: read jobs only");
        } else {
          r.put("mibs", spread(xs, Sample::mibs, 1));
          r.put("iops", spread(xs, Sample::iops, 0));
          r.put("runs", xs.stream().map(x -> {
            Map<String, Object> run = new LinkedHashMap<>();
            run.put("round", x.round());
            run.put("mibs", round(x.mibs(), 1));
            run.put("iops", round(x.iops(), 0));
            return run;
          }).toList());
          List<String> failed = errors.getOrDefault(t, List.of()).stream()
              .filter(e -> e.startsWith(job.key() + " ")).toList();
          if (!failed.isEmpty()) {
            r.put("errors", failed);
          }
          if (!t.measured()) {
            r.put("skipped", t.skipped);
          }
        }
        raw.put(t.name, r);
      }
      m.put("targets", raw);
      jobs.put(job.key(), m);
    }
    return jobs;
  }

  private static Map<String, Object> environment(Settings s, Programs.Lookup tools, Path work, NbdTestbed bed) {
    Map<String, Object> env = new LinkedHashMap<>();
    env.put("export_bytes", s.exportBytes());
    env.put("seconds_per_job", s.seconds());
    env.put("rounds", s.rounds());
    env.put("iodepth", IODEPTH);
    env.put("order", "round-robin: each round runs every job, and each job every target, the order rotating");
    env.put("ratios", "median over rounds of the per-round ratio of MiB/s");
    env.put("cache", "every target goes through the host page cache and flushes with fdatasync: "
        + "qemu-nbd " + bed.qemuOptions() + ", nbdkit file plugin defaults (cache=default), shade pwrite "
        + "and mmap reads; write jobs end with a flush (fio --end_fsync=1), counted in their time; no cache is dropped");
    env.put("shade_server", "in-process NbdServer on a Unix socket (in the benchmark's JVM)");
    env.put("history", "between snapshots (shade) and before each of the " + NbdTestbed.LAYERS
        + " upper qcow2 layers: 1 MiB at every 16th MiB, a different sixteenth each time");
    env.put("fio", version(tools, work, "fio", "--version"));
    env.put("qemu_nbd", version(tools, work, "qemu-nbd", "--version"));
    env.put("nbdkit", version(tools, work, "nbdkit", "--version"));
    env.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
    env.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version"));
    env.put("cpus", Runtime.getRuntime().availableProcessors());
    env.put("work_dir", work.toString());
    env.put("filesystem", fileSystem(work));
    Map<String, Object> ts = new LinkedHashMap<>();
    for (NbdTarget t : bed.targets) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("what", t.description);
      m.put("server", String.join(" ", t.server));
      m.put("cache", t.cache);
      m.put("skipped", t.skipped);
      ts.put(t.name, m);
    }
    env.put("targets", ts);
    return env;
  }

  private static String version(Programs.Lookup tools, Path work, String program, String flag) {
    Optional<Path> p = tools.find(program);
    if (p.isEmpty()) {
      return "not installed";
    }
    try {
      Programs.Result r = Programs.run(work, Duration.ofSeconds(10), List.of(p.get().toString(), flag));
      return r.stdout().lines().findFirst().orElse("unknown").strip();
    } catch (IOException e) {
      return "unknown: " + e.getMessage();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "unknown";
    }
  }

  private static String fileSystem(Path work) {
    try {
      return Files.getFileStore(work).type();
    } catch (IOException e) {
      return "unknown";
    }
  }

  private static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException | RuntimeException e) {
      return "unknown";
    }
  }

  // ---------------------------------------------------------------- statistics

  /** The median over rounds of {@code top}'s figure divided by {@code bottom}'s of the same round, or null. */
  private static Double ratio(Map<String, List<Sample>> byName, String top, String bottom) {
    List<Sample> a = byName.getOrDefault(top, List.of());
    List<Sample> b = byName.getOrDefault(bottom, List.of());
    List<Double> ratios = new ArrayList<>();
    for (Sample x : a) {
      for (Sample y : b) {
        if (x.round() == y.round() && y.mibs() > 0) {
          ratios.add(x.mibs() / y.mibs());
        }
      }
    }
    return ratios.isEmpty() ? null : round(median(ratios), 3);
  }

  private static Double median(List<Sample> xs, java.util.function.ToDoubleFunction<Sample> f, int digits) {
    return xs.isEmpty() ? null : round(median(xs.stream().map(f::applyAsDouble).toList()), digits);
  }

  private static Map<String, Object> spread(List<Sample> xs, java.util.function.ToDoubleFunction<Sample> f, int digits) {
    Map<String, Object> m = new LinkedHashMap<>();
    List<Double> v = xs.stream().map(f::applyAsDouble).sorted().toList();
    m.put("median", v.isEmpty() ? null : round(median(v), digits));
    m.put("min", v.isEmpty() ? null : round(v.get(0), digits));
    m.put("max", v.isEmpty() ? null : round(v.get(v.size() - 1), digits));
    return m;
  }

  static double median(Collection<Double> values) {
    double[] v = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    int n = v.length;
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }

  static double round(double value, int digits) {
    double scale = Math.pow(10, digits);
    return Math.round(value * scale) / scale;
  }

  // ---------------------------------------------------------------- table

  /** The results as an aligned table with the ratios and the environment, one string per line. */
  @SuppressWarnings("unchecked")
  public static List<String> table(Map<String, Object> results) {
    Map<String, Object> jobs = (Map<String, Object>) results.get("jobs");
    Map<String, Object> env = (Map<String, Object>) results.get("environment");
    List<String> lines = new ArrayList<>();
    lines.add(String.format(Locale.ROOT, "NBD servers under fio --ioengine=nbd: %d MiB exports, iodepth %d, %s s per job, "
            + "%s round(s) interleaved; medians over rounds (min-max)",
        ((Number) env.get("export_bytes")).longValue() / MIB, IODEPTH, env.get("seconds_per_job"), env.get("rounds")));
    lines.add("");
    lines.add(String.format(Locale.ROOT, "%-10s %-22s %8s %-17s %8s %s", "job", "target", "MiB/s", "(min-max)", "IOPS", "(min-max)"));
    for (Map.Entry<String, Object> j : jobs.entrySet()) {
      Map<String, Object> job = (Map<String, Object>) j.getValue();
      Map<String, Object> targets = (Map<String, Object>) job.get("targets");
      for (Map.Entry<String, Object> t : targets.entrySet()) {
        Map<String, Object> r = (Map<String, Object>) t.getValue();
        Map<String, Object> mibs = (Map<String, Object>) r.get("mibs");
        if (mibs == null || mibs.get("median") == null) {
          String why = r.get("skipped") != null ? "skipped: " + r.get("skipped") : "failed: " + r.get("errors");
          lines.add(String.format(Locale.ROOT, "%-10s %-22s %s", j.getKey(), t.getKey(), why));
          continue;
        }
        Map<String, Object> iops = (Map<String, Object>) r.get("iops");
        lines.add(String.format(Locale.ROOT, "%-10s %-22s %8.1f %-17s %8.0f %s", j.getKey(), t.getKey(),
            num(mibs.get("median")), "(" + fmt(mibs.get("min"), 1) + "-" + fmt(mibs.get("max"), 1) + ")",
            num(iops.get("median")), "(" + fmt(iops.get("min"), 0) + "-" + fmt(iops.get("max"), 0) + ")"));
      }
      List<String> ratios = new ArrayList<>();
      for (String key : List.of("vs_qemu_nbd_raw", "vs_nbdkit_file", "snap8_vs_qcow2_chain8", "snap8_vs_origin",
          "snapshot_vs_qcow2_chain8")) {
        if (job.containsKey(key)) {
          Object v = job.get(key);
          ratios.add(key + " " + (v == null ? "n/a" : fmt(v, 3)));
        }
      }
      lines.add(String.format(Locale.ROOT, "%-10s %-22s %s", j.getKey(), "ratios", String.join(", ", ratios)));
    }
    lines.add("");
    for (String key : List.of("cache", "shade_server", "history", "order", "ratios", "fio", "qemu_nbd", "nbdkit",
        "java", "os", "cpus", "filesystem", "work_dir", "load_average_before", "load_average_after", "elapsed_s")) {
      lines.add(key + ": " + env.get(key));
    }
    Map<String, Object> ts = (Map<String, Object>) env.get("targets");
    for (Map.Entry<String, Object> t : ts.entrySet()) {
      Map<String, Object> m = (Map<String, Object>) t.getValue();
      lines.add("target " + t.getKey() + ": " + m.get("what") + "; " + (m.get("skipped") != null
          ? "skipped: " + m.get("skipped") : "server: " + m.get("server")));
    }
    return lines;
  }

  private static double num(Object o) {
    return ((Number) o).doubleValue();
  }

  private static String fmt(Object o, int digits) {
    return o == null ? "?" : String.format(Locale.ROOT, "%." + digits + "f", num(o));
  }
}
