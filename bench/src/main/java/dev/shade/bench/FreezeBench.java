package dev.shade.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The benchmark of {@code shade bench freeze}: how long a live PostgreSQL's filesystems stay
 * frozen, by a bare {@code fsfreeze} and by {@code shade snapshot create} with writers, and what
 * that costs pgbench.
 *
 * <p>Not thread-safe: one run at a time per thread; runs share nothing.
 */
public final class FreezeBench {
  /*
   * The live stack: two sparse volumes (data, wal) held by a `shade agent` child process
   * (AgentProcess), each shown through nbdfuse as a file, on a loop device, with ext4 made and
   * mounted (FuseVolume); a PostgreSQL 15 cluster (BenchPostgres) with its data directory on
   * the first and its WAL on the second, pgbench -i -s --scale. Then four pgbench phases of
   * --seconds each, in order:
   *
   *   1. pgbench alone: the tps baseline;
   *   2. pgbench and --rounds bare freezes spread evenly over the phase: fsfreeze -f on every
   *      mount, then fsfreeze -u on every mount in reverse order, in one bash process timed
   *      by bash's own clock from before the first freeze to after the last thaw (what the
   *      kernel does, plus fsfreeze's process starts, about a millisecond each, which a
   *      writer calling FIFREEZE does not pay; the whole process's wall time, with the JVM's
   *      process start, is reported apart); with --sync-first,
   *      `sync -f` on every mount just before, timed apart: freezing writes back the dirty
   *      pages first, and under load that writeback is most of the window;
   *   3. pgbench and --rounds `shade snapshot create DATA WAL --json [--writer SPEC]...` spread
   *      the same way, each a new process of the product's command line (so its time includes
   *      a JVM start), recording its wall time and the JSON result's "freezeMs" when present
   *      (the requestor reports it when writers freeze filesystems);
   *   3b. with --via control (or cli,control), the same snapshots again in a phase of their
   *      own, sent as snapshot-create commands on one control connection to the agent that
   *      stays open for the whole phase: no JVM start of the command line per snapshot, only the
   *      agent's guard process (the requestor's lease) is started for each;
   *   3c. with --via paired, a phase where --rounds bare freezes and --rounds control snapshots
   *      alternate (the order swapped every round), so both see the same load at the same time:
   *      the fairest comparison of a snapshot's window with the bare one on a noisy machine. Its
   *      results are the paired_* keys, with the difference of each pair's windows;
   *   4. pgbench alone again, so drift over the run shows.
   *
   * With --sqlite, an SQLite database in WAL mode on the data filesystem ({sqlite} in
   * --writers names its file) takes a commit every few milliseconds from before the first phase
   * to after the last (BenchSqlite), so an sqlite: writer has a writer to hold out; its commits
   * per second in each phase are reported.
   *
   * For each snapshot phase the JSON results give, beside freezeMs: commitMs (the provider's
   * commit, inside the window), the writers' own freeze and thaw times (summed over writers),
   * and what is left of the window after both: the guard's and the requestor's round trips
   * (freeze reply, thaw request) and scheduling, the requestor's own overhead in the window.
   *
   * --writers is a comma-separated list of writer specs passed as --writer each; {data} and
   * {wal} in them become the two mount points, {pgdata} the data directory and {port} the
   * server's port, since they live in a temporary directory.
   * A round that would start after pgbench has ended is not made (the counts say how many ran).
   * Percentiles are nearest-rank over the (few) rounds: p99 of 20 rounds is the maximum.
   */

