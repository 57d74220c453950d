package dev.shade.bench;

import dev.shade.nativeio.StatVfs;
import dev.shade.nbd.client.NbdClient;
import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.offhost.backup.BackupProgress;
import dev.shade.offhost.backup.BackupService;
import dev.shade.offhost.backup.Catalog;
import dev.shade.offhost.backup.ChunkChecksum;
import dev.shade.offhost.backup.NbdSnapshotSource;
import dev.shade.offhost.backup.RestoreService;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import dev.shade.provider.VolumeConfig;
import dev.shade.requestor.control.ControlClient;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * The benchmark of {@code shade bench backup}: the off-host image backup of one volume of
 * realistic data, served by a real agent over NBD, to a virtual tape library, side by side with
 * {@code nbdcopy}, {@code tar | zstd -1} and {@code nbdkit file} on the same data.
 *
 * <p>Not thread-safe: one run at a time per thread; runs share nothing.
 */
public final class BackupBench {
  /*
   * Setup, untimed: a volume of --size (BackupVolumeData: database pages, text, blobs, holes) is
   * written in this JVM, then held by a `shade agent` child process (AgentProcess) serving it on
   * an NBD Unix socket. Every round then does, in this order:
   *
   *   1. snapshot-create "full-R" on the control socket;
   *   2. nbdcopy --flush of its export (VOLUME@full-R) into copy.img on the same file system as
   *      the library: the transport's limit (nbdcopy's defaults: it opens 4 connections when the
   *      server allows several, as the agent's snapshot exports do); --flush makes the copy
   *      durable at its end (fsync), as a backup's filemark makes its archive; the agent's CPU is
   *      read too;
   *   3. a full backup (BackupService in this JVM, as `shade backup run --level full` runs it,
   *      through NbdSnapshotSource) into a new library lib-R; the agent's CPU seconds during it
   *      (/proc/PID/stat: utime + stime + cutime + cstime) are the production side's cost;
   *   4. `tar -cf - copy.img | zstd -1 > copy.tar.zst` under bash, whose `times` gives the CPU
   *      seconds of tar and zstd: what the production host would spend on a local backup;
   *   5. `nbdkit file copy.img` serving `nbdcopy URI null:`: the same reads from the reference
   *      NBD server, whose CPU seconds (from /proc, as the agent's) are the other yardstick;
   *   6. a restore of full-R into restored.img (RestoreService, as `shade restore` runs it);
   *   7. INCREMENTALS times: 1 % of the volume's copy-on-write blocks, chosen at random over the
   *      whole volume, each rewritten whole with new random bytes through the agent's origin
   *      export (NBD WRITE, then FLUSH), snapshot-create "inc-R-K", an incremental backup; each is
   *      timed from the source's connection to the catalog's record, as the full is;
   *   8. a restore of the last incremental: the chain of the full and all the incrementals;
   *   9. every snapshot of the round deleted, lib-R, copy.img and restored.img removed.
   *
   * Throughputs are over the bytes the full backup read (the allocated chunks of the snapshot),
   * for nbdcopy, the backup and the restore alike, so each throughput ratio is a ratio of times.
   * The incremental figure of a round is the median of its INCREMENTALS backups. Every figure is
   * given for each round, and min / median / max over the rounds; a target is met when the median
   * meets it.
   */

  /** Incremental backups after each full: with the full, a chain of 24. */
  static final int INCREMENTALS = 23;
  /** The fraction of the volume's blocks each incremental finds changed. */
  static final double CHANGED = 0.01;
  /** The volume's directory name, hence its export name. */
  static final String VOLUME = "vol";
  /** The warm-up volume's directory and export name. */
  static final String WARM_UP = "warmup";
  /** Size of the warm-up volume. */
  static final long WARM_UP_BYTES = 32L << 20;
  /** Incrementals of the warm-up round. */
  static final int WARM_UP_INCREMENTALS = 3;
  static final long MIB = 1L << 20;

  /** One ratio: its name, what it divides, its target. */
  record Ratio(String key, String numerator, String denominator, String unit, boolean atLeast, double target,
      String means) {
    boolean met(double value) {
      return atLeast ? value >= target : value <= target;
    }

    String targetText() {
      return (atLeast ? ">= " : "<= ") + target;
    }
  }

