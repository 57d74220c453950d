package dev.shade.testing.live;

import dev.shade.testing.Command;
import dev.shade.testing.Tools;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A PostgreSQL 15 cluster run as the {@code postgres} user for an end-to-end test: initdb (with
 * the WAL on another filesystem if asked), start on a free 127.0.0.1 port with its Unix socket
 * in a directory of the test's, psql and JDBC, pgbench load, pg_amcheck, a {@link Counter}, and
 * stop. Works as well on a copy of a cluster's directories (a restored snapshot), which starts
 * with crash recovery.
 *
 * <p>Not thread-safe: one test drives it; {@link Counter} and {@link PgBench} run in the
 * background on connections of their own. A JVM shutdown hook stops a server the test did not.
 */
public final class LivePostgres implements AutoCloseable {
  /*
   * The server refuses to run as root, so initdb and pg_ctl run through `runuser -u postgres`,
   * on directories chowned to it (and every directory above them made traversable by others,
   * since a test's temporary directory is 0700). Clients (psql, pgbench, pg_amcheck, JDBC)
   * run as root and connect over TCP as the database user postgres with trust authentication.
   * The port is taken free from the kernel and released just before the server binds it: a
   * small race with other processes on the machine, which shows as a start failure naming it.
   */

  /** Where Debian's PostgreSQL 15 keeps its programs. */
  public static final Path BIN = Path.of("/usr/lib/postgresql/15/bin");
  /** The operating system user (and database superuser) the server runs as. */
  public static final String USER = "postgres";

  /** The data directory. */
  private final Path dataDir;
  /** Holds the server's Unix socket and log; owned by postgres. */
  private final Path runDir;
  /** The TCP port while it runs (a new one at each start). */
  private int port;
  /** True while the server runs. */
  private boolean running;

  private LivePostgres(Path dataDir, Path runDir) {
    this.dataDir = dataDir.toAbsolutePath();
    this.runDir = runDir.toAbsolutePath();
  }

  /**
   * Skips the calling test (fails it under {@code CI=true}) unless this process is root (to run
   * the server as postgres), PostgreSQL 15's programs are in {@link #BIN}, the user postgres
   * exists and runuser is installed.
   */
  public static void requireTools() throws IOException, InterruptedException {
    Tools.requireRoot("run PostgreSQL as the user postgres");
    Tools.require("runuser", "util-linux");
    for (String p : List.of("initdb", "pg_ctl", "postgres", "psql", "pgbench", "pg_amcheck")) {
      Tools.requireThat(Files.isExecutable(BIN.resolve(p)),
          () -> BIN.resolve(p) + " is missing (Debian: apt-get install postgresql-15; bin/test installs it)");
    }
    Tools.requireThat(Command.run("id", "-u", USER).exitCode() == 0,
        () -> "there is no user " + USER + " (Debian: apt-get install postgresql-15 creates it)");
  }

  /**
   * Creates a cluster in {@code dataDir} (created if missing; must be empty), its WAL in
   * {@code walDir} when not null ({@code initdb --waldir}: {@code pg_wal} becomes a symbolic
   * link to that absolute path), with trust authentication, UTF-8 and the C locale. The server's
   * socket and log go in {@code runDir}. Not started.
   */
  public static LivePostgres initdb(Path dataDir, Path walDir, Path runDir) throws IOException, InterruptedException {
    LivePostgres pg = new LivePostgres(dataDir, runDir);
    pg.prepare(pg.dataDir);
    pg.prepare(pg.runDir);
    List<String> argv = new ArrayList<>(List.of("-D", pg.dataDir.toString()));
    if (walDir != null) {
      pg.prepare(walDir.toAbsolutePath());
      argv.addAll(List.of("--waldir", walDir.toAbsolutePath().toString()));
    }
    argv.addAll(List.of("-A", "trust", "-U", USER, "-E", "UTF8", "--locale=C", "--no-instructions"));
    pg.asPostgres("initdb", argv).requireSuccess();
    return pg;
  }

