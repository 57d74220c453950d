package dev.shade.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code shade bench}: measurements of shade on this machine. {@link ShadeBench} puts it in place
 * of the product jar's stub, under the product's root command and its failure handling.
 */
@Command(
    name = "bench",
    header = "Measure shade on this machine.",
    mixinStandardHelpOptions = true,
    subcommands = {BenchCommand.Cow.class, BenchCommand.Nbd.class, BenchCommand.Client.class, BenchCommand.Agent.class,
        BenchCommand.Freeze.class, BenchCommand.Backup.class})
public final class BenchCommand implements Callable<Integer> {
  /** Exit code of a command that did what was asked. */
  private static final int OK = 0;

  /** Writes the JSON documents of the benchmarks. */
  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /** This command's model, injected by picocli; names the subcommands. */
  @Spec CommandSpec spec;

  /** Run alone, it is a usage error naming the benchmarks. */
  @Override
  public Integer call() {
    throw new ParameterException(spec.commandLine(),
        "missing command: choose one of " + String.join(", ", spec.subcommands().keySet()));
  }

  /** What every benchmark shares: output streams, usage errors, progress lines, the JSON document. */
  abstract static class Leaf implements Callable<Integer> {
    /** This command's model, injected by picocli: its streams and its name. */
    @Spec CommandSpec spec;

    PrintWriter out() {
      return spec.commandLine().getOut();
    }

    PrintWriter err() {
      return spec.commandLine().getErr();
    }

    /** A usage error (exit 2) naming what is wrong with the command line. */
    ParameterException usage(String message) {
      return new ParameterException(spec.commandLine(), message);
    }

    /** Prints nested results as aligned rows of dotted keys and values. */
    void printRows(Map<?, ?> results) {
      BenchCommand.printRows(out(), results);
    }

    /** A progress line on stderr, "bench: " first. */
    void progress(String line) {
      err().println("bench: " + line);
      err().flush();
    }