  /** The volumes' directory names, hence their export and mount names. */
  static final List<String> VOLUMES = List.of("data", "wal");
  static final long MIB = 1L << 20;
  /** Bounds each fsfreeze and each snapshot command. */
  private static final Duration STEP = Duration.ofSeconds(120);
  /** Reads the snapshot commands' JSON. */
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * What one run measures.
   *
   * @param baseDir where the temporary work directory goes; a real disk, not tmpfs
   * @param volumeBytes size of each volume, a whole number of MiB, at least 256 MiB
   * @param rounds freezes, and as many snapshots, each during its pgbench phase
   * @param seconds how long each pgbench phase runs
   * @param clients pgbench's clients (and threads)
   * @param scale pgbench -i's scale factor (100 000 accounts each)
   * @param writers writer specs for {@code shade snapshot create --writer}, placeholders unexpanded
   * @param syncFirst run {@code sync -f} on every mount just before each bare freeze (timed apart)
   * @param sqlite run an SQLite load on the data filesystem ({@code {sqlite}} in the writers)
   * @param via how the snapshots are taken, each in a phase of its own: {@code cli} (a
   *     {@code shade snapshot create} process each) and/or {@code control} (commands on one
   *     control connection to the agent)
   */
  public record Settings(Path baseDir, long volumeBytes, int rounds, int seconds, int clients, int scale,
      List<String> writers, boolean syncFirst, boolean sqlite, List<String> via) {
    /** Ways of taking the snapshots. */
    static final List<String> VIA = List.of("cli", "control", "paired");

    /** Without the SQLite load, snapshots through the command line. */
    public Settings(Path baseDir, long volumeBytes, int rounds, int seconds, int clients, int scale,
        List<String> writers, boolean syncFirst) {
      this(baseDir, volumeBytes, rounds, seconds, clients, scale, writers, syncFirst, false, List.of("cli"));
    }

    public Settings {
      via = List.copyOf(new java.util.LinkedHashSet<>(via));
      if (via.isEmpty() || !VIA.containsAll(via)) {
        throw new IllegalArgumentException("--via takes cli, control and/or paired: " + via);
      }
      if (!sqlite && writers.stream().anyMatch(w -> w.contains("{sqlite}"))) {
        throw new IllegalArgumentException("{sqlite} in --writers needs --sqlite: " + writers);
      }
      if (volumeBytes < 256 * MIB || volumeBytes % MIB != 0) {
        throw new IllegalArgumentException("volume size must be a whole number of MiB, at least 256 MiB: "
            + volumeBytes);
      }
      if (rounds < 1 || rounds > 10_000) {
        throw new IllegalArgumentException("rounds must be from 1 to 10000: " + rounds);
      }
      if (seconds < 2 || seconds > 3600) {
        throw new IllegalArgumentException("seconds must be from 2 to 3600: " + seconds);
      }
      if (clients < 1 || clients > 64) {
        throw new IllegalArgumentException("clients must be from 1 to 64: " + clients);
      }
      if (scale < 1 || scale > 1000) {
        throw new IllegalArgumentException("scale must be from 1 to 1000: " + scale);
      }
      writers = List.copyOf(writers);
    }
  }

  private FreezeBench() {}

