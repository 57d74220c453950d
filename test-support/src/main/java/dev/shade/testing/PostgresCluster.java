package dev.shade.testing;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.UserPrincipal;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A throwaway PostgreSQL cluster for one test: {@code initdb} into a folder of the test, run by
 * the {@code postgres} user, listening on a free TCP port of 127.0.0.1 with its Unix socket in
 * that folder too, so it never meets the machine's own server. Needs root (to act as
 * {@code postgres}) and PostgreSQL's server programs; {@link #create} skips the test (fails it
 * under {@code CI=true}) when they cannot be had.
 *
 * <p>Layout under the folder given to {@link #create}: {@code data/} (the data directory, owned
 * by postgres, 0700), {@code run/} (the socket), {@code server.log}. {@link #close} stops the
 * server immediately and deletes nothing (the test's temporary folder goes away by itself).
 *
 * <p>Not thread-safe: one test drives it. {@link #psql} may be called from any thread.
 */
public final class PostgresCluster implements AutoCloseable {
  /** The user every server program runs as. */
  public static final String USER = "postgres";

  /** The folder of the server programs (initdb, pg_ctl, postgres, psql). */
  private final Path bin;
  /** The folder holding data/, run/ and the log. */
  private final Path dir;
  /** The data directory. */
  private final Path data;
  /** The TCP port on 127.0.0.1. */
  private final int port;
  /** Extra {@code -c name=value} settings the server starts with. */
  private final List<String> settings;

  private PostgresCluster(Path bin, Path dir, Path data, int port, List<String> settings) {
    this.bin = bin;
    this.dir = dir;
    this.data = data;
    this.port = port;
    this.settings = List.copyOf(settings);
  }

  /**
   * The folder of PostgreSQL's server programs: {@code /usr/lib/postgresql/N/bin} of the newest
   * N (Debian keeps them off PATH), else the folder of {@code initdb} on PATH; skips (or fails
   * under CI=true) when there is none.
   */
  public static Path binDir() throws IOException {
    Path lib = Path.of("/usr/lib/postgresql");
    if (Files.isDirectory(lib)) {
      try (var versions = Files.list(lib)) {
        Optional<Path> newest = versions.filter(v -> v.getFileName().toString().matches("\\d+"))
            .sorted((a, b) -> Integer.parseInt(b.getFileName().toString()) - Integer.parseInt(a.getFileName().toString()))
            .map(v -> v.resolve("bin")).filter(b -> Files.isExecutable(b.resolve("initdb"))).findFirst();
        if (newest.isPresent()) {
          return newest.get();
        }
      }
    }
    Optional<Path> initdb = Tools.find("initdb");
    if (initdb.isEmpty()) {
      Tools.unavailable("PostgreSQL's initdb is not installed (Debian: apt-get install postgresql; bin/test installs it)");
    }
    return initdb.get().getParent();
  }

  /**
   * Makes a new cluster in {@code dir/data} ({@code dir} is made traversable by everyone, since
   * the postgres user must reach it), with {@code settings} ({@code name=value}, e.g.
   * {@code wal_level=replica}) given to every start, and starts it.
   */
  public static PostgresCluster create(Path dir, String... settings) throws IOException, InterruptedException {
    Tools.requireRoot("run PostgreSQL as the " + USER + " user");
    Tools.require("runuser", "util-linux");
    Path bin = binDir();
    if (!Files.isExecutable(bin.resolve("pg_ctl")) || !Files.isExecutable(bin.resolve("psql"))) {
      Tools.unavailable("pg_ctl or psql missing in " + bin + " (Debian: apt-get install postgresql)");
    }
    Command id = Command.run("id", "-u", USER);
    if (id.exitCode() != 0) {
      Tools.unavailable("there is no " + USER + " user (Debian: apt-get install postgresql creates it): " + id);
    }
    Files.createDirectories(dir);
    openUp(dir);
    Path data = dir.resolve("data");
    Files.createDirectories(data);
    Files.createDirectories(dir.resolve("run"));
    chown(data);
    chown(dir.resolve("run"));
    Command.run(List.of("runuser", "-u", USER, "--", bin.resolve("initdb").toString(), "-D", data.toString(),
        "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync"), null).requireSuccess();
    PostgresCluster c = new PostgresCluster(bin, dir, data, freePort(), List.of(settings));
    c.start();
    return c;
  }

  /**
   * Makes {@code dir}, and its parents below the temporary folder ({@code java.io.tmpdir}, where
   * JUnit's {@code @TempDir} folders are, mode 0700), traversable by others (o+x), as postgres must
   * reach it; then checks that the postgres user can.
   */
  private static void openUp(Path dir) throws IOException, InterruptedException {
    Path tmp = Path.of(System.getProperty("java.io.tmpdir")).toAbsolutePath().normalize();
    for (Path p = dir.toAbsolutePath().normalize(); p != null; p = p.getParent()) {
      var perms = Files.getPosixFilePermissions(p);
      if (!perms.contains(PosixFilePermission.OTHERS_EXECUTE)) {
        perms.add(PosixFilePermission.OTHERS_EXECUTE);
        perms.add(PosixFilePermission.GROUP_EXECUTE);
        Files.setPosixFilePermissions(p, perms);
      }
      if (!p.startsWith(tmp) || p.equals(tmp)) {
        break; // never opens anything above the temporary folder, nor outside it but dir itself
      }
    }
    Command reach = Command.run("runuser", "-u", USER, "--", "test", "-x", dir.toString());
    if (reach.exitCode() != 0) {
      throw new AssertionError("the " + USER + " user cannot reach " + dir + " (a parent folder is not traversable; "
          + "use a folder under " + tmp + "): " + reach);
    }
  }

  /** Gives {@code path} to the postgres user. */
  public static void chown(Path path) throws IOException {
    UserPrincipal pg = path.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName(USER);
    Files.setOwner(path, pg);
  }

  /** A TCP port on 127.0.0.1 that was free a moment ago. */
  public static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /** Starts the server and waits until it accepts connections. */
  public void start() throws IOException, InterruptedException {
    start(data, port, settings, dir.resolve("server.log"));
  }

  /**
   * Starts a server on another data directory (a copy of this one), on {@code port}, with this
   * cluster's settings and then {@code extraSettings}; its log goes to {@code log}.
   */
  public void start(Path dataDir, int port, List<String> extraSettings, Path log) throws IOException, InterruptedException {
    if (!Files.exists(log)) {
      Files.createFile(log);
      chown(log);
    }
    StringBuilder opts = new StringBuilder("-p " + port + " -c listen_addresses=127.0.0.1 -c unix_socket_directories="
        + dir.resolve("run"));
    List<String> all = new ArrayList<>(settings);
    all.addAll(extraSettings);
    for (String s : all) {
      opts.append(" -c '").append(s.replace("'", "'\\''")).append('\'');
    }
    Command c = Command.run(List.of("runuser", "-u", USER, "--", bin.resolve("pg_ctl").toString(), "start", "-D",
        dataDir.toString(), "-w", "-t", "50", "-l", log.toString(), "-o", opts.toString()), null);
    if (c.exitCode() != 0) {
      throw new AssertionError("pg_ctl start of " + dataDir + " failed: " + c + "\nserver log:\n" + Files.readString(log));
    }
  }

  /** Stops the server ({@code pg_ctl stop -m fast}); already stopped is fine. */
  public void stop() throws IOException, InterruptedException {
    stop(data, "fast");
  }

  /** Stops the server of {@code dataDir} with {@code mode} (fast, immediate); not running is fine. */
  public void stop(Path dataDir, String mode) throws IOException, InterruptedException {
    if (!Files.exists(dataDir.resolve("postmaster.pid"))) {
      return;
    }
    Command.run(List.of("runuser", "-u", USER, "--", bin.resolve("pg_ctl").toString(), "stop", "-D",
        dataDir.toString(), "-m", mode, "-w", "-t", "50"), null);
  }

  /** Runs {@code sql} with psql on this cluster's database {@code postgres}; returns the unaligned, tuples-only output. */
  public String psql(String sql) throws IOException, InterruptedException {
    return psql(port, sql);
  }

  /** {@link #psql(String)} against the server on {@code port} (e.g. one started on a copy). */
  public String psql(int port, String sql) throws IOException, InterruptedException {
    Command c = Command.run(List.of("runuser", "-u", USER, "--", bin.resolve("psql").toString(), "-X", "-q", "-At",
        "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", Integer.toString(port), "-d", "postgres", "-c", sql), null);
    if (c.exitCode() != 0) {
      throw new AssertionError("psql on port " + port + " failed: " + c);
    }
    return c.output().strip();
  }

  /** The libpq connection string of this cluster over TCP, as user postgres. */
  public String conninfo() {
    return "host=127.0.0.1 port=" + port + " dbname=postgres user=" + USER;
  }

  public Path dataDirectory() {
    return data;
  }

  public int port() {
    return port;
  }

  /** The folder of the server programs. */
  public Path bin() {
    return bin;
  }

  /** The folder holding data/, run/ and the logs. */
  public Path dir() {
    return dir;
  }

  /** The server log of this cluster. */
  public Path log() {
    return dir.resolve("server.log");
  }

  /** Stops the server at once ({@code -m immediate}); deletes nothing. */
  @Override
  public void close() throws IOException, InterruptedException {
    stop(data, "immediate");
  }

  @Override
  public String toString() {
    return "PostgreSQL cluster " + data + " on 127.0.0.1:" + port;
  }
}
