package dev.shade.requestor.writer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.UserPrincipal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Stops and starts one PostgreSQL server for a rollback: {@code pg_ctl} run as the owner of the
 * data directory ({@code runuser} when that is not us), started again with the options it last
 * ran with; and where PostgreSQL's programs are.
 *
 * <p>Immutable; what it needs from the data directory (owner, {@code postmaster.opts}) is read
 * by {@link #of}, while the filesystem is still mounted. Thread-safe.
 */
final class PgCtl {
  /*
   * postmaster.opts holds the server's command line as the postmaster got it; PostgreSQL keeps
   * it in the data directory after a shutdown. start passes pg_ctl its arguments without -D
   * (pg_ctl gives its own) through -o, which pg_ctl hands to /bin/sh: hence single quotes. The
   * pg_ctl used is the one beside that postgres binary, so the right major version starts.
   */
  private static final Logger LOG = LoggerFactory.getLogger(PgCtl.class);
  /** How long pg_ctl stop/start may take. */
  static final Duration TIMEOUT = Duration.ofSeconds(180);

  /** The writer this serves, for messages (no password). */
  private final String who;
  /** The data directory. */
  private final Path dataDirectory;
  /** Its owner, as whom pg_ctl runs. */
  private final UserPrincipal owner;
  /** The folder of the server's own postgres binary, from postmaster.opts, if known. */
  private final Optional<Path> binDir;
  /** The server's arguments but -D, from postmaster.opts; empty if unknown. */
  private final List<String> options;
  /** The server's version number, e.g. 150004, to find its programs; 0 if unknown. */
  private final int versionNum;
  /** The postmaster's pid when this was made (postmaster.pid's first line), or null. */
  private final String serverPid;

  private PgCtl(String who, Path dataDirectory, UserPrincipal owner, Optional<Path> binDir, List<String> options,
      int versionNum, String serverPid) {
    this.who = who;
    this.dataDirectory = dataDirectory;
    this.owner = owner;
    this.binDir = binDir;
    this.options = List.copyOf(options);
    this.versionNum = versionNum;
    this.serverPid = serverPid;
  }

  /** Reads the owner and postmaster.opts of {@code dataDirectory} now. */
  static PgCtl of(String who, Path dataDirectory, int versionNum) throws IOException {
    UserPrincipal owner = Files.getOwner(dataDirectory, LinkOption.NOFOLLOW_LINKS);
    Path optsFile = dataDirectory.resolve("postmaster.opts");
    List<String> opts = List.of();
    Optional<Path> binDir = Optional.empty();
    if (Files.isReadable(optsFile)) {
      List<String> argv = postmasterOpts(Files.readString(optsFile, StandardCharsets.UTF_8));
      if (!argv.isEmpty()) {
        binDir = Optional.ofNullable(Path.of(argv.get(0)).getParent());
        opts = serverOptions(argv);
      }
    }
    return new PgCtl(who, dataDirectory, owner, binDir, opts, versionNum, pidIn(dataDirectory));
  }

  /** {@code pg_ctl stop -D DATADIR -m fast -w}: waits until the server is down. */
  void stop() throws IOException {
    Path pgCtl = tool("pg_ctl", binDir, versionNum, who);
    ExternalCommand.require(asOwner(owner, List.of(pgCtl.toString(), "stop", "-D", dataDirectory.toString(), "-m",
        "fast", "-w", "-t", Long.toString(TIMEOUT.toSeconds() - 10))), TIMEOUT,
        who + ": stop PostgreSQL (data directory " + dataDirectory + ")");
  }

  /**
   * {@code pg_ctl start -D DATADIR -w -l DATADIR/../shade-pg-start.log -o OPTIONS}: waits until
   * the server accepts connections.
   */
  void start() throws IOException {
    removeStalePidFile();
    Path log = dataDirectory.toAbsolutePath().getParent().resolve("shade-pg-start.log");
    if (!Files.exists(log)) {
      Files.createFile(log);
      try {
        Files.setOwner(log, owner);
      } catch (IOException | UnsupportedOperationException e) {
        LOG.debug("{}: cannot give {} to {}: {}", who, log, owner, e.toString());
      }
    }
    List<String> argv = new ArrayList<>(List.of(tool("pg_ctl", binDir, versionNum, who).toString(), "start", "-D",
        dataDirectory.toString(), "-w", "-t", Long.toString(TIMEOUT.toSeconds() - 10), "-l", log.toString()));
    if (!options.isEmpty()) {
      argv.add("-o");
      argv.add(shellWords(options));
    }
    ExternalCommand.require(asOwner(owner, argv), TIMEOUT,
        who + ": start PostgreSQL (data directory " + dataDirectory + ", log " + log + ")");
  }

  /**
   * A data directory rolled back to a snapshot of a running server holds that server's
   * postmaster.pid. PostgreSQL ignores it when that pid is gone, but where orphans are reaped
   * late (containers) the server stopped a moment ago is still a zombie under that pid and
   * PostgreSQL refuses to start. The server that pid names is the one {@link #stop} stopped, so
   * its file is stale: removed, unless a live process (not a zombie) has the pid again.
   */
  private void removeStalePidFile() throws IOException {
    String pid = pidIn(dataDirectory);
    if (pid == null || !pid.equals(serverPid)) {
      return;
    }
    Path stat = Path.of("/proc", pid, "stat");
    if (Files.exists(stat)) {
      String text = Files.readString(stat, StandardCharsets.UTF_8);
      int close = text.lastIndexOf(')');
      boolean zombie = close > 0 && text.length() > close + 2 && text.charAt(close + 2) == 'Z';
      if (!zombie) {
        return;
      }
    }
    LOG.info("{}: removing postmaster.pid of the stopped server (pid {}) before starting it again", who, pid);
    Files.deleteIfExists(dataDirectory.resolve("postmaster.pid"));
  }

  /** The first line of {@code dataDirectory}'s postmaster.pid, or null. */
  private static String pidIn(Path dataDirectory) {
    try {
      List<String> lines = Files.readAllLines(dataDirectory.resolve("postmaster.pid"), StandardCharsets.UTF_8);
      return lines.isEmpty() ? null : lines.get(0).strip();
    } catch (IOException e) {
      return null;
    }
  }

  /**
   * The argv recorded in postmaster.opts: the server binary, unquoted, then every argument in
   * double quotes ({@code /usr/lib/postgresql/15/bin/postgres "-D" "/srv/pg" "-p" "5433"}).
   */
  static List<String> postmasterOpts(String text) {
    String t = text.strip();
    List<String> argv = new ArrayList<>();
    int i = 0;
    int firstQuote = t.indexOf(" \"");
    if (firstQuote < 0) {
      if (!t.isEmpty()) {
        argv.add(t);
      }
      return argv;
    }
    argv.add(t.substring(0, firstQuote));
    i = firstQuote + 1;
    while (i < t.length()) {
      if (t.charAt(i) == '"') {
        int end = t.indexOf("\" ", i + 1);
        if (end < 0) {
          end = t.endsWith("\"") ? t.length() - 1 : t.length();
        }
        argv.add(t.substring(i + 1, end));
        i = end + 2;
      } else {
        i++;
      }
    }
    return argv;
  }

  /** The arguments after the binary without {@code -D DIR} (pg_ctl passes its own -D). */
  static List<String> serverOptions(List<String> argv) {
    List<String> opts = new ArrayList<>();
    for (int i = 1; i < argv.size(); i++) {
      String a = argv.get(i);
      if (a.equals("-D") && i + 1 < argv.size()) {
        i++;
      } else if (!a.startsWith("-D") || a.equals("-D")) {
        opts.add(a);
      }
    }
    return opts;
  }

  /** The words for {@code pg_ctl -o}, which pg_ctl hands to a shell: each in single quotes. */
  static String shellWords(List<String> words) {
    StringBuilder sb = new StringBuilder();
    for (String w : words) {
      if (sb.length() > 0) {
        sb.append(' ');
      }
      sb.append('\'').append(w.replace("'", "'\\''")).append('\'');
    }
    return sb.toString();
  }

  /** {@code argv} run as {@code owner}: directly when that is us, else through {@code runuser}. */
  private static List<String> asOwner(UserPrincipal owner, List<String> argv) {
    if (owner.getName().equals(System.getProperty("user.name"))) {
      return argv;
    }
    List<String> cmd = new ArrayList<>(List.of(ExternalCommand.find("runuser").map(Path::toString).orElse("runuser"),
        "-u", owner.getName(), "--"));
    cmd.addAll(argv);
    return cmd;
  }

  /**
   * A PostgreSQL program: in the server's own bin folder when known, else on PATH, else in the
   * newest {@code /usr/lib/postgresql/N/bin} (Debian puts it there, off PATH).
   */
  static Path tool(String name, Optional<Path> binDir, int versionNum, String who) throws IOException {
    if (binDir.isPresent() && Files.isExecutable(binDir.get().resolve(name))) {
      return binDir.get().resolve(name);
    }
    if (versionNum > 0) {
      Path p = Path.of("/usr/lib/postgresql", Integer.toString(versionNum / 10000), "bin", name);
      if (Files.isExecutable(p)) {
        return p;
      }
    }
    Optional<Path> onPath = ExternalCommand.find(name);
    if (onPath.isPresent()) {
      return onPath.get();
    }
    Path lib = Path.of("/usr/lib/postgresql");
    if (Files.isDirectory(lib)) {
      try (var versions = Files.list(lib)) {
        Optional<Path> newest = versions.filter(v -> v.getFileName().toString().matches("\\d+"))
            .sorted((a, b) -> Integer.parseInt(b.getFileName().toString()) - Integer.parseInt(a.getFileName().toString()))
            .map(v -> v.resolve("bin").resolve(name)).filter(Files::isExecutable).findFirst();
        if (newest.isPresent()) {
          return newest.get();
        }
      }
    }
    throw new IOException(who + ": " + name + " is not on PATH nor in /usr/lib/postgresql/*/bin "
        + "(Debian: apt-get install postgresql-client or postgresql)");
  }

  @Override
  public String toString() {
    return "pg_ctl of " + dataDirectory;
  }
}