  /** The ratios of this benchmark, in the order they are reported. */
  static final List<Ratio> RATIOS = List.of(
      new Ratio("full_vs_nbdcopy", "full_backup_mib_s", "nbdcopy_mib_s", "MiB/s", true, 0.8,
          "full image backup throughput / nbdcopy of the same snapshot to a local file"),
      new Ratio("incr1pct_vs_full", "incremental_s", "full_backup_s", "s", false, 0.05,
          "time of an incremental after 1% of the blocks changed / time of the full"),
      new Ratio("restore_chain24_vs_full", "restore_chain24_s", "restore_full_s", "s", false, 1.2,
          "restore through a full + 23 incrementals / restore of one full (time)"),
      new Ratio("restore_vs_full_backup", "restore_mib_s", "full_backup_mib_s", "MiB/s", true, 1.0,
          "restore throughput / full backup throughput"),
      new Ratio("prod_cpu_vs_tar", "agent_cpu_s", "tar_zstd_cpu_s", "CPU s", false, 0.5,
          "the agent's CPU seconds during the full backup / tar -cf - | zstd -1 of the same data"),
      new Ratio("prod_cpu_vs_nbdkit", "agent_cpu_s", "nbdkit_cpu_s", "CPU s", false, 1.0,
          "the agent's CPU seconds during the full backup / nbdkit file serving the same reads to nbdcopy"));

  /**
   * What one run measures.
   *
   * @param baseDir where the temporary work directory goes; a real disk, not tmpfs
   * @param volumeBytes size of the volume, a whole number of MiB, at least 16 MiB
   * @param rounds how many times every figure is measured
   * @param chunkSize bytes per archive chunk of the backups
   * @param blockSize the volume's copy-on-write block: the unit of the changed blocks
   * @param zstdLevel the backups' zstd level (shade backup run --compress zstd:LEVEL), 0: uncompressed
   * @param checksum the chunks' checksum (shade backup run --checksum)
   */
  public record Settings(Path baseDir, long volumeBytes, int rounds, int chunkSize, int blockSize, int zstdLevel,
      ChunkChecksum checksum) {
    /** Settings of uncompressed backups with the default checksum. */
    public Settings(Path baseDir, long volumeBytes, int rounds, int chunkSize, int blockSize) {
      this(baseDir, volumeBytes, rounds, chunkSize, blockSize, 0, ChunkChecksum.DEFAULT);
    }

    public Settings {
      java.util.Objects.requireNonNull(checksum, "checksum");
      if (zstdLevel < 0 || zstdLevel > 19) {
        throw new IllegalArgumentException("zstd level must be 0 (none) or 1..19: " + zstdLevel);
      }
      if (volumeBytes < 16 * MIB || volumeBytes % MIB != 0) {
        throw new IllegalArgumentException("volume size must be a whole number of MiB, at least 16 MiB: " + volumeBytes);
      }
      if (rounds < 1 || rounds > 100) {
        throw new IllegalArgumentException("rounds must be from 1 to 100: " + rounds);
      }
      if (chunkSize < 4096 || chunkSize > 64 * MIB || Integer.bitCount(chunkSize) != 1) {
        throw new IllegalArgumentException("chunk size must be a power of two from 4 KiB to 64 MiB: " + chunkSize);
      }
      if (!VolumeConfig.isBlockSize(blockSize)) {
        throw new IllegalArgumentException("block size must be a power of two from 4 KiB to 1 MiB: " + blockSize);
      }
    }

    /** The diff area limit: room for a round's changes many times over. */
    long diffMax() {
      return 2 * volumeBytes;
    }

    /**
     * Capacity of each cartridge: a full and its incrementals fit on one even when every
     * incremental touches every chunk (cartridge files grow as they are written).
     */
    long capacity() {
      return (INCREMENTALS + 2) * volumeBytes + 256 * MIB;
    }

    /** The warm-up's settings: a small volume, the same chunks and blocks. */
    Settings warmUp() {
      return new Settings(baseDir, WARM_UP_BYTES, 1, chunkSize, blockSize, zstdLevel, checksum);
    }
  }

