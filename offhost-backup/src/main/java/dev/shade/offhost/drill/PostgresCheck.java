package dev.shade.offhost.drill;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * PostgreSQL's own check of a cluster in the copy: the server started on the copy (as the owner
 * of its data directory, on a private port, its Unix socket in the drill's scratch directory,
 * no TCP listener, WAL archiving off), recovering from the backup_label the writer metadata put
 * back; once it accepts connections and has left recovery, {@code pg_amcheck --all} (the amcheck
 * extension installed where missing: the copy is scratch), the rows of the tables asked for, and
 * a fast stop.
 *
 * <p>Thread-safe: immutable.
 */
final class PostgresCheck implements DatabaseCheck {
  /*
   * The server's programs are those of the cluster's major version (PG_VERSION), from
   * /usr/lib/postgresql/MAJOR/bin as Debian installs them, else from PATH. The copy's
   * postmaster.pid names the original's server, so it is removed before the start. A pg_wal
   * that is a link out of the copy (WAL on another volume) cannot be checked from one volume
   * and is refused with that reason.
   */
  private static final Duration START_LIMIT = Duration.ofMinutes(10);
  private static final Duration QUERY_LIMIT = Duration.ofMinutes(5);
  private static final Duration AMCHECK_LIMIT = Duration.ofHours(2);

  /** The spec as given. */
  private final String spec;
  /** The data directory, relative to the copy's root or as on the production host; "" for the backup_label's. */
  private final String dataDir;

  PostgresCheck(String spec, String dataDir) {
    this.spec = spec;
    this.dataDir = dataDir;
  }

  @Override
  public String spec() {
    return spec;
  }