    /** Prints {@code document} as the one JSON document of this command's standard output. */
    void printJson(Object document) {
      try {
        out().println(JSON.writeValueAsString(document));
      } catch (JsonProcessingException e) {
        throw new UncheckedIOException(e);
      }
      out().flush();
    }
  }
  /** {@code shade bench cow}. */
  @Command(
      name = "cow",
      header = "Measure the copy-on-write write path against plain file writes.",
      description = {
        "Writes the same data to a plain file and to a shade volume with one and with many "
            + "snapshots, and times snapshot creation under load, in a temporary directory under "
            + "/var/tmp (a real disk, not tmpfs). Takes a minute or two. Java system properties "
            + "shade.bench.dir, shade.bench.mib, shade.bench.rounds and shade.bench.creates "
            + "change the defaults (with bin/shade: SHADE_JAVA_OPTS=-Dshade.bench.dir=...)."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade bench cow", "  shade bench cow --json > cow.json"})
  static final class Cow extends Leaf {
    @Option(names = "--json", description = "Print the results as one JSON object.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      Map<String, Object> results = CowBench.run(this::progress);
      if (json) {
        printJson(results);
        return OK;
      }
      printRows(results);
      return OK;
    }
  }

  /** {@code shade bench backup}. */
  @Command(
      name = "backup",
      header = "Measure off-host image backups and restores against nbdcopy, tar | zstd and nbdkit.",
      description = {
        "Writes a volume of --size (database pages, text, incompressible blobs, holes) in a temporary "
            + "directory under /var/tmp, serves it with 'shade agent' over NBD on a Unix socket, and in each of "
            + "--rounds rounds: copies a snapshot with nbdcopy, backs it up in full to a virtual tape library, "
            + "runs tar -cf - | zstd -1 and nbdkit file + nbdcopy on the same data, restores the full, then 23 "
            + "times changes 1%% of the volume's blocks through the origin export, snapshots and backs up an "
            + "incremental, and restores the chain of 24. Prints six ratios, each with its two figures "
            + "(min, median and max over the rounds) and whether it meets its target: full_vs_nbdcopy, "
            + "incr1pct_vs_full, restore_chain24_vs_full, restore_vs_full_backup, prod_cpu_vs_tar, "
            + "prod_cpu_vs_nbdkit. Needs nbdcopy (libnbd-bin), nbdkit, zstd and tar. The Java system property "
            + "shade.bench.dir puts the directory elsewhere.",
        "See bench/README.md and docs/performance.md."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade bench backup",
        "  shade bench backup --size 256M --rounds 1",
        "  shade bench backup --json > backup.json"
      })
  static final class Backup extends Leaf {
    @Option(names = "--json", description = "Print the results as one JSON object: {\"ratios\": {RATIO: {\"min\", "
        + "\"median\", \"max\", \"target\", \"target_met\", FIGURE: {...}, FIGURE: {...}, ...}}, "
        + "\"all_targets_met\", \"per_round\", ...}.")
    boolean json;

    @Option(names = "--size", paramLabel = "SIZE", defaultValue = "2G", converter = ByteSize.class,
        description = "Size of the volume (K, M, G: powers of 1024); 80%% of it holds data.")
    long size;

    @Option(names = "--rounds", paramLabel = "N", defaultValue = "3",
        description = "Rounds: each measures every figure once (a full, 23 incrementals, two restores).")
    int rounds;

    @Option(names = "--chunk-size", paramLabel = "SIZE", defaultValue = "64K", converter = ByteSize.class,
        description = "Bytes per archive chunk of the backups (shade backup run --chunk-size); the default is "
            + "the volume's block, the unit of changed-block tracking: with 4M chunks 1%% of scattered blocks "
            + "touch most chunks, and an incremental reads most of the volume.")
    long chunkSize;

    @Option(names = "--block-size", paramLabel = "SIZE", defaultValue = "64K", converter = ByteSize.class,
        description = "Copy-on-write block of the volume, the unit of the changed blocks (4K to 1M).")
    long blockSize;

    @Option(names = "--compress", paramLabel = "ALG", defaultValue = "none",
        description = "none or zstd[:LEVEL] (1..19, default 3): the backups' compression, as shade backup run "
            + "--compress (default: ${DEFAULT-VALUE}).")
    String compress;

    @Option(names = "--checksum", paramLabel = "ALG", defaultValue = "crc32c",
        description = "crc32c or sha256: the chunks' checksum, as shade backup run --checksum (default: "
            + "${DEFAULT-VALUE}).")
    String checksum;

    @Override
    public Integer call() throws Exception {
      int zstdLevel;
      if (compress.equals("none")) {
        zstdLevel = 0;
      } else if (compress.matches("zstd(:(1[0-9]|[1-9]))?")) {
        zstdLevel = compress.equals("zstd") ? 3 : Integer.parseInt(compress.substring(5));
      } else {
        throw usage("--compress must be none, zstd or zstd:LEVEL (1..19): " + compress);
      }
      if (size < (16 << 20) || size % (1 << 20) != 0) {
        throw usage("--size must be a whole number of MiB, at least 16M: " + size);
      }
      if (rounds < 1 || rounds > 100) {
        throw usage("--rounds must be from 1 to 100: " + rounds);
      }
      BackupBench.Settings settings;
      try {
        settings = new BackupBench.Settings(Path.of(System.getProperty("shade.bench.dir", "/var/tmp")), size, rounds,
            (int) Math.min(Integer.MAX_VALUE, chunkSize), (int) Math.min(Integer.MAX_VALUE, blockSize), zstdLevel,
            dev.shade.offhost.backup.ChunkChecksum.parse(checksum));
      } catch (IllegalArgumentException e) {
        throw usage(e.getMessage());
      }
      Map<String, Object> results = BackupBench.run(settings, this::progress);
      if (json) {
        printJson(results);
      } else {
        BackupBench.table(results).forEach(out()::println);
        out().flush();
      }
      return OK;
    }
  }

  /** Prints nested results as aligned rows of dotted keys and values. */
  static void printRows(PrintWriter out, Map<?, ?> results) {
    List<String[]> rows = new ArrayList<>();
    flatten("", results, rows);
    int width = rows.stream().mapToInt(r -> r[0].length()).max().orElse(0);
    for (String[] row : rows) {
      out.printf("%-" + width + "s  %s%n", row[0], row[1]);
    }
    out.flush();
  }

  /** Turns nested maps into rows of dotted keys, e.g. {@code targets_met.rewrite_vs_raw}. */
  private static void flatten(String prefix, Map<?, ?> map, List<String[]> rows) {
    for (Map.Entry<?, ?> e : map.entrySet()) {
      String key = prefix + e.getKey();
      Object value = e.getValue();
      if (value instanceof Map<?, ?> nested) {
        flatten(key + ".", nested, rows);
      } else if (value instanceof Collection<?> list) {
        rows.add(new String[] {key, String.join(", ", list.stream().map(String::valueOf).toList())});
      } else {
        rows.add(new String[] {key, String.valueOf(value)});
      }
    }
  }

  /** {@code shade bench nbd}. */
  @Command(
      name = "nbd",
      header = "Measure shade's NBD server against nbdkit and qemu-nbd with fio.",
      description = {
        "Runs fio's nbd engine (iodepth 16) for --seconds per job: seqwrite 1 MiB, randwrite 4 KiB, "
            + "randread 4 KiB, seqread 1 MiB, against 1 GiB exports of nbdkit's file plugin, qemu-nbd on "
            + "a raw file and on the top of a chain of 8 qcow2 snapshots, and shade's server (in this "
            + "process, on a Unix socket) on a volume without snapshots, one with 8, and the oldest of "
            + "those snapshots (read jobs only). Targets run interleaved, --rounds times; the table "
            + "shows medians with min and max. A target whose tools are missing is skipped with the "
            + "reason. Everything lives in a temporary directory under /var/tmp, deleted at the end; "
            + "needs fio and about 10 GiB there. Java system properties shade.bench.dir, "
            + "shade.bench.nbd.mib and shade.bench.nbd.targets (comma-separated) change the defaults.",
        "See bench/nbd.md for the method."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade bench nbd",
        "  shade bench nbd --seconds 10 --rounds 3 --json > nbd.json",
        "  SHADE_JAVA_OPTS=-Dshade.bench.nbd.targets=shade_origin,qemu_nbd_raw bin/shade bench nbd"
      })
  static final class Nbd extends Leaf {
    @Option(names = "--json", description = "Print the results as one JSON object: {\"jobs\": {JOB: {\"shade_mibs\", "
        + "\"vs_qemu_nbd_raw\", \"vs_nbdkit_file\", \"snap8_vs_qcow2_chain8\", ..., \"targets\"}}, \"environment\"}.")
    boolean json;

    @Option(names = "--seconds", paramLabel = "N", defaultValue = "5", description = "How long each fio job runs.")
    int seconds;

    @Option(names = "--rounds", paramLabel = "N", defaultValue = "2",
        description = "How many times every job runs on every target, interleaved.")
    int rounds;

    @Override
    public Integer call() throws Exception {
      if (seconds < 1 || seconds > 3600) {
        throw usage("--seconds must be from 1 to 3600: " + seconds);
      }
      if (rounds < 1 || rounds > 100) {
        throw usage("--rounds must be from 1 to 100: " + rounds);
      }
      NbdBench.Settings settings;
      try {
        settings = NbdBench.Settings.of(seconds, rounds);
      } catch (IllegalArgumentException e) {
        throw usage(e.getMessage());
      }
      Map<String, Object> results = NbdBench.run(settings, this::progress);
      if (json) {
        printJson(results);
      } else {
        NbdBench.table(results).forEach(out()::println);
        out().flush();
      }
      return OK;
    }
  }

  /** {@code shade bench client}. */
  @Command(
      name = "client",
      header = "Measure shade's NBD client against nbdcopy copying an nbdkit export.",
      description = {
        "Serves --size of random (non-sparse) data with nbdkit's file plugin on a Unix socket and "
            + "copies it into a file, alternately with nbdcopy and with shade's client "
            + "(dev.shade.nbd.client.ExportCopier), with the same --connections, 256 KiB requests and "
            + "64 requests in flight per connection: 2 untimed copies of each, then --runs timed pairs. "
            + "Prints each side's MiB/s (min, median, max) and shade's ratio to nbdcopy, as the median "
            + "of the paired runs' ratios and as the ratio of the medians (target: 0.9 or more). Source "
            + "and copies live in a temporary directory under /dev/shm (tmpfs: the clients are "
            + "measured, not a disk), deleted at the end; needs twice --size free there. The Java "
            + "system property shade.bench.client.dir puts it elsewhere. Needs nbdkit and nbdcopy "
            + "(Debian: nbdkit, libnbd-bin).",
        "See bench/README.md."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade bench client",
        "  shade bench client --size 256M --runs 11 --json > client.json",
        "  shade bench client --connections 1"
      })
  static final class Client extends Leaf {
    @Option(names = "--json", description = "Print the results as one JSON object: {\"ratio_paired_median\", "
        + "\"ratio_of_medians\", \"target_met\", \"nbdcopy_mib_s\", \"shade_mib_s\", ...}.")
    boolean json;

    @Option(names = "--size", paramLabel = "SIZE", defaultValue = "1G", converter = ByteSize.class,
        description = "Size of the export copied (K, M, G: powers of 1024).")
    long size;

    @Option(names = "--runs", paramLabel = "N", defaultValue = "5",
        description = "Timed copies of each client, in pairs.")
    int runs;

    @Option(names = "--connections", paramLabel = "N", defaultValue = "4",
        description = "NBD connections of each client (nbdcopy -C).")
    int connections;

    @Override
    public Integer call() throws Exception {
      if (size < (1 << 20) || size % (1 << 20) != 0) {
        throw usage("--size must be a whole number of MiB, at least 1M: " + size);
      }
      if (runs < 1 || runs > 1000) {
        throw usage("--runs must be from 1 to 1000: " + runs);
      }
      if (connections < 1 || connections > 64) {
        throw usage("--connections must be from 1 to 64: " + connections);
      }
      Path dir = Path.of(System.getProperty("shade.bench.client.dir", "/dev/shm"));
      ClientCopyBench.Settings settings = new ClientCopyBench.Settings(dir, size, runs, connections,
          ClientCopyBench.REQUEST_SIZE, ClientCopyBench.REQUESTS);
      Map<String, Object> results = ClientCopyBench.run(settings, this::progress);
      if (json) {
        printJson(results);
        return OK;
      }
      printRows(results);
      return OK;
    }
  }

  /** {@code shade bench agent}. */
  @Command(
      name = "agent",
      header = "Measure snapshot creation through a running agent, with and without a write load.",
      description = {
        "Creates a volume of --size (filled with random data) in a temporary directory under /var/tmp, "
            + "starts 'shade agent' on it as a child process (NBD on a Unix socket, its own control "
            + "socket) and, on one control connection, times every snapshot-create end to end: "
            + "--snapshots of them with nothing else running, then as many while fio writes to the "
            + "volume over NBD (random 4 KiB writes, iodepth 16), spread evenly over --seconds. fio "
            + "also runs alone for --seconds before and after, so its write IOPS with and without "
            + "snapshots being taken compare side by side. Keeps the " + AgentBench.KEEP + " newest "
            + "snapshots, deleting older ones as it goes. Prints p50, p90, p99 and max of creation "
            + "latency under load (target: p99 10 ms or less) and idle, and fio's IOPS and write "
            + "latency in each phase. Needs fio with its nbd engine; takes about 3 x --seconds plus "
            + "10 s. The Java system property shade.bench.dir puts the directory elsewhere.",
        "See bench/README.md."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade bench agent",
        "  shade bench agent --snapshots 200 --seconds 40 --json > agent.json",
        "  shade bench agent --fsync 64",
        "  SHADE_JAVA_OPTS=-Dshade.bench.dir=/srv/tmp bin/shade bench agent --size 1G"
      })
  static final class Agent extends Leaf {
    @Option(names = "--json", description = "Print the results as one JSON object: {\"create_under_load_ms\": "
        + "{\"p50\", \"p90\", \"p99\", \"max\", ...}, \"create_idle_ms\", \"target_met\", \"fio_write_iops\", ...}.")
    boolean json;

    @Option(names = "--snapshots", paramLabel = "N", defaultValue = "100",
        description = "Snapshots timed idle, and as many under load.")
    int snapshots;

    @Option(names = "--size", paramLabel = "SIZE", defaultValue = "256M", converter = ByteSize.class,
        description = "Size of the volume (K, M, G: powers of 1024).")
    long size;

    @Option(names = "--seconds", paramLabel = "N", defaultValue = "20",
        description = "How long each fio phase runs (after a 1 s ramp).")
    int seconds;

    @Option(names = "--fsync", paramLabel = "N", defaultValue = "0",
        description = "fio flushes after every N writes (fio --fsync=N), as a database's commits do; "
            + "0: only once, at the end of each phase.")
    int fsync;

    @Option(names = "--block-size", paramLabel = "SIZE", defaultValue = "64K", converter = ByteSize.class,
        description = "Copy-on-write block of the volume (4K to 1M, a power of two; the default of shade volume "
            + "create is 64K). Under 4 KiB random writes every first write after a snapshot copies one block.")
    long blockSize;

    @Override
    public Integer call() throws Exception {
      if (size < (16 << 20) || size % (1 << 20) != 0) {
        throw usage("--size must be a whole number of MiB, at least 16M: " + size);
      }
      if (snapshots < 1 || snapshots > 100_000) {
        throw usage("--snapshots must be from 1 to 100000: " + snapshots);
      }
      if (seconds < 2 || seconds > 3600) {
        throw usage("--seconds must be from 2 to 3600: " + seconds);
      }
      if (fsync < 0) {
        throw usage("--fsync must not be negative: " + fsync);
      }
      AgentBench.Settings settings = new AgentBench.Settings(
          Path.of(System.getProperty("shade.bench.dir", "/var/tmp")), size, snapshots, seconds, fsync, (int) blockSize);
      Map<String, Object> results = AgentBench.run(settings, this::progress);
      if (json) {
        printJson(results);
      } else {
        AgentBench.table(results).forEach(out()::println);
        out().flush();
      }
      return OK;
    }
  }

  /** {@code shade bench freeze}. */
  @Command(
      name = "freeze",
      header = "Measure how long a live PostgreSQL's filesystems stay frozen, bare and in snapshots.",
      description = {
        "Creates two sparse volumes of --size (data, wal) in a temporary directory under /var/tmp, starts "
            + "'shade agent' on them, puts ext4 on each through nbdfuse and a loop device, and runs a "
            + "PostgreSQL 15 cluster with its data directory on the first and its WAL on the second "
            + "(pgbench -i -s --scale). Then four pgbench phases of --seconds each (--clients clients): "
            + "alone; with --rounds bare freezes (fsfreeze -f on both mounts, then -u), each timed from "
            + "the first freeze to the last thaw; with --rounds 'shade snapshot create DATA WAL --json' "
            + "commands (each a new process, with a --writer per entry of --writers), recording their "
            + "wall time and the \"freezeMs\" of their result when present; alone again. Prints p50, "
            + "p99, min and max of each, and pgbench's tps in each phase with the ratios to the mean of "
            + "the two phases alone. Needs root, /dev/fuse, nbdfuse (libnbd-bin), util-linux, e2fsprogs and "
            + "postgresql-15; fails naming what is missing. The Java system property shade.bench.dir "
            + "puts the directory elsewhere.",
        "In --writers, {data} and {wal} stand for the two mount points, {pgdata} for the data "
            + "directory, {port} for the server's TCP port and {sqlite} for the database file of --sqlite."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade bench freeze",
        "  shade bench freeze --rounds 20 --seconds 40 --json > freeze.json",
        "  shade bench freeze --writers 'fs:{data},fs:{wal}'",
        "  shade bench freeze --sync-first",
        "  shade bench freeze --sqlite --writers 'sqlite:{sqlite},fs:{data},fs:{wal}' --via cli,control",
        "  shade bench freeze --sqlite --writers 'sqlite:{sqlite},fs:{data},fs:{wal}' --via paired --rounds 100 --seconds 200"
      })
  static final class Freeze extends Leaf {
    @Option(names = "--json", description = "Print the results as one JSON object: {\"bare_freeze_ms\": {\"p50\", "
        + "\"p99\", \"min\", \"max\", ...}, \"snapshot_freeze_ms\", \"snapshot_command_ms\", \"pgbench_tps\", ...}.")
    boolean json;

    @Option(names = "--rounds", paramLabel = "N", defaultValue = "10",
        description = "Bare freezes, and as many snapshots, each spread over a pgbench phase.")
    int rounds;

    @Option(names = "--seconds", paramLabel = "N", defaultValue = "20", description = "How long each pgbench phase runs.")
    int seconds;

    @Option(names = "--size", paramLabel = "SIZE", defaultValue = "1G", converter = ByteSize.class,
        description = "Size of each volume (sparse; K, M, G: powers of 1024).")
    long size;

    @Option(names = "--clients", paramLabel = "N", defaultValue = "4", description = "pgbench clients (and threads).")
    int clients;

    @Option(names = "--scale", paramLabel = "N", defaultValue = "10", description = "pgbench -i scale factor.")
    int scale;

    @Option(names = "--writers", paramLabel = "SPEC[,SPEC...]", split = ",", defaultValue = "",
        description = "Writers for the snapshots (--writer SPEC each), e.g. fs:{data},fs:{wal}; none by default.")
    List<String> writers;

    @Option(names = "--sync-first", description = "Run 'sync -f' on both mounts just before each bare freeze, "
        + "timed apart (sync_before_freeze_ms): how much of the window is writing back dirty pages.")
    boolean syncFirst;

    @Option(names = "--sqlite", description = "Run an SQLite load (WAL mode, a commit every 5 ms) on the data "
        + "filesystem from start to end; {sqlite} in --writers names its database file (e.g. sqlite:{sqlite}).")
    boolean sqlite;

    @Option(names = "--via", paramLabel = "cli|control|paired[,...]", split = ",", defaultValue = "cli",
        description = "How the snapshots are taken, each in a pgbench phase of its own: cli (a 'shade snapshot "
            + "create' process each, default), control (snapshot-create commands on one control connection to "
            + "the agent, so no JVM start per snapshot), paired (control snapshots alternating with bare freezes "
            + "in one phase, so both windows see the same load: paired_* results with each pair's difference); "
            + "several with commas.")
    List<String> via;

    @Override
    public Integer call() throws Exception {
      FreezeBench.Settings settings;
      try {
        settings = new FreezeBench.Settings(Path.of(System.getProperty("shade.bench.dir", "/var/tmp")), size, rounds,
            seconds, clients, scale, writers.stream().filter(w -> !w.isBlank()).toList(), syncFirst, sqlite, via);
      } catch (IllegalArgumentException e) {
        throw usage(e.getMessage());
      }
      Map<String, Object> results = FreezeBench.run(settings, this::progress);
      if (json) {
        printJson(results);
        return OK;
      }
      printRows(results);
      return OK;
    }
  }
}