  /** Everything one round measured. */
  record RoundFigures(double nbdcopyS, double nbdcopyCpuS, double agentCpuNbdcopyS, double fullS, double agentCpuS, double selfCpuS,
      long bytesRead, long archiveBytes, int chunks, double tarZstdCpuS, double tarZstdS, long tarZstdBytes,
      double nbdkitCpuS, double nbdkitNbdcopyS, double restoreFullS, List<Double> incrementalS,
      List<Long> incrementalBytesRead, double restoreChainS, int chainLength) {
    double value(String figure) {
      double mib = bytesRead / (double) MIB;
      return switch (figure) {
        case "full_backup_mib_s" -> mib / fullS;
        case "nbdcopy_mib_s" -> mib / nbdcopyS;
        case "restore_mib_s" -> mib / restoreFullS;
        case "incremental_s" -> median(incrementalS);
        case "full_backup_s" -> fullS;
        case "restore_chain24_s" -> restoreChainS;
        case "restore_full_s" -> restoreFullS;
        case "agent_cpu_s" -> agentCpuS;
        case "tar_zstd_cpu_s" -> tarZstdCpuS;
        case "nbdkit_cpu_s" -> nbdkitCpuS;
        default -> throw new IllegalArgumentException("no figure " + figure);
      };
    }
  }

  private BackupBench() {}

  /**
   * Runs the benchmark in a temporary directory {@code shade-bench-backup-*} under the base
   * directory and deletes it afterwards; {@code progress} gets one line per step.
   */
  public static Map<String, Object> run(Settings s, Consumer<String> progress) throws IOException, InterruptedException {
    return run(s, Programs.Lookup.onPath(), progress);
  }