  @Override
  public Verdict run(Path root, WriterFiles metadata, Path work, List<String> counts) throws IOException {
    String rel = dataDir.isEmpty()
        ? metadata.directoryOf("postgres", "backup_label").orElseThrow(() -> new IOException("no PostgreSQL data "
            + "directory named, and the writer metadata holds no backup_label to find it by: give postgres:PGDATA"))
        : metadata.relative(dataDir);
    Path data = root.resolve(rel).normalize();
    if (!data.startsWith(root.normalize()) || !Files.isRegularFile(data.resolve("PG_VERSION"))) {
      throw new IOException("no PostgreSQL data directory " + (dataDir.isEmpty() ? rel : dataDir)
          + " in the copy (no PG_VERSION in " + data + ")");
    }
    String major = Files.readString(data.resolve("PG_VERSION"), StandardCharsets.US_ASCII).strip();
    Path bin = bin(major);
    String owner = Files.getOwner(data, LinkOption.NOFOLLOW_LINKS).getName();
    if (owner.equals("root")) {
      throw new IOException("the data directory " + data + " belongs to root; PostgreSQL does not run as root");
    }
    Path wal = data.resolve("pg_wal");
    if (Files.isSymbolicLink(wal)) {
      throw new IOException(wal + " is a link to " + Files.readSymbolicLink(wal) + ", outside this volume's copy: "
          + "a cluster whose WAL is on another volume cannot be checked from one volume's drill");
    }
    boolean hadLabel = Files.isRegularFile(data.resolve("backup_label"));
    Files.deleteIfExists(data.resolve("postmaster.pid"));
    // the server's socket path (DIR/.s.PGSQL.PORT) must fit sun_path's 107 bytes; a deep scratch
    // directory gets a short private one in /tmp instead
    Path run = work.resolve("pg");
    boolean ownRun = run.toAbsolutePath().toString().length() + "/.s.PGSQL.65535".length() > 107;
    if (ownRun) {
      run = Files.createTempDirectory(Path.of("/tmp"), "shade-drill-pg-");
    } else {
      Files.createDirectories(run);
    }
    try {
      return check(root, data, major, bin, owner, hadLabel, run, counts);
    } finally {
      if (ownRun) {
        Path log = run.resolve("postgresql.log");
        if (Files.exists(log)) {
          Files.move(log, work.resolve("postgresql.log"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        try (var files = Files.list(run)) {
          for (Path f : files.toList()) {
            Files.deleteIfExists(f);
          }
        }
        Files.deleteIfExists(run);
      }
    }
  }

  private Verdict check(Path root, Path data, String major, Path bin, String owner, boolean hadLabel, Path run,
      List<String> counts) throws IOException {
    Programs.require(List.of("chown", owner, run.toString()), QUERY_LIMIT);
    Files.setPosixFilePermissions(run, PosixFilePermissions.fromString("rwx------"));
    Programs.Result reach = Programs.run(asOwner(owner, List.of("test", "-r", data.resolve("PG_VERSION").toString())),
        QUERY_LIMIT);
    if (!reach.ok()) {
      throw new IOException("the user " + owner + " cannot reach " + data + ": make the scratch directory and its "
          + "parents traversable for it (chmod o+x)");
    }
    int port = freePort();
    Path log = run.resolve("postgresql.log");
    String options = "-c listen_addresses='' -p " + port + " -k " + run + " -c archive_mode=off"
        + " -c archive_command='' -c restore_command=''";
    Programs.Result start = Programs.run(asOwner(owner, List.of(bin.resolve("pg_ctl").toString(), "-D",
        data.toString(), "-l", log.toString(), "-w", "-t", String.valueOf(START_LIMIT.toSeconds()), "-o", options,
        "start")), START_LIMIT.plusMinutes(1));
    try {
      if (!start.ok()) {
        throw new IOException("PostgreSQL " + major + " did not start on the copy " + data + ": " + start + "; its log: "
            + Programs.clip(tail(log)));
      }
      awaitRecoveryEnd(bin, owner, run, port);
      String logText = Files.exists(log) ? Files.readString(log) : "";
      String recovery = logText.contains("completed backup recovery") ? "recovered from its backup_label"
          : logText.contains("starting backup recovery") ? "started recovery from its backup_label"
          : hadLabel ? "started with its backup_label" : "crash recovery (no backup_label)";
      Programs.Result amcheck = Programs.run(asOwner(owner, List.of(bin.resolve("pg_amcheck").toString(), "--all",
          "--install-missing", "--heapallindexed", "-h", run.toString(), "-p", String.valueOf(port), "-U", owner)),
          AMCHECK_LIMIT);
      if (!amcheck.ok()) {
        return new Verdict(false, "PostgreSQL " + major + " on " + root.relativize(data) + ": " + recovery
            + "; pg_amcheck --all found corruption or could not run: " + amcheck);
      }
      StringBuilder summary = new StringBuilder("PostgreSQL " + major + " on " + root.relativize(data) + ": " + recovery
          + "; pg_amcheck --all: ok");
      for (String t : counts) {
        String db = t.contains(".") ? t.substring(0, t.indexOf('.')) : "postgres";
        String table = t.contains(".") ? t.substring(t.indexOf('.') + 1) : t;
        String n = psql(bin, owner, run, port, db, "SELECT count(*) FROM " + table);
        summary.append(", ").append(t).append(": ").append(n).append(" rows");
      }
      return new Verdict(true, summary.toString());
    } finally {
      if (start.ok()) {
        stop(bin, owner, data);
      }
    }
  }

  /** Waits until the server has left recovery (pg_is_in_recovery() is false). */
  private static void awaitRecoveryEnd(Path bin, String owner, Path run, int port) throws IOException {
    long deadline = System.nanoTime() + START_LIMIT.toNanos();
    while (true) {
      String r = psql(bin, owner, run, port, "postgres", "SELECT pg_is_in_recovery()");
      if (r.equals("f")) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new IOException("PostgreSQL on the copy is still in recovery after " + START_LIMIT.toMinutes()
            + " minutes (a standby.signal in the copy?)");
      }
      try {
        Thread.sleep(200);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted while waiting for the copy's recovery");
      }
    }
  }

  private static String psql(Path bin, String owner, Path run, int port, String db, String sql) throws IOException {
    Programs.Result r = Programs.run(asOwner(owner, List.of(bin.resolve("psql").toString(), "-X", "-A", "-t", "-q",
        "-v", "ON_ERROR_STOP=1", "-h", run.toString(), "-p", String.valueOf(port), "-U", owner, "-d", db, "-c", sql)),
        QUERY_LIMIT);
    if (!r.ok()) {
      throw new IOException("psql on the copy (" + sql + "): " + r);
    }
    return r.output().strip();
  }

  private static void stop(Path bin, String owner, Path data) throws IOException {
    java.util.Optional<ProcessHandle> postmaster = java.util.Optional.empty();
    try {
      postmaster = ProcessHandle.of(Long.parseLong(Files.readAllLines(data.resolve("postmaster.pid")).get(0).strip()));
    } catch (IOException | RuntimeException e) {
      // no pid file: pg_ctl says what is wrong below
    }
    stopServer(bin, owner, data);
    // pg_ctl returns once the pid file is gone, a moment before the postmaster has exited
    if (postmaster.isPresent()) {
      try {
        postmaster.get().onExit().get(30, java.util.concurrent.TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted while waiting for the copy's server to exit");
      } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
        throw new IOException("the copy's PostgreSQL server (pid " + postmaster.get().pid()
            + ") has not exited 30 s after pg_ctl stopped it");
      }
    }
  }

  private static void stopServer(Path bin, String owner, Path data) throws IOException {
    Programs.Result r = Programs.run(asOwner(owner, List.of(bin.resolve("pg_ctl").toString(), "-D", data.toString(),
        "-w", "-t", "120", "-m", "fast", "stop")), Duration.ofMinutes(3));
    if (!r.ok()) {
      Programs.Result i = Programs.run(asOwner(owner, List.of(bin.resolve("pg_ctl").toString(), "-D",
          data.toString(), "-w", "-m", "immediate", "stop")), Duration.ofMinutes(3));
      if (!i.ok()) {
        throw new IOException("PostgreSQL on the copy " + data + " did not stop: " + r + "; immediate: " + i);
      }
    }
  }

  /** {@code argv} run as {@code owner}: through runuser when this process is root, as it is otherwise. */
  private static List<String> asOwner(String owner, List<String> argv) throws IOException {
    if (!"root".equals(System.getProperty("user.name"))) {
      return argv;
    }
    List<String> out = new ArrayList<>(List.of(Programs.require("runuser", "util-linux"), "-u", owner, "--"));
    out.addAll(argv);
    return out;
  }

  private static Path bin(String major) throws IOException {
    Path debian = Path.of("/usr/lib/postgresql", major, "bin");
    if (Files.isExecutable(debian.resolve("pg_ctl"))) {
      return debian;
    }
    return Programs.find("pg_ctl").map(p -> p.toAbsolutePath().getParent()).orElseThrow(() -> new IOException(
        "PostgreSQL " + major + "'s programs are not installed (no " + debian + "/pg_ctl, none on PATH; Debian: "
            + "apt-get install postgresql-" + major + ")"));
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private static String tail(Path log) {
    try {
      List<String> lines = Files.readAllLines(log);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
    } catch (IOException e) {
      return "(no log: " + e.getMessage() + ")";
    }
  }

  @Override
  public String toString() {
    return spec;
  }
}