  /**
   * A cluster whose data directory is already there: a copy of another one (from a snapshot),
   * or one that crashed. Its {@code postmaster.pid} is removed (in a copy it names the
   * original's server, which may still be running with that pid, and the copy would refuse to
   * start); refused when a live server runs in this very directory. When {@code walDir} is
   * not null, {@code pg_wal} is made a symbolic link to it (the copy of the original's WAL
   * directory, mounted somewhere else than the original). Not started.
   */
  public static LivePostgres existing(Path dataDir, Path walDir, Path runDir) throws IOException, InterruptedException {
    LivePostgres pg = new LivePostgres(dataDir, runDir);
    if (!Files.isRegularFile(pg.dataDir.resolve("PG_VERSION"))) {
      throw new IOException("not a PostgreSQL data directory (no PG_VERSION): " + pg.dataDir);
    }
    pg.prepare(pg.runDir);
    traversable(pg.dataDir.getParent());
    Path pidFile = pg.dataDir.resolve("postmaster.pid");
    if (Files.exists(pidFile)) {
      long pid = Long.parseLong(Files.readAllLines(pidFile).get(0).strip());
      Path cwd = Path.of("/proc", String.valueOf(pid), "cwd");
      // the postmaster's working directory is its data directory
      if (Files.exists(cwd) && Files.isSameFile(cwd, pg.dataDir)) {
        throw new IOException("PostgreSQL (pid " + pid + ") is running on " + pg.dataDir + "; stop it first");
      }
      Files.delete(pidFile);
    }
    if (walDir != null) {
      Path link = pg.dataDir.resolve("pg_wal");
      if (!Files.isSymbolicLink(link) && Files.exists(link, LinkOption.NOFOLLOW_LINKS)) {
        throw new IOException(link + " is a directory, not a link to a WAL directory elsewhere; cannot point it at "
            + walDir);
      }
      Files.deleteIfExists(link);
      Files.createSymbolicLink(link, walDir.toAbsolutePath());
      traversable(walDir.toAbsolutePath().getParent());
      Command.run("chown", "-h", USER + ":" + USER, link.toString()).requireSuccess();
    }
    return pg;
  }

  /**
   * Starts the server on a free 127.0.0.1 port ({@code pg_ctl start -w}) with {@code settings}
   * as more {@code -c name=value} options (e.g. {@code "shared_buffers=64MB"}); waits until it
   * accepts connections (after crash recovery, on a copy).
   */
  public void start(String... settings) throws IOException, InterruptedException {
    if (running) {
      return;
    }
    start(freePort(), settings);
  }

  /**
   * {@link #start(String...)} on the given 127.0.0.1 {@code port} (from {@link #freePort}), for a
   * test that must name the port before the server runs (in a writer spec of an agent's config);
   * nothing if it runs.
   */
  public void start(int port, String... settings) throws IOException, InterruptedException {
    if (running) {
      return;
    }
    this.port = port;
    StringBuilder o = new StringBuilder("-c listen_addresses=127.0.0.1 -p " + port + " -k " + runDir);
    for (String s : settings) {
      o.append(" -c ").append(s);
    }
    Teardown.register(this);
    Command c = asPostgres("pg_ctl", List.of("-D", dataDir.toString(), "-l", log().toString(), "-w", "-t", "120",
        "-o", o.toString(), "start"));
    if (c.exitCode() != 0) {
      Teardown.done(this);
      throw new IOException("PostgreSQL did not start on " + dataDir + " (port " + port + "): " + c + "\n--- "
          + log() + "\n" + logTail());
    }
    running = true;
  }

  /** Stops the server ({@code pg_ctl stop -m fast}; {@code -m immediate} if that fails); nothing if stopped. */
  public void stop() throws IOException, InterruptedException {
    if (!running) {
      return;
    }
    running = false;
    try {
      if (asPostgres("pg_ctl", List.of("-D", dataDir.toString(), "status")).exitCode() == 3) {
        return; // not running (it was stopped or killed behind this object's back)
      }
      Command c = asPostgres("pg_ctl", List.of("-D", dataDir.toString(), "-w", "-t", "60", "-m", "fast", "stop"));
      if (c.exitCode() != 0) {
        Command i = asPostgres("pg_ctl", List.of("-D", dataDir.toString(), "-w", "-m", "immediate", "stop"));
        throw new IOException("PostgreSQL on " + dataDir + " did not stop fast: " + c + "; immediate: " + i);
      }
    } finally {
      Teardown.done(this);
    }
  }