  /**
   * Runs the benchmark in a temporary directory {@code shade-bench-freeze-*} under the base
   * directory and deletes it afterwards; {@code progress} gets one line per step. Fails, before
   * setting anything up, naming what is missing when this process is not root or a tool is
   * not installed.
   */
  public static Map<String, Object> run(Settings s, Consumer<String> progress) throws IOException, InterruptedException {
    long start = System.nanoTime();
    requireMachine(Programs.Lookup.onPath());
    Files.createDirectories(s.baseDir());
    Path work = Files.createTempDirectory(s.baseDir(), "shade-bench-freeze-");
    // PostgreSQL runs as the user postgres, which must get through to its directories
    Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
    Stack stack = new Stack(work);
    Thread hook = new Thread(stack::closeQuietly, "shade-bench-freeze-cleanup");
    Runtime.getRuntime().addShutdownHook(hook);
    try {
      List<Path> volumes = new ArrayList<>();
      for (String name : VOLUMES) {
        Path dir = work.resolve("volumes").resolve(name);
        Files.createDirectories(dir.getParent());
        try (Volume v = Volume.create(dir, VolumeConfig.of(s.volumeBytes()).withDiffMax(s.volumeBytes()))) {
          v.flush();
        }
        volumes.add(dir);
      }
      progress.accept("starting the agent on " + VOLUMES.size() + " volumes of " + s.volumeBytes() / MIB + " MiB");
      stack.agent = AgentProcess.start(work, volumes);
      List<FuseVolume> mounts = new ArrayList<>();
      for (String name : VOLUMES) {
        progress.accept("ext4 on " + name + " through nbdfuse and a loop device");
        FuseVolume m = FuseVolume.open(work, name, stack.agent.uri(name));
        stack.mounts.add(m);
        mounts.add(m);
      }
      progress.accept("initdb (WAL on the second volume), start PostgreSQL, pgbench -i -s " + s.scale());
      Path pgdata = mounts.get(0).mountPoint.resolve("pgdata");
      stack.postgres = BenchPostgres.start(pgdata, mounts.get(1).mountPoint.resolve("pg_wal"), s.volumeBytes(),
          work.resolve("run"));
      stack.postgres.init(s.scale());
      Path sqliteFile = mounts.get(0).mountPoint.resolve("bench.db");
      if (s.sqlite()) {
        progress.accept("SQLite load (WAL, a commit every " + BenchSqlite.PAUSE_MILLIS + " ms) on " + sqliteFile);
        stack.sqlite = BenchSqlite.start(sqliteFile);
      }
      List<String> writers = new ArrayList<>();
      for (String w : s.writers()) {
        writers.add(w.replace("{sqlite}", sqliteFile.toString()).replace("{data}", mounts.get(0).mountPoint.toString())
            .replace("{wal}", mounts.get(1).mountPoint.toString()).replace("{pgdata}", pgdata.toString())
            .replace("{port}", String.valueOf(stack.postgres.port)));
      }
      Map<String, Object> out = new Measure(s, work, volumes, mounts, stack.postgres, writers, progress, stack.agent,
          stack.sqlite).all();
      out.put("writers", writers);
      out.put("volume_bytes", s.volumeBytes());
      out.put("pgbench", String.join(" ", stack.postgres.client("-n", "-c", String.valueOf(s.clients()), "-j",
          String.valueOf(s.clients()), "-T", String.valueOf(s.seconds()), "postgres")));
      out.put("pgbench_scale", s.scale());
      out.put("work_dir", work.toString());
      out.put("filesystem_of_volumes", Machine.fileSystem(work));
      out.put("java", Machine.java());
      out.put("cpus", Runtime.getRuntime().availableProcessors());
      out.put("load_average_after", Machine.loadAverage());
      out.put("elapsed_s", NbdBench.round((System.nanoTime() - start) / 1e9, 1));
      return out;
    } finally {
      stack.close();
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // the JVM is shutting down already; the hook finds everything cleaned up
      }
    }
  }

  /** Fails naming everything missing: root, /dev/fuse, the programs and their Debian packages. */
  static void requireMachine(Programs.Lookup tools) throws IOException {
    List<String> missing = new ArrayList<>();
    if (!"root".equals(System.getProperty("user.name"))) {
      missing.add("root (to mount filesystems, attach loop devices, freeze filesystems and run PostgreSQL as postgres;"
          + " running as " + System.getProperty("user.name") + ")");
    }
    if (!Files.isReadable(Path.of("/dev/fuse")) || !Files.isWritable(Path.of("/dev/fuse"))) {
      missing.add("a usable /dev/fuse (modprobe fuse, or give the container the device)");
    }
    Map<String, String> programs = new LinkedHashMap<>();
    programs.put("nbdfuse", "libnbd-bin");
    programs.put("losetup", "util-linux");
    programs.put("mkfs.ext4", "e2fsprogs");
    programs.put("mount", "mount");
    programs.put("umount", "mount");
    programs.put("mountpoint", "util-linux");
    programs.put("fsfreeze", "util-linux");
    programs.put("bash", "bash");
    programs.put("runuser", "util-linux");
    programs.forEach((p, pkg) -> {
      if (tools.find(p).isEmpty()) {
        missing.add(p + " (Debian: apt-get install " + pkg + ")");
      }
    });
    for (String p : BenchPostgres.PROGRAMS) {
      if (!Files.isExecutable(BenchPostgres.BIN.resolve(p))) {
        missing.add(BenchPostgres.BIN.resolve(p) + " (Debian: apt-get install postgresql-15)");
      }
    }
    if (!missing.isEmpty()) {
      throw new IOException("the freeze benchmark runs a live PostgreSQL on ext4 on shade volumes and needs: "
          + String.join("; ", missing));
    }
  }

  /** Everything the run set up, taken down in reverse order; once, from the normal path or the shutdown hook. */
  private static final class Stack {
    /** The directory to delete last. */
    private final Path work;
    /** The agent, once started. */
    volatile AgentProcess agent;
    /** The mounted volumes, in the order they were mounted. */
    final List<FuseVolume> mounts = Collections.synchronizedList(new ArrayList<>());
    /** The cluster, once created. */
    volatile BenchPostgres postgres;
    /** The SQLite load, once started. */
    volatile BenchSqlite sqlite;
    /** True once run. */
    private boolean done;

    Stack(Path work) {
      this.work = work;
    }

    synchronized void close() throws IOException {
      if (done) {
        return;
      }
      done = true;
      List<java.io.Closeable> all = new ArrayList<>();
      if (agent != null) {
        all.add(agent);
      }
      all.addAll(mounts);
      if (postgres != null) {
        all.add(postgres);
      }
      if (sqlite != null) {
        all.add(sqlite);
      }
      IOException first = null;
      for (int i = all.size() - 1; i >= 0; i--) {
        try {
          all.get(i).close();
        } catch (IOException | RuntimeException e) {
          first = first == null ? new IOException("taking down " + all.get(i) + ": " + e.getMessage(), e) : first;
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

    void closeQuietly() {
      try {
        close();
      } catch (IOException | RuntimeException e) {
        System.err.println("bench: cleaning up: " + e.getMessage());
      }
    }
  }

  /** The four phases of one run. */
  private static final class Measure {
    /** What to run. */
    private final Settings s;
    /** Where helper programs run. */
    private final Path work;
    /** The volume directories, as the snapshot command names them. */
    private final List<Path> volumes;
    /** The mounted filesystems. */
    private final List<FuseVolume> mounts;
    /** The cluster under load. */
    private final BenchPostgres pg;
    /** Writer specs, expanded. */
    private final List<String> writers;
    /** Gets one line per step. */
    private final Consumer<String> progress;
    /** The agent, for snapshots on its control socket. */
    private final AgentProcess agent;
    /** The SQLite load, or null. */
    private final BenchSqlite sqlite;
    /** SQLite commits per second in each phase, by phase. */
    private final Map<String, Object> sqliteRates = new LinkedHashMap<>();

    Measure(Settings s, Path work, List<Path> volumes, List<FuseVolume> mounts, BenchPostgres pg, List<String> writers,
        Consumer<String> progress, AgentProcess agent, BenchSqlite sqlite) {
      this.agent = agent;
      this.sqlite = sqlite;
      this.s = s;
      this.work = work;
      this.volumes = volumes;
      this.mounts = mounts;
      this.pg = pg;
      this.writers = writers;
      this.progress = progress;
    }

    Map<String, Object> all() throws IOException, InterruptedException {
      double before = alone("before");
      List<Double> freezes = new ArrayList<>();
      List<Double> syncs = new ArrayList<>();
      List<Double> freezeCommands = new ArrayList<>();
      double withFreezes = during("freezes", () -> freezes.add(freeze(syncs, freezeCommands)));
      progress.accept(String.format(Locale.ROOT, "bare freezes: %s; pgbench %.0f tps", line(freezes), withFreezes));
      int[] number = {0};
      Map<String, SnapshotPhase> phases = new LinkedHashMap<>();
      for (String via : s.via()) {
        SnapshotPhase p = new SnapshotPhase();
        if (via.equals("paired")) {
          try (dev.shade.requestor.control.ControlClient c = agent.connect()) {
            p.tps = during("paired freezes and snapshots", () -> {
              int n = ++number[0];
              if (n % 2 == 0) {
                p.bare.add(freeze(syncs, freezeCommands));
                p.add(controlSnapshot(c, "freeze-bench-" + n, p.commands));
              } else {
                p.add(controlSnapshot(c, "freeze-bench-" + n, p.commands));
                p.bare.add(freeze(syncs, freezeCommands));
              }
            });
          }
          phases.put(via, p);
          progress.accept(String.format(Locale.ROOT, "paired: bare %s; snapshots freezeMs %s; pgbench %.0f tps",
              line(p.bare), p.freezeMs.isEmpty() ? "not reported" : line(p.freezeMs), p.tps));
          continue;
        }
        if (via.equals("cli")) {
          p.tps = during("snapshots", () -> p.add(snapshot("freeze-bench-" + ++number[0], p.commands)));
        } else {
          try (dev.shade.requestor.control.ControlClient c = agent.connect()) {
            p.tps = during("control-snapshots", () -> p.add(controlSnapshot(c, "freeze-bench-" + ++number[0],
                p.commands)));
          }
        }
        phases.put(via, p);
        progress.accept(String.format(Locale.ROOT, "snapshots (%s): commands %s; freezeMs %s; pgbench %.0f tps", via,
            line(p.commands), p.freezeMs.isEmpty() ? "not reported" : line(p.freezeMs), p.tps));
      }
      double after = alone("after");

      Map<String, Object> out = new LinkedHashMap<>();
      out.put("bare_freeze_ms", summary(freezes));
      out.put("bare_freeze_command_ms", summary(freezeCommands));
      out.put("bare_freeze_sync_first", s.syncFirst());
      if (s.syncFirst()) {
        out.put("sync_before_freeze_ms", summary(syncs));
      }
      Map<String, Object> bareAll = summary(freezes);
      for (Map.Entry<String, SnapshotPhase> e : phases.entrySet()) {
        String k = prefix(e.getKey());
        SnapshotPhase p = e.getValue();
        Map<String, Object> bare = e.getKey().equals("paired") ? summary(p.bare) : bareAll;
        if (e.getKey().equals("paired")) {
          out.put(k + "bare_freeze_ms", bare);
          if (p.freezeMs.size() == p.bare.size() && !p.bare.isEmpty()) {
            List<Double> diffs = new ArrayList<>();
            for (int i = 0; i < p.bare.size(); i++) {
              diffs.add(p.freezeMs.get(i) - p.bare.get(i));
            }
            out.put(k + "pair_difference_ms", summary(diffs));
          }
        }
        out.put(k + "freeze_ms", p.freezeMs.isEmpty() ? null : summary(p.freezeMs));
        if (p.freezeMs.isEmpty()) {
          out.put(k + "freeze_ms_note", "the snapshot command's JSON had no freezeMs"
              + (writers.isEmpty() ? " (no --writers given: snapshots were crash-consistent, nothing froze)" : ""));
        } else {
          Map<String, Object> f = summary(p.freezeMs);
          Map<String, Object> added = new LinkedHashMap<>();
          for (String q : List.of("p50", "p99", "min", "max")) {
            added.put(q, NbdBench.round((Double) f.get(q) - (Double) bare.get(q), 3));
          }
          out.put(k + "freeze_minus_bare_ms", added);
          out.put(k + "commit_ms", summary(p.commitMs));
          out.put(k + "writers_freeze_thaw_ms", summary(p.writerMs));
          out.put(k + "freeze_overhead_ms", summary(p.overheadMs));
        }
        out.put(k + "command_ms", summary(p.commands));
      }
      Map<String, Object> tps = new LinkedHashMap<>();
      tps.put("without_before", NbdBench.round(before, 1));
      tps.put("with_freezes", NbdBench.round(withFreezes, 1));
      for (Map.Entry<String, SnapshotPhase> e : phases.entrySet()) {
        tps.put("with_" + prefix(e.getKey()).replace("snapshot_", "snapshots"), NbdBench.round(e.getValue().tps, 1));
      }
      tps.put("without_after", NbdBench.round(after, 1));
      double baseline = (before + after) / 2;
      tps.put("freezes_vs_without", NbdBench.round(withFreezes / baseline, 3));
      for (Map.Entry<String, SnapshotPhase> e : phases.entrySet()) {
        tps.put(prefix(e.getKey()).replace("snapshot_", "snapshots") + "_vs_without",
            NbdBench.round(e.getValue().tps / baseline, 3));
      }
      out.put("pgbench_tps", tps);
      if (sqlite != null) {
        out.put("sqlite_commits_per_s", sqliteRates);
      }
      out.put("rounds", s.rounds());
      out.put("seconds", s.seconds());
      out.put("clients", s.clients());
      out.put("mounts", mounts.stream().map(m -> m.mountPoint.toString()).toList());
      return out;
    }

    /** The result keys' prefix of a --via phase: snapshot_, control_snapshot_, paired_snapshot_. */
    private static String prefix(String via) {
      return via.equals("cli") ? "snapshot_" : via + "_snapshot_";
    }

    private double alone(String label) throws IOException, InterruptedException {
      progress.accept("pgbench alone (" + label + "): " + s.seconds() + " s");
      long c0 = sqliteCommits();
      long t0 = System.nanoTime();
      Process load = pg.load(s.clients(), s.seconds(), label);
      double tps = pg.tps(load, label, s.seconds());
      sqliteRate(label, c0, t0);
      progress.accept(String.format(Locale.ROOT, "pgbench alone (%s): %.0f tps", label, tps));
      return tps;
    }

    /** One timed step of a phase. */
    private interface Step {
      void run() throws IOException, InterruptedException;
    }

    /** pgbench for --seconds with --rounds steps spread evenly over its middle; its tps. */
    private double during(String label, Step step) throws IOException, InterruptedException {
      progress.accept("pgbench with " + s.rounds() + " " + label + ": " + s.seconds() + " s");
      long c0 = sqliteCommits();
      long phaseStart = System.nanoTime();
      Process load = pg.load(s.clients(), s.seconds(), label);
      try {
        long t0 = System.nanoTime();
        long first = t0 + TimeUnit.MILLISECONDS.toNanos(500);
        long interval = (TimeUnit.SECONDS.toNanos(s.seconds()) - TimeUnit.MILLISECONDS.toNanos(1000)) / s.rounds();
        for (int i = 0; i < s.rounds(); i++) {
          long wait = first + i * interval - System.nanoTime();
          if (wait > 0) {
            TimeUnit.NANOSECONDS.sleep(wait);
          }
          if (!load.isAlive()) {
            progress.accept("pgbench ended after " + i + " of " + s.rounds() + " " + label + "; the rest are not "
                + "made (rounds took longer than the phase allows: raise --seconds or lower --rounds)");
            break;
          }
          step.run();
        }
      } catch (IOException | InterruptedException | RuntimeException e) {
        Programs.kill(load);
        throw e;
      }
      double tps = pg.tps(load, label, s.seconds());
      sqliteRate(label, c0, phaseStart);
      return tps;
    }

    private long sqliteCommits() throws IOException {
      return sqlite == null ? 0 : sqlite.commits();
    }

    private void sqliteRate(String label, long commitsBefore, long nanosBefore) throws IOException {
      if (sqlite != null) {
        sqliteRates.put(label, NbdBench.round((sqlite.commits() - commitsBefore) / ((System.nanoTime() - nanosBefore)
            / 1e9), 1));
      }
    }

    /**
     * {@code snapshot-create} of every volume with the writers on the open control connection
     * {@code c}, as the command line sends it to the agent; its result.
     */
    private JsonNode controlSnapshot(dev.shade.requestor.control.ControlClient c, String name, List<Double> commandMs)
        throws IOException {
      Map<String, Object> args = new LinkedHashMap<>();
      args.put("volumes", volumes.stream().map(v -> v.toAbsolutePath().toString()).toList());
      args.put("name", name);
      if (!writers.isEmpty()) {
        args.put("writers", writers);
      }
      long t0 = System.nanoTime();
      JsonNode r;
      try {
        r = c.execute("snapshot-create", args);
      } catch (IOException e) {
        throw new IOException("snapshot " + name + " on the control socket: " + e.getMessage(), e);
      }
      commandMs.add((System.nanoTime() - t0) / 1e6);
      return r;
    }

    /**
     * fsfreeze -f on every mount, then -u in reverse, in one bash process that reads the clock
     * ({@code $EPOCHREALTIME}) before the first freeze and after the last thaw: the window in
     * milliseconds, with only fsfreeze's own process starts in it. With --sync-first, sync -f on
     * every mount just before, its milliseconds into {@code syncs}. The process's whole wall
     * time, seen from here, goes into {@code commands}.
     */
    private double freeze(List<Double> syncs, List<Double> commands) throws IOException, InterruptedException {
      StringBuilder script = new StringBuilder("a=$EPOCHREALTIME\n");
      if (s.syncFirst()) {
        for (FuseVolume m : mounts) {
          script.append("sync -f ").append(quote(m)).append(" || exit 3\n");
        }
      }
      script.append("s=$EPOCHREALTIME\n");
      for (int i = 0; i < mounts.size(); i++) {
        script.append("fsfreeze --freeze ").append(quote(mounts.get(i))).append(" || {");
        for (int j = i - 1; j >= 0; j--) {
          script.append(" fsfreeze --unfreeze ").append(quote(mounts.get(j))).append(";");
        }
        script.append(" exit 4; }\n");
      }
      for (int i = mounts.size() - 1; i >= 0; i--) {
        script.append("fsfreeze --unfreeze ").append(quote(mounts.get(i))).append(" || exit 5\n");
      }
      script.append("e=$EPOCHREALTIME\necho \"$a $s $e\"\n");
      long t0 = System.nanoTime();
      Programs.Result r = Programs.run(work, STEP, List.of("bash", "-c", script.toString()));
      commands.add((System.nanoTime() - t0) / 1e6);
      if (!r.ok()) {
        throw new IOException("freezing " + mounts + ": " + r.failure());
      }
      String[] t = r.stdout().strip().split(" ");
      double a = Double.parseDouble(t[0]);
      double begin = Double.parseDouble(t[1]);
      double end = Double.parseDouble(t[2]);
      if (s.syncFirst()) {
        syncs.add((begin - a) * 1000);
      }
      return (end - begin) * 1000;
    }

    private static String quote(FuseVolume m) {
      return "'" + m.mountPoint.toString().replace("'", "'\\''") + "'";
    }

    /** {@code shade snapshot create VOLUMES --name NAME --json [--writer W]...} as a new process; its JSON. */
    private JsonNode snapshot(String name, List<Double> commandMs) throws IOException, InterruptedException {
      List<String> argv = new ArrayList<>(List.of(AgentProcess.java(), "-cp", AgentProcess.classPath(),
          "dev.shade.cli.Shade", "snapshot", "create"));
      volumes.forEach(v -> argv.add(v.toString()));
      argv.addAll(List.of("--name", name, "--json"));
      for (String w : writers) {
        argv.addAll(List.of("--writer", w));
      }
      long t0 = System.nanoTime();
      Programs.Result r = Programs.run(work, STEP, argv);
      commandMs.add((System.nanoTime() - t0) / 1e6);
      if (!r.ok()) {
        throw new IOException("snapshot " + name + ": " + r.failure());
      }
      return JSON.readTree(r.stdout());
    }

    private void require(List<String> command) throws IOException, InterruptedException {
      Programs.Result r = Programs.run(work, STEP, command);
      if (!r.ok()) {
        throw new IOException(r.failure());
      }
    }
  }

  /** What one phase of snapshots measured. Not thread-safe: the phase's thread fills it. */
  static final class SnapshotPhase {
    /** Wall time of each snapshot command. */
    final List<Double> commands = new ArrayList<>();
    /** freezeMs of each result. */
    final List<Double> freezeMs = new ArrayList<>();
    /** commitMs of each result. */
    final List<Double> commitMs = new ArrayList<>();
    /** The writers' own freeze and thaw times of each result, summed over the writers. */
    final List<Double> writerMs = new ArrayList<>();
    /** freezeMs less commitMs and the writers' freeze and thaw: the round trips in the window. */
    final List<Double> overheadMs = new ArrayList<>();
    /** The bare freezes' windows of a paired phase, one per snapshot, in the same order. */
    final List<Double> bare = new ArrayList<>();
    /** pgbench's tps in the phase. */
    double tps;

    void add(JsonNode r) {
      JsonNode f = r.get("freezeMs");
      if (f == null || !f.isNumber()) {
        return;
      }
      freezeMs.add(f.asDouble());
      double commit = r.path("commitMs").asDouble(0);
      commitMs.add(commit);
      double w = 0;
      for (JsonNode writer : r.path("writers")) {
        JsonNode ph = writer.path("phases");
        w += ph.path("freezeMs").asDouble(0) + ph.path("thawMs").asDouble(0);
      }
      writerMs.add(w);
      overheadMs.add(f.asDouble() - commit - w);
    }
  }

  /** p50, p99, min, max, mean and count of {@code values} (nearest rank), in milliseconds. */
  static Map<String, Object> summary(List<Double> values) {
    List<Double> v = new ArrayList<>(values);
    Collections.sort(v);
    Map<String, Object> m = new LinkedHashMap<>();
    boolean any = !v.isEmpty();
    m.put("p50", any ? NbdBench.round(rank(v, 50), 3) : null);
    m.put("p99", any ? NbdBench.round(rank(v, 99), 3) : null);
    m.put("min", any ? NbdBench.round(v.get(0), 3) : null);
    m.put("max", any ? NbdBench.round(v.get(v.size() - 1), 3) : null);
    m.put("mean", any ? NbdBench.round(v.stream().mapToDouble(Double::doubleValue).average().orElse(0), 3) : null);
    m.put("count", v.size());
    return m;
  }

  /** The nearest-rank {@code percentile} of the sorted, non-empty {@code sorted}. */
  static double rank(List<Double> sorted, int percentile) {
    int index = (int) Math.ceil(percentile / 100.0 * sorted.size()) - 1;
    return sorted.get(Math.max(0, Math.min(sorted.size() - 1, index)));
  }

  private static String line(List<Double> ms) {
    Map<String, Object> m = summary(ms);
    return String.format(Locale.ROOT, "p50 %s ms, p99 %s ms, min %s ms, max %s ms", m.get("p50"), m.get("p99"),
        m.get("min"), m.get("max"));
  }
}