  static Map<String, Object> run(Settings s, Programs.Lookup tools, Consumer<String> progress)
      throws IOException, InterruptedException {
    long start = System.nanoTime();
    Map<String, Path> tool = new LinkedHashMap<>();
    for (String[] t : new String[][] {{"nbdcopy", "libnbd-bin"}, {"nbdkit", "nbdkit"}, {"zstd", "zstd"},
        {"tar", "tar"}, {"bash", "bash"}}) {
      tool.put(t[0], tools.find(t[0]).orElseThrow(() -> new IOException(t[0]
          + " is not installed, and the backup benchmark runs it (Debian: apt-get install " + t[1] + ")")));
    }
    Files.createDirectories(s.baseDir());
    // the volume and its diff area, copy.img, its tar.zst, a library, a restored image
    long need = s.volumeBytes() + s.diffMax() / 4 + 6 * s.volumeBytes() + 512 * MIB;
    long available = StatVfs.of(s.baseDir()).availableBytes();
    if (available < need) {
      throw new IOException("not enough free space for the backup benchmark in " + s.baseDir() + ": "
          + available / MIB + " MiB available, " + need / MIB + " MiB needed (the volume, a copy of it, an archive "
          + "and a restored image); free some space, or set -Dshade.bench.dir or a smaller --size");
    }
    String loadBefore = Machine.loadAverage();
    Path work = Files.createTempDirectory(s.baseDir(), "shade-bench-backup-");
    AgentProcess agent = null;
    Thread hook = new Thread(() -> deleteQuietly(work), "shade-bench-backup-cleanup");
    Runtime.getRuntime().addShutdownHook(hook);
    try {
      Path volume = work.resolve(VOLUME);
      progress.accept("writing " + s.volumeBytes() / MIB + " MiB of database pages, text, blobs and holes into a "
          + "volume in " + volume);
      Map<String, Long> layout = new BackupVolumeData(20261201L).fill(volume, s.volumeBytes(), s.blockSize(),
          s.diffMax());
      Path warm = work.resolve(WARM_UP);
      new BackupVolumeData(7L).fill(warm, WARM_UP_BYTES, s.blockSize(), s.warmUp().diffMax());
      progress.accept("starting the agent on it");
      agent = AgentProcess.start(work, List.of(volume, warm));
      List<RoundFigures> rounds = new ArrayList<>();
      try (ControlClient control = agent.connect()) {
        // untimed: the JIT of the agent and of this JVM, on a small volume of the same data
        new Round(s.warmUp(), tool, work, agent, control, warm, 0, WARM_UP_INCREMENTALS, s2 -> {}).run();
        progress.accept("warm-up round done (a " + (WARM_UP_BYTES >> 20) + " MiB volume, not counted)");
        for (int r = 1; r <= s.rounds(); r++) {
          rounds.add(new Round(s, tool, work, agent, control, volume, r, INCREMENTALS, progress).run());
        }
      }
      AgentProcess stopping = agent;
      agent = null;
      stopping.close();
      Map<String, Object> out = results(s, rounds);
      out.put("volume_bytes", s.volumeBytes());
      out.put("volume_layout_bytes", layout);
      out.put("region_bytes", BackupVolumeData.regionSize(s.volumeBytes()));
      out.put("block_size", s.blockSize());
      out.put("chunk_size", s.chunkSize());
      out.put("compression", s.zstdLevel() == 0 ? "none" : "zstd:" + s.zstdLevel());
      out.put("checksum", s.checksum().id());
      out.put("incrementals_per_round", INCREMENTALS);
      out.put("changed_blocks_per_incremental", changedBlocks(s));
      out.put("rounds", s.rounds());
      out.put("agent", String.join(" ", stopping.command));
      out.put("nbdcopy_command", "nbdcopy --flush 'nbd+unix:///" + VOLUME + "@full-R?socket=SOCK' copy.img");
      out.put("tar_command", "tar -cf - copy.img | zstd -1 -q -c > copy.tar.zst");
      out.put("nbdkit_command", "nbdkit -f -U SOCK file copy.img; nbdcopy 'nbd+unix:///?socket=SOCK' null:");
      out.put("work_dir", work.toString());
      out.put("filesystem", Machine.fileSystem(work));
      out.put("free_page_reporting", Machine.freePageReporting());
      out.put("nbdcopy", Machine.version(tools, work, "nbdcopy", "--version"));
      out.put("nbdkit", Machine.version(tools, work, "nbdkit", "--version"));
      out.put("zstd", Machine.version(tools, work, "zstd", "--version"));
      out.put("tar", Machine.version(tools, work, "tar", "--version"));
      out.put("java", Machine.java());
      out.put("cpus", Runtime.getRuntime().availableProcessors());
      out.put("load_average_before", loadBefore);
      out.put("load_average_after", Machine.loadAverage());
      out.put("elapsed_s", round((System.nanoTime() - start) / 1e9, 1));
      return out;
    } finally {
      if (agent != null) {
        try {
          agent.close();
        } catch (IOException e) {
          progress.accept("stopping the agent failed: " + e.getMessage());
        }
      }
      deleteQuietly(work);
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // the JVM is shutting down already; the hook finds everything deleted
      }
    }
  }

  /** Blocks rewritten before each incremental: {@link #CHANGED} of the volume's blocks, at least one. */
  static int changedBlocks(Settings s) {
    return (int) Math.max(1, Math.round(s.volumeBytes() / s.blockSize() * CHANGED));
  }

  /** The ratios (with their two figures each) and every round's figures. */
  static Map<String, Object> results(Settings s, List<RoundFigures> rounds) {
    Map<String, Object> out = new LinkedHashMap<>();
    Map<String, Object> ratios = new LinkedHashMap<>();
    boolean all = true;
    for (Ratio q : RATIOS) {
      List<Double> values = new ArrayList<>();
      List<Double> num = new ArrayList<>();
      List<Double> den = new ArrayList<>();
      for (RoundFigures f : rounds) {
        num.add(f.value(q.numerator()));
        den.add(f.value(q.denominator()));
        values.add(f.value(q.numerator()) / f.value(q.denominator()));
      }
      Map<String, Object> m = new LinkedHashMap<>();
      m.putAll(spread(values, 3));
      m.put("target", q.targetText());
      boolean met = q.met(median(values));
      all &= met;
      m.put("target_met", met);
      m.put(q.numerator(), spread(num, 3));
      m.put(q.denominator(), spread(den, 3));
      m.put("per_round", values.stream().map(v -> round(v, 3)).toList());
      m.put("means", q.means());
      ratios.put(q.key(), m);
    }
    out.put("ratios", ratios);
    out.put("all_targets_met", all);
    List<Map<String, Object>> per = new ArrayList<>();
    for (RoundFigures f : rounds) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("bytes_read", f.bytesRead());
      m.put("archive_bytes", f.archiveBytes());
      m.put("chunks", f.chunks());
      m.put("nbdcopy_s", round(f.nbdcopyS(), 3));
      m.put("nbdcopy_cpu_s", round(f.nbdcopyCpuS(), 2));
      m.put("agent_cpu_nbdcopy_s", round(f.agentCpuNbdcopyS(), 2));
      m.put("full_backup_s", round(f.fullS(), 3));
      m.put("agent_cpu_s", round(f.agentCpuS(), 2));
      m.put("backup_server_cpu_s", round(f.selfCpuS(), 2));
      m.put("tar_zstd_cpu_s", round(f.tarZstdCpuS(), 2));
      m.put("tar_zstd_s", round(f.tarZstdS(), 3));
      m.put("tar_zstd_bytes", f.tarZstdBytes());
      m.put("nbdkit_cpu_s", round(f.nbdkitCpuS(), 2));
      m.put("nbdkit_nbdcopy_s", round(f.nbdkitNbdcopyS(), 3));
      m.put("restore_full_s", round(f.restoreFullS(), 3));
      m.put("incremental_s", spread(f.incrementalS(), 4));
      m.put("incremental_bytes_read", spread(f.incrementalBytesRead().stream().map(Long::doubleValue).toList(), 0));
      m.put("restore_chain_s", round(f.restoreChainS(), 3));
      m.put("restore_chain_length", f.chainLength());
      per.add(m);
    }
    out.put("per_round", per);
    return out;
  }

  /** One round: its snapshots, its library, its measurements. */
  private static final class Round {
    private final Settings s;
    private final Map<String, Path> tool;
    private final Path work;
    private final AgentProcess agent;
    private final ControlClient control;
    private final Path volume;
    /** 1-based number of this round. */
    private final int number;
    private final Consumer<String> progress;
    /** Incremental backups after the full. */
    private final int incrementals;
    /** The export name of the volume. */
    private final String export;
    /** Snapshots this round made, to delete at its end. */
    private final List<String> snapshots = new ArrayList<>();

    Round(Settings s, Map<String, Path> tool, Path work, AgentProcess agent, ControlClient control, Path volume,
        int number, int incrementals, Consumer<String> progress) {
      this.incrementals = incrementals;
      this.export = volume.getFileName().toString();
      this.s = s;
      this.tool = tool;
      this.work = work;
      this.agent = agent;
      this.control = control;
      this.volume = volume;
      this.number = number;
      this.progress = progress;
    }

    RoundFigures run() throws IOException, InterruptedException {
      String tag = "round " + number + "/" + s.rounds() + ": ";
      Path lib = work.resolve("lib-" + number);
      Path copy = work.resolve("copy.img");
      Path restored = work.resolve("restored.img");
      try {
        String full = snapshot("full-" + number);

        Files.deleteIfExists(copy);
        Files.createFile(copy);
        settle();
        double cpu0 = ProcessCpu.seconds(agent.pid());
        double[] nbdcopy = withCpu("'" + tool.get("nbdcopy") + "' --flush '" + agent.uri(export + "@" + full) + "' '"
            + copy + "'");
        double nbdcopyS = nbdcopy[1];
        double agentCpuNbdcopy = ProcessCpu.seconds(agent.pid()) - cpu0;
        progress.accept(String.format(Locale.ROOT, "%snbdcopy of %s to a file: %.2f s, agent CPU %.2f s, nbdcopy CPU "
            + "%.2f s", tag, full, nbdcopyS, agentCpuNbdcopy, nbdcopy[0]));

        try (VirtualTapeLibrary l = VirtualTapeLibrary.create(lib, 2, s.capacity())) {
          // created and closed: each backup opens it as 'shade backup run' does
        }
        double self0 = ProcessCpu.self(); // backup() settles first: its sync's seconds are the agent's idle ones
        cpu0 = ProcessCpu.seconds(agent.pid());
        BackupService.Result fullR = backup(lib, full, "full");
        double agentCpu = ProcessCpu.seconds(agent.pid()) - cpu0;
        double selfCpu = ProcessCpu.self() - self0;
        progress.accept(String.format(Locale.ROOT, "%sfull backup: %.2f s, %d MiB read (%.0f MiB/s, nbdcopy %.0f), "
                + "agent CPU %.2f s, backup server CPU %.2f s", tag, fullR.seconds(), fullR.bytesRead() / MIB,
            fullR.bytesRead() / (double) MIB / fullR.seconds(), fullR.bytesRead() / (double) MIB / nbdcopyS,
            agentCpu, selfCpu));

        double[] tar = tarZstd(copy);
        progress.accept(String.format(Locale.ROOT, "%star | zstd -1 of copy.img: %.2f CPU s in %.2f s", tag, tar[0],
            tar[1]));
        double[] nbdkit = nbdkit(copy);
        progress.accept(String.format(Locale.ROOT, "%snbdkit file serving nbdcopy: %.2f CPU s, nbdcopy %.2f s", tag,
            nbdkit[0], nbdkit[1]));

        double restoreFull = restore(lib, full, restored, 1, copy);
        progress.accept(String.format(Locale.ROOT, "%srestore of the full: %.2f s (%.0f MiB/s)", tag, restoreFull,
            fullR.bytesRead() / (double) MIB / restoreFull));

        List<Double> incS = new ArrayList<>();
        List<Long> incBytes = new ArrayList<>();
        String last = full;
        for (int k = 1; k <= incrementals; k++) {
          change(number * 1000L + k);
          last = snapshot("inc-" + number + "-" + k);
          BackupService.Result inc = backup(lib, last, "incremental");
          if (!inc.level().equals("incremental")) {
            throw new IOException("backup of " + last + " was a " + inc.level() + ", not an incremental: "
                + inc.fallback());
          }
          incS.add(inc.seconds());
          incBytes.add(inc.bytesRead());
        }
        progress.accept(String.format(Locale.ROOT, "%s%d incrementals, %d blocks changed before each: median %.3f s "
                + "(%.3f-%.3f), median %d KiB read", tag, incrementals, changedBlocks(s), median(incS), min(incS),
            max(incS), (long) median(incBytes.stream().map(Long::doubleValue).toList()) >> 10));

        double restoreChain = restore(lib, last, restored, incrementals + 1, restored);
        progress.accept(String.format(Locale.ROOT, "%srestore of the chain of %d: %.2f s (%.2f x the full's)", tag,
            incrementals + 1, restoreChain, restoreChain / restoreFull));
        return new RoundFigures(nbdcopyS, nbdcopy[0], agentCpuNbdcopy, fullR.seconds(), agentCpu, selfCpu, fullR.bytesRead(),
            fullR.archiveBytes(), fullR.chunks(), tar[0], tar[1], (long) tar[2], nbdkit[0], nbdkit[1], restoreFull,
            incS, incBytes, restoreChain, incrementals + 1);
      } finally {
        for (String name : snapshots) {
          try {
            control.execute("snapshot-delete", Map.of("volume", volume.toString(), "snapshot", name));
          } catch (IOException e) {
            progress.accept("deleting snapshot " + name + " failed: " + e.getMessage());
          }
        }
        Files.deleteIfExists(copy);
        Files.deleteIfExists(restored);
        deleteQuietly(lib);
      }
    }

    private String snapshot(String name) throws IOException {
      control.execute("snapshot-create", Map.of("volumes", List.of(volume.toString()), "name", name));
      snapshots.add(name);
      return name;
    }

    /** A backup of snapshot {@code name}, opening the library, its catalog and the export as the command does. */
    private BackupService.Result backup(Path lib, String name, String level) throws IOException, InterruptedException {
      NbdClientConfig config = NbdClientConfig.builder(agent.uri(export + "@" + name)).build();
      settle();
      long t0 = System.nanoTime();
      BackupService.Result r;
      try (VirtualTapeLibrary l = VirtualTapeLibrary.open(lib);
          Catalog catalog = Catalog.open(lib);
          NbdSnapshotSource src = NbdSnapshotSource.open(config)) {
        r = BackupService.run(l, catalog, src, new BackupService.Request(BackupService.DEFAULT_POOL, level,
            s.chunkSize(), null, s.zstdLevel(), s.checksum()), BackupProgress.NONE, note -> progress.accept("backup: " + note));
      }
      double seconds = (System.nanoTime() - t0) / 1e9;
      return new BackupService.Result(r.jobId(), r.snapshot(), r.level(), r.requestedLevel(), r.fallback(),
          r.baseSnapshotId(), r.baseSnapshot(), r.cartridge(), r.labelled(), r.fileNumber(), r.archiveBytes(),
          r.dataBytes(), r.chunks(), r.zeroChunks(), r.bytesRead(), seconds, r.pieces(), r.labelledAll(), r.reconnects());
    }

    /**
     * Seconds of a restore of snapshot {@code name} to {@code to}, opening everything as the
     * command does. {@code previous}, the 2 GiB scratch file written before (the copy, or the
     * image of the restore before), is deleted right before it, so both restores start with the
     * same free memory: on a virtual machine that hands free memory back to its host (Linux's free
     * page reporting), memory freed seconds earlier costs a host page fault per page on its next
     * use, which made a restore that came 3 s after the last delete 3 to 5 times slower than one
     * right after it (docs/performance.md, "Free page reporting").
     */
    private double restore(Path lib, String name, Path to, int chain, Path previous)
        throws IOException, InterruptedException {
      settle();
      Files.deleteIfExists(previous);
      long t0 = System.nanoTime();
      RestoreService.Result r;
      try (VirtualTapeLibrary l = VirtualTapeLibrary.open(lib); Catalog catalog = Catalog.open(lib)) {
        r = RestoreService.restore(l, catalog, export, name, to, true, BackupProgress.NONE);
      }
      double seconds = (System.nanoTime() - t0) / 1e9;
      if (r.chain().size() != chain) {
        throw new IOException("the restore of " + name + " read a chain of " + r.chain().size() + " archives, not "
            + chain);
      }
      return seconds;
    }

    /** Rewrites {@link #changedBlocks} distinct blocks, chosen at random, through the origin export. */
    private void change(long seed) throws IOException {
      SplittableRandom random = new SplittableRandom(seed);
      long blocks = s.volumeBytes() / s.blockSize();
      TreeSet<Long> chosen = new TreeSet<>();
      int n = changedBlocks(s);
      while (chosen.size() < n) {
        chosen.add(random.nextLong(blocks));
      }
      byte[] data = new byte[s.blockSize()];
      try (NbdClient c = NbdClient.connect(agent.uri(export))) {
        for (long b : chosen) {
          random.nextBytes(data);
          c.write(b * s.blockSize(), data);
        }
        c.flush();
      }
    }

    /**
     * Writes the machine's dirty pages (sync(1)) before a timed step, so that no step pays for the
     * writeback of an earlier one's: the volume's changes and copy-on-write copies between the
     * backups are the production host's writes, which on a real deployment are not on the backup
     * server's disk at all, and a 2 GiB copy or restored image left dirty would slow the next
     * step's writes (docs/performance.md, "Restore speed").
     */
    private void settle() throws IOException, InterruptedException {
      Programs.Result r = Programs.run(work, Duration.ofMinutes(5), List.of("sync"));
      if (!r.ok()) {
        throw new IOException("sync before a timed step failed: " + r.failure());
      }
    }

    /** Runs {@code command} to its end; its wall seconds. */
    private double timed(List<String> command) throws IOException, InterruptedException {
      long t0 = System.nanoTime();
      Programs.Result r = Programs.run(work, Duration.ofMinutes(30), command);
      double seconds = (System.nanoTime() - t0) / 1e9;
      if (!r.ok()) {
        throw new IOException(r.failure());
      }
      return seconds;
    }

    /** {CPU seconds, wall seconds} of the shell command {@code command} and what it starts (bash's times). */
    private double[] withCpu(String command) throws IOException, InterruptedException {
      String script = "set -o pipefail; " + command + "; rc=$?; times; exit $rc";
      long t0 = System.nanoTime();
      Programs.Result r = Programs.run(work, Duration.ofMinutes(30), List.of(tool.get("bash").toString(), "-c", script));
      double wall = (System.nanoTime() - t0) / 1e9;
      if (!r.ok()) {
        throw new IOException(r.failure());
      }
      return new double[] {childrenCpu(r.stdout()), wall};
    }

    /** {CPU seconds, wall seconds, output bytes} of tar | zstd -1 of {@code file}. */
    private double[] tarZstd(Path file) throws IOException, InterruptedException {
      Path out = work.resolve("copy.tar.zst");
      String script = "set -o pipefail; '" + tool.get("tar") + "' -cf - '" + file.getFileName() + "' | '"
          + tool.get("zstd") + "' -1 -q -c > '" + out.getFileName() + "'; rc=$?; times; exit $rc";
      long t0 = System.nanoTime();
      Programs.Result r = Programs.run(work, Duration.ofMinutes(30), List.of(tool.get("bash").toString(), "-c", script));
      double wall = (System.nanoTime() - t0) / 1e9;
      if (!r.ok()) {
        throw new IOException(r.failure());
      }
      long bytes = Files.size(out);
      Files.deleteIfExists(out);
      return new double[] {childrenCpu(r.stdout()), wall, bytes};
    }

    /** {CPU seconds of nbdkit, wall seconds of nbdcopy} for nbdkit file serving {@code file} to nbdcopy. */
    private double[] nbdkit(Path file) throws IOException, InterruptedException {
      Path sock = work.resolve("nbdkit-" + number + ".sock");
      Path log = work.resolve("nbdkit-" + number + ".log");
      Files.deleteIfExists(sock);
      Process server = new ProcessBuilder(tool.get("nbdkit").toString(), "-f", "--exit-with-parent", "-U",
          sock.toString(), "file", file.toString())
          .redirectErrorStream(true).redirectOutput(log.toFile())
          .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
      try {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!Files.exists(sock)) {
          if (!server.isAlive() || System.nanoTime() > deadline) {
            throw new IOException("nbdkit did not start: " + Programs.tail(log, 5));
          }
          Thread.sleep(20);
        }
        settle();
        double cpu0 = ProcessCpu.seconds(server.pid());
        double wall = timed(List.of(tool.get("nbdcopy").toString(), "nbd+unix:///?socket=" + sock, "null:"));
        double cpu = ProcessCpu.seconds(server.pid()) - cpu0;
        return new double[] {cpu, wall};
      } finally {
        server.destroy();
        if (!server.waitFor(10, TimeUnit.SECONDS)) {
          server.destroyForcibly();
          server.waitFor(10, TimeUnit.SECONDS);
        }
        Files.deleteIfExists(log);
        Files.deleteIfExists(sock);
      }
    }
  }

  /** The children's user + system seconds from the second line bash's {@code times} prints ("0m1.250s 0m0.310s"). */
  static double childrenCpu(String times) throws IOException {
    List<String> lines = times.lines().filter(l -> l.matches("\\s*\\d+m[\\d.]+s\\s+\\d+m[\\d.]+s\\s*")).toList();
    if (lines.size() < 2) {
      throw new IOException("cannot read the CPU times of tar and zstd from bash's 'times': " + times);
    }
    double total = 0;
    for (String f : lines.get(1).trim().split("\\s+")) {
      int m = f.indexOf('m');
      total += Long.parseLong(f.substring(0, m)) * 60 + Double.parseDouble(f.substring(m + 1, f.length() - 1));
    }
    return total;
  }

  /** Human-readable lines of a result: each ratio with its two figures, then the target. */
  @SuppressWarnings("unchecked")
  public static List<String> table(Map<String, Object> r) {
    List<String> lines = new ArrayList<>();
    lines.add(String.format(Locale.ROOT, "%-24s %8s %8s %8s  %-8s %s", "ratio", "min", "median", "max", "target",
        "figures (median)"));
    Map<String, Object> ratios = (Map<String, Object>) r.get("ratios");
    for (Ratio q : RATIOS) {
      Map<String, Object> m = (Map<String, Object>) ratios.get(q.key());
      Map<String, Object> num = (Map<String, Object>) m.get(q.numerator());
      Map<String, Object> den = (Map<String, Object>) m.get(q.denominator());
      lines.add(String.format(Locale.ROOT, "%-24s %8s %8s %8s  %-8s %s %s / %s %s %s", q.key(), m.get("min"),
          m.get("median"), m.get("max"), q.targetText() + (Boolean.TRUE.equals(m.get("target_met")) ? "" : " MISSED"),
          q.numerator(), num.get("median"), q.denominator(), den.get("median"), ""));
    }
    lines.add("all_targets_met: " + r.get("all_targets_met"));
    return lines;
  }

  static Map<String, Object> spread(List<Double> v, int digits) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("min", round(min(v), digits));
    m.put("median", round(median(v), digits));
    m.put("max", round(max(v), digits));
    return m;
  }

  static double round(double value, int digits) {
    double scale = Math.pow(10, digits);
    return Math.round(value * scale) / scale;
  }

  static double median(List<Double> v) {
    return ClientCopyBench.median(v);
  }

  static double min(List<Double> v) {
    return ClientCopyBench.min(v);
  }

  static double max(List<Double> v) {
    return ClientCopyBench.max(v);
  }

  private static void deleteQuietly(Path dir) {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> files = Files.walk(dir)) {
      for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      // best effort: what is left is in the temporary directory the run named
    }
  }
}