  /**
   * Kills the server as a crash does: SIGKILL to the postmaster and every process it started
   * (by pid, from {@code postmaster.pid}), waiting until they are gone; {@code postmaster.pid}
   * stays behind and the next start runs crash recovery. Nothing if it is not running.
   */
  public void crash() throws IOException, InterruptedException {
    if (!running) {
      return;
    }
    running = false;
    try {
      long pid = Long.parseLong(Files.readAllLines(dataDir.resolve("postmaster.pid")).get(0).strip());
      ProcessHandle postmaster = ProcessHandle.of(pid).orElseThrow(
          () -> new IOException("the postmaster of " + dataDir + " (pid " + pid + ") is not running"));
      List<ProcessHandle> all = new ArrayList<>(postmaster.descendants().toList());
      postmaster.destroyForcibly(); // first, so it starts no new backend
      all.forEach(ProcessHandle::destroyForcibly);
      all.add(postmaster);
      long deadline = System.nanoTime() + 30_000_000_000L;
      for (ProcessHandle h : all) {
        while (h.isAlive()) {
          if (System.nanoTime() > deadline) {
            throw new IOException("process " + h.pid() + " of PostgreSQL on " + dataDir + " outlived SIGKILL by 30 s");
          }
          Thread.sleep(10);
        }
      }
    } finally {
      Teardown.done(this);
    }
  }

  /** The port it listens on while it runs. */
  public int port() {
    return port;
  }

  /** The data directory. */
  public Path dataDir() {
    return dataDir;
  }

  /** True while the server runs. */
  public boolean running() {
    return running;
  }

  /** A JDBC URL for {@code database}, user postgres. */
  public String jdbcUrl(String database) {
    return "jdbc:postgresql://127.0.0.1:" + port + "/" + database + "?user=" + USER;
  }

  /** A new JDBC connection to {@code database}. */
  public Connection connect(String database) throws SQLException {
    return DriverManager.getConnection(jdbcUrl(database));
  }

