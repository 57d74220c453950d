package dev.shade.bench;

import java.io.Closeable;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A PostgreSQL 15 cluster for the freeze benchmark: its data directory on one filesystem and its
 * WAL on another ({@code initdb --waldir}), run as the user postgres on a free 127.0.0.1 port,
 * loaded with pgbench.
 *
 * <p>Not thread-safe: one thread drives it (close may also come from a shutdown hook, which is
 * why it is synchronized).
 */
final class BenchPostgres implements Closeable {
  /** Where Debian's PostgreSQL 15 keeps its programs. */
  static final Path BIN = Path.of("/usr/lib/postgresql/15/bin");
  /** The programs the benchmark runs from {@link #BIN}. */
  static final List<String> PROGRAMS = List.of("initdb", "pg_ctl", "postgres", "pgbench");
  /** A pgbench client's abort line or pgbench's own error line. */
  private static final Pattern ABORT = Pattern.compile("aborted|error:");
  /** An error, a fatal error or a panic in the server's log. */
  private static final Pattern SERVER_ERROR = Pattern.compile("(ERROR|FATAL|PANIC):");
  /** pgbench's result line. */
  private static final Pattern TPS = Pattern.compile("tps = ([0-9.]+) \\(without initial connection time\\)");
  /** Bounds initdb, pg_ctl and pgbench -i. */
  private static final Duration STEP = Duration.ofSeconds(300);

  /** The data directory. */
  final Path dataDir;
  /** Holds the server's Unix socket, its log and pgbench's output; owned by postgres. */
  private final Path runDir;
  /** The TCP port. */
  final int port;
  /** True while the server runs. */
  private boolean running;

  private BenchPostgres(Path dataDir, Path runDir, int port) {
    this.dataDir = dataDir;
    this.runDir = runDir;
    this.port = port;
  }

  /**
   * initdb on {@code dataDir} with the WAL in {@code walDir}, a filesystem of about
   * {@code walFilesystemBytes}, then starts the server; the caller made the parents traversable.
   * The WAL is kept to a quarter of that filesystem ({@code max_wal_size}): PostgreSQL's default
   * of 1 GB, with the segments it recycles kept for reuse, fills a 1 GiB WAL filesystem over a
   * long run under pgbench, and the server then stops with a PANIC ("No space left on device")
   * that aborts every pgbench client.
   */
  static BenchPostgres start(Path dataDir, Path walDir, long walFilesystemBytes, Path runDir)
      throws IOException, InterruptedException {
    for (Path d : List.of(dataDir, walDir, runDir)) {
      Files.createDirectories(d);
      require(runDir.getParent(), List.of("chown", "postgres:postgres", d.toString()));
      require(runDir.getParent(), List.of("chmod", "0700", d.toString()));
    }
    BenchPostgres pg = new BenchPostgres(dataDir, runDir, freePort());
    pg.asPostgres("initdb", "-D", dataDir.toString(), "--waldir", walDir.toString(), "-A", "trust", "-U", "postgres",
        "-E", "UTF8", "--locale=C", "--no-instructions");
    pg.running = true; // from here on close() stops it, even if the start below fails half way
    pg.asPostgres("pg_ctl", "-D", dataDir.toString(), "-l", runDir.resolve("postgresql.log").toString(), "-w", "-t",
        "120", "-o", "-c listen_addresses=127.0.0.1 -p " + pg.port + " -k " + runDir + " -c max_wal_size="
        + maxWalMegabytes(walFilesystemBytes) + "MB", "start");
    return pg;
  }

  /** {@code max_wal_size} in MB for a WAL filesystem of {@code bytes}: a quarter of it, at least 32 MB. */
  static long maxWalMegabytes(long bytes) {
    return Math.max(32, bytes / 4 / (1 << 20));
  }

  /** {@code pgbench -i -s scale}. */
  void init(int scale) throws IOException, InterruptedException {
    require(runDir, client("-i", "-s", String.valueOf(scale), "-q", "postgres"));
  }

  /** Starts pgbench's TPC-B-like load: {@code clients} clients and threads for {@code seconds}. */
  Process load(int clients, int seconds, String label) throws IOException {
    return Programs.start(runDir, runDir.resolve("pgbench-" + label + ".log"), client("-n", "-c",
        String.valueOf(clients), "-j", String.valueOf(clients), "-T", String.valueOf(seconds), "postgres"));
  }

  /** Waits for a load to end and returns its tps; fails with its output if it failed. */
  double tps(Process load, String label, int seconds) throws IOException, InterruptedException {
    Path log = runDir.resolve("pgbench-" + label + ".log");
    if (!load.waitFor(seconds + 60L, java.util.concurrent.TimeUnit.SECONDS)) {
      Programs.kill(load);
      throw new IOException("pgbench (" + label + ") did not finish: " + Programs.tail(log, 5));
    }
    String out = Files.readString(log);
    Matcher m = TPS.matcher(out);
    if (load.exitValue() != 0 || !m.find()) {
      throw new IOException("pgbench (" + label + ") exited " + load.exitValue() + ": " + Programs.tail(log, 5)
          + why(log));
    }
    return Double.parseDouble(m.group(1));
  }

  /** Why a pgbench run failed: its clients' abort lines and the server's errors, when there are any. */
  private String why(Path log) {
    String clients = Programs.matching(log, ABORT, 4);
    String server = Programs.matching(runDir.resolve("postgresql.log"), SERVER_ERROR, 4);
    return (clients.isEmpty() ? "" : "; its clients: " + clients) + (server.isEmpty() ? "" : "; the server: " + server);
  }

  /** The pgbench command line on this server, with {@code args}. */
  List<String> client(String... args) {
    List<String> argv = new ArrayList<>(List.of(BIN.resolve("pgbench").toString(), "-h", "127.0.0.1", "-p",
        String.valueOf(port), "-U", "postgres"));
    argv.addAll(List.of(args));
    return argv;
  }

  /** Stops the server (fast; immediate if that fails). */
  @Override
  public synchronized void close() throws IOException {
    if (!running) {
      return;
    }
    running = false;
    try {
      Programs.Result r = Programs.run(runDir, Duration.ofSeconds(60), asPostgresArgv("pg_ctl", "-D",
          dataDir.toString(), "-w", "-m", "fast", "stop"));
      if (!r.ok()) {
        Programs.run(runDir, Duration.ofSeconds(60), asPostgresArgv("pg_ctl", "-D", dataDir.toString(), "-w", "-m",
            "immediate", "stop"));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while stopping " + this, e);
    }
  }

  private void asPostgres(String program, String... args) throws IOException, InterruptedException {
    require(runDir, asPostgresArgv(program, args));
  }

  private static List<String> asPostgresArgv(String program, String... args) {
    List<String> argv = new ArrayList<>(List.of("runuser", "-u", "postgres", "--", BIN.resolve(program).toString()));
    argv.addAll(List.of(args));
    return argv;
  }

  private static void require(Path dir, List<String> command) throws IOException, InterruptedException {
    Programs.Result r = Programs.run(dir, STEP, command);
    if (!r.ok()) {
      throw new IOException(r.failure());
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  @Override
  public String toString() {
    return "PostgreSQL on " + dataDir + " (port " + port + ")";
  }
}