  /**
   * Runs {@code sql} with psql on {@code database} ({@code -X -A -t -q -v ON_ERROR_STOP=1}) and
   * returns what it printed, stripped; fails with psql's output when it does not exit 0.
   */
  public String psql(String database, String sql) throws IOException, InterruptedException {
    return client("psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql)
        .requireSuccess().strip();
  }

  /** {@code pgbench -i -s scale -q} on the database postgres. */
  public void pgbenchInit(int scale) throws IOException, InterruptedException {
    client("pgbench", "-i", "-s", String.valueOf(scale), "-q", "postgres").requireSuccess();
  }

  /** Starts pgbench's TPC-B-like load on postgres: {@code clients} clients (and threads) for {@code seconds}. */
  public PgBench pgbench(int clients, int seconds) throws IOException {
    List<String> argv = new ArrayList<>(clientArgv("pgbench"));
    argv.addAll(List.of("-n", "-c", String.valueOf(clients), "-j", String.valueOf(clients), "-T",
        String.valueOf(seconds), "postgres"));
    Path log = Files.createTempFile(runDir, "pgbench-", ".log");
    return new PgBench(Background.start(argv, log), seconds);
  }

  /**
   * Checks every table and index of every database with pg_amcheck ({@code --all
   * --install-missing}: the amcheck extension is created where missing) and returns its output;
   * fails with that output when it finds corruption or cannot run.
   */
  public String amcheck() throws IOException, InterruptedException {
    Command c = client("pg_amcheck", "--all", "--install-missing", "--heapallindexed");
    if (c.exitCode() != 0) {
      throw new AssertionError("pg_amcheck on " + dataDir + " found corruption or could not run: " + c);
    }
    return c.output();
  }

  /** Creates the table {@code counter (n bigint)} in {@code database} if missing, and starts a {@link Counter} on it. */
  public Counter counter(String database, long pauseMillis) throws IOException, InterruptedException, SQLException {
    psql(database, "CREATE TABLE IF NOT EXISTS counter (n bigint)");
    return Counter.start(connect(database), "PostgreSQL " + database + " in " + dataDir, pauseMillis);
  }

  /** The highest number in {@code database}'s counter table, 0 when it is empty. */
  public long maxCounter(String database) throws IOException, InterruptedException {
    return Long.parseLong(psql(database, "SELECT coalesce(max(n), 0) FROM counter"));
  }

  /** The server's log file. */
  public Path log() {
    return runDir.resolve("postgresql.log");
  }

  /** Stops the server if it runs. */
  @Override
  public void close() throws IOException, InterruptedException {
    stop();
  }

  @Override
  public String toString() {
    return "PostgreSQL on " + dataDir + (running ? " (port " + port + ")" : " (stopped)");
  }

  /** pgbench running in the background. */
  public static final class PgBench {
    /** tps as pgbench prints it, e.g. {@code tps = 412.345 (without initial connection time)}. */
    private static final Pattern TPS = Pattern.compile("tps = ([0-9.]+) \\(without initial connection time\\)");
    /** The pgbench process. */
    private final Background process;
    /** How long it was told to run. */
    private final int seconds;

    private PgBench(Background process, int seconds) {
      this.process = process;
      this.seconds = seconds;
    }

    /** True while it runs. */
    public boolean running() {
      return process.alive();
    }

    /** Waits for it to finish and returns its transactions per second; fails with its output if it failed. */
    public double await() throws InterruptedException {
      int code = process.await(seconds + 60L);
      if (code != 0) {
        process.stop(1000);
        throw new AssertionError("pgbench " + (code == -1 ? "did not finish" : "exited " + code) + ": " + process
            + "\n" + process.output());
      }
      Matcher m = TPS.matcher(process.output());
      if (!m.find()) {
        throw new AssertionError("no tps in pgbench's output: " + process.output());
      }
      return Double.parseDouble(m.group(1));
    }

    /** Stops it early (SIGTERM). */
    public void kill() throws InterruptedException {
      process.stop(5000);
    }

    @Override
    public String toString() {
      return process.toString();
    }
  }

  // ---------------------------------------------------------------- helpers

  /**
   * Checks the given tables of {@code database} and their indexes with pg_amcheck ({@code -t
   * TABLE ... --install-missing --heapallindexed}), a cheaper check than {@link #amcheck()} for
   * a test that checks many copies; fails with pg_amcheck's output when it finds corruption.
   */
  public String amcheck(String database, String... tables) throws IOException, InterruptedException {
    List<String> args = new ArrayList<>(List.of("-d", database, "--install-missing", "--heapallindexed"));
    for (String t : tables) {
      args.addAll(List.of("-t", t));
    }
    Command c = client("pg_amcheck", args.toArray(String[]::new));
    if (c.exitCode() != 0) {
      throw new AssertionError("pg_amcheck of " + String.join(", ", tables) + " in " + database + " on " + dataDir
          + " found corruption or could not run: " + c);
    }
    return c.output();
  }

  /** Creates {@code dir} if missing, gives it to postgres (mode 0700) and makes its parents traversable. */
  private void prepare(Path dir) throws IOException, InterruptedException {
    Files.createDirectories(dir);
    Command.run("chown", USER + ":" + USER, dir.toString()).requireSuccess();
    Files.setPosixFilePermissions(dir, Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE,
        PosixFilePermission.OWNER_EXECUTE));
    traversable(dir.getParent());
  }

  /** Adds others' execute permission to {@code dir} and every directory above it that lacks it. */
  private static void traversable(Path dir) throws IOException {
    for (Path d = dir; d != null; d = d.getParent()) {
      Set<PosixFilePermission> perms = Files.getPosixFilePermissions(d);
      if (!perms.contains(PosixFilePermission.OTHERS_EXECUTE)) {
        perms.add(PosixFilePermission.OTHERS_EXECUTE);
        Files.setPosixFilePermissions(d, perms);
      }
    }
  }

  private Command asPostgres(String program, List<String> args) throws IOException, InterruptedException {
    List<String> argv = new ArrayList<>(List.of("runuser", "-u", USER, "--", BIN.resolve(program).toString()));
    argv.addAll(args);
    return Command.run(argv, runDir);
  }

  private List<String> clientArgv(String program) {
    return List.of(BIN.resolve(program).toString(), "-h", "127.0.0.1", "-p", String.valueOf(port), "-U", USER);
  }

  private Command client(String program, String... args) throws IOException, InterruptedException {
    List<String> argv = new ArrayList<>(clientArgv(program));
    argv.addAll(List.of(args));
    return Command.run(argv, null);
  }

  private String logTail() {
    try {
      List<String> lines = Files.readAllLines(log());
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }

  /** A TCP port on 127.0.0.1 that is free now. */
  public static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }
}
