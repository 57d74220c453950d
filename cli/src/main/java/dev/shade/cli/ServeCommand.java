package dev.shade.cli;

import dev.shade.nativeio.SdNotify;
import dev.shade.nbd.server.UnixSocketPaths;
import dev.shade.requestor.agent.Agent;
import dev.shade.requestor.agent.AgentConfig;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Help;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code shade serve}: exports volumes and their snapshots over NBD until the process is stopped. */
@Command(
    name = "serve",
    header = "Serve volumes and their snapshots over NBD until stopped.",
    description = {
      "Exports each volume's current contents as NAME (its directory's name) and each of its "
          + "snapshots as NAME@SNAPSHOT, read-only. This is the agent ('shade agent') without a "
          + "config file: the volumes stay open while serving, and other shade commands on them go "
          + "through its control socket. Origins are writable for clients on this "
          + "host (loopback or the Unix socket); clients on other hosts read them only, unless "
          + "--allow-remote-write. "
          + "A TCP address other than loopback needs TLS with client certificates.",
      "",
      "Prints one line per export: name, size, access (rw, ro, or rw-local: writable from this "
          + "host only) and its URIs, then serves until SIGTERM or SIGINT (Ctrl-C). Stopping "
          + "answers the requests in flight, flushes and closes every volume, removes the socket "
          + "and exits 0."
    },
    mixinStandardHelpOptions = true,
    footerHeading = "%nExamples:%n",
    footer = {
      "  shade serve /var/lib/shade/db                       # nbd://127.0.0.1:10809/db",
      "  shade serve /var/lib/shade/db --socket /run/shade/nbd.sock",
      "  shade serve /var/lib/shade/db /var/lib/shade/wal --listen 127.0.0.1:0 --json",
      "  shade serve /var/lib/shade/db --listen 0.0.0.0:10809 \\",
      "      --tls-cert server.pem --tls-key server.key --tls-ca clients-ca.pem",
      "  nbdinfo --list nbd://127.0.0.1:10809                # what a client sees"
    })
class ServeCommand extends ShadeCommand {
  /*
   * Stopping is a JVM shutdown hook, so SIGTERM, SIGINT and SIGHUP all take the same path: the
   * agent's NBD server stops accepting, answers what its clients have in flight and flushes the
   * exports they wrote to, then the volumes are closed (journal and checkpoint durable, locks
   * released) and the control socket removed (Agent.close). A JVM stopped by a signal would exit 128 + the signal number; the hook ends the
   * process with Runtime.halt so that a clean stop exits 0 and a failed one 1. The command's
   * own thread only waits: it never returns once serving has begun.
   *
   * Everything that can be checked on the command line is checked before any volume is
   * opened, so bad input leaves the volumes untouched and unlocked.
   */

  /** Where the server listens when neither --listen nor --socket is given. */
  static final String DEFAULT_LISTEN = "127.0.0.1:10809";

  @Parameters(arity = "0..*", paramLabel = "DIR", showDefaultValue = Help.Visibility.NEVER,
      description = "Volume directories; each volume is exported under its directory's name.")
  List<Path> dirs = new ArrayList<>();

  @Option(names = "--control-socket", paramLabel = "PATH",
      description = "The control socket that 'shade volume' and 'shade snapshot' commands on these volumes "
          + "use while they are served (mode 0600). Default: the config file's, else "
          + "/run/shade/control.sock for root and $XDG_RUNTIME_DIR/shade/control.sock for others.",
      showDefaultValue = Help.Visibility.NEVER)
  Path controlSocket;

  @Option(names = "--listen", paramLabel = "HOST:PORT", converter = HostPort.class,
      description = "TCP address to listen on ([::1]:PORT for IPv6; port 0 picks a free one, shown "
          + "in the URIs). Default: " + DEFAULT_LISTEN + " when --socket is not given either.")
  InetSocketAddress listen;

  @Option(names = "--socket", paramLabel = "PATH",
      description = "Unix socket to listen on: created mode 0600, removed on stop; must not exist.")
  Path socket;

  @Option(names = "--tls-cert", paramLabel = "FILE",
      description = "PEM certificate (chain) the TCP listener presents; needs --tls-key and --tls-ca.")
  Path tlsCert;

  @Option(names = "--tls-key", paramLabel = "FILE",
      description = "PEM private key of --tls-cert (PKCS#8, or PKCS#1 RSA).")
  Path tlsKey;

  @Option(names = "--tls-ca", paramLabel = "FILE",
      description = "PEM CA certificates; TCP clients must STARTTLS with a certificate they signed.")
  Path tlsCa;

  @Option(names = "--allow-remote-write",
      description = "Let clients on other hosts write to origins (snapshots stay read-only).")
  boolean allowRemoteWrite;

  @Option(names = "--max-connections", paramLabel = "N", defaultValue = "64",
      description = "Most clients connected at once; more are refused.")
  int maxConnections;

  @Option(names = "--idle-timeout", paramLabel = "DURATION", converter = Durations.class,
      defaultValue = "10m",
      description = "Disconnect a client that sends no request for this long (e.g. 90s, 10m, 1h).")
  Duration idleTimeout;

  @Option(names = "--json", description = "Print one JSON object instead of the export lines: "
      + "{\"exports\": [{\"name\", \"volume\", \"snapshot\", \"size\", \"access\", \"uris\"}], "
      + "\"listen\", \"socket\", \"tls\", \"allowRemoteWrite\", \"pid\"}.")
  boolean json;

  /** True for {@code shade agent}, which may start without volumes and reads a config file. */
  boolean agentMode() {
    return false;
  }

  /** The config file's settings, or null when there is none. */
  AgentConfig baseConfig() throws IOException {
    return null;
  }

  /** The command's name in messages. */
  private String me() {
    return "shade " + spec.name();
  }

  @Override
  public Integer call() throws Exception {
    AgentConfig base = baseConfig();
    if (!agentMode() && dirs.isEmpty()) {
      throw usage("Missing required parameter: 'DIR'");
    }
    List<Path> all = new ArrayList<>(base == null ? List.of() : base.volumes());
    all.addAll(dirs);
    AgentConfig.Nbd nbd = config(all, base == null ? null : base.nbd());
    for (Path dir : all) {
      requireVolume(dir);
    }
    Path control = controlSocket != null ? controlSocket
        : base != null ? base.control() : AgentConfig.defaultControlSocket();
    Agent agent = start(new AgentConfig(control, all, nbd, base == null ? List.of() : base.schedules(),
        base == null ? null : base.remote()));
    Stop stop = new Stop(agent, me(), err(), out());
    agent.onStopRequest(() -> System.exit(0)); // the shutdown hook does the stopping
    Runtime.getRuntime().addShutdownHook(new Thread(stop, "shade-agent-stop"));
    InetSocketAddress tcp = agent.nbdTcpAddress();
    List<Volume> volumes = agent.volumes();
    List<Map<String, Object>> exports = exports(volumes, tcp);
    if (json) {
      printJson(document(exports, tcp, agent));
    } else {
      printLines(exports);
    }
    InetSocketAddress remote = agent.remoteAddress();
    err().printf("%s: serving %d export%s of %d volume%s on %s; control socket %s%s; stop with SIGTERM or Ctrl-C%n",
        me(), exports.size(), exports.size() == 1 ? "" : "s", volumes.size(), volumes.size() == 1 ? "" : "s",
        where(tcp), agent.controlSocket(), remote == null ? "" : "; remote API on "
            + HostPort.format(remote) + (base.remote().tls() ? " (TLS)" : ""));
    err().flush();
    sdNotifyReady();
    return stop.await(); // in practice never: the hook halts the process
  }

  /** Tells systemd (Type=notify) that the agent is ready, when it runs under systemd. */
  private void sdNotifyReady() {
    try {
      SdNotify.notify("READY=1\nSTATUS=serving\nMAINPID=" + ProcessHandle.current().pid());
    } catch (IOException e) {
      err().println(me() + ": could not notify systemd: " + ExitCodes.describe(e));
      err().flush();
    }
  }

  // ---------------------------------------------------------------- checks before opening

  /**
   * The NBD listeners, after every check that needs no volume: the command line's when it gives
   * any, else {@code configured}, else the default TCP address.
   */
  private AgentConfig.Nbd config(List<Path> all, AgentConfig.Nbd configured) throws CommandException {
    Set<Path> seen = new HashSet<>();
    Map<String, Path> names = new HashMap<>();
    for (Path dir : all) {
      Path abs = dir.toAbsolutePath().normalize();
      if (!seen.add(abs)) {
        throw usage("volume named twice: " + dir);
      }
      Path name = abs.getFileName();
      Path other = name == null ? null : names.putIfAbsent(name.toString(), dir);
      if (other != null) {
        throw usage("two volumes would both be exported as '" + name + "': " + other + " and " + dir
            + " (export names are directory names and must be unique)");
      }
    }
    if (maxConnections < 1) {
      throw usage("--max-connections must be at least 1: " + maxConnections);
    }
    boolean anyTls = tlsCert != null || tlsKey != null || tlsCa != null;
    if (anyTls && (tlsCert == null || tlsKey == null || tlsCa == null)) {
      throw usage("TLS needs all three of --tls-cert, --tls-key and --tls-ca");
    }
    boolean fromCommandLine = listen != null || socket != null || anyTls || allowRemoteWrite;
    if (!fromCommandLine && configured != null) {
      listen = configured.listen();
      socket = configured.socket();
      tlsCert = configured.tlsCert();
      tlsKey = configured.tlsKey();
      tlsCa = configured.tlsCa();
      anyTls = tlsCert != null;
      allowRemoteWrite = configured.allowRemoteWrite();
      maxConnections = configured.maxConnections();
      idleTimeout = configured.idleTimeout();
    }
    if (listen == null && socket == null) {
      listen = HostPort.parse(DEFAULT_LISTEN);
    }
    if (anyTls && listen == null) {
      throw usage("TLS applies to the TCP listener, and there is none: give --listen too");
    }
    if (listen != null && !listen.getAddress().isLoopbackAddress() && !anyTls) {
      throw usage("listening on " + HostPort.format(listen) + " (not a loopback address) needs TLS with "
          + "client certificates: give --tls-cert, --tls-key and --tls-ca, or listen on 127.0.0.1");
    }
    if (anyTls) {
      requireFile(tlsCert, "TLS certificate");
      requireFile(tlsKey, "TLS key");
      requireFile(tlsCa, "TLS CA certificate");
    }
    if (socket != null) {
      socket = socket.toAbsolutePath().normalize();
      Path parent = socket.getParent();
      if (parent == null || !Files.isDirectory(parent)) {
        throw new CommandException("the socket's directory does not exist: " + parent);
      }
      if (Files.isDirectory(socket, LinkOption.NOFOLLOW_LINKS) || Files.isRegularFile(socket, LinkOption.NOFOLLOW_LINKS)) {
        throw new CommandException("socket path is an existing " + (Files.isDirectory(socket) ? "directory" : "file")
            + ", not a socket: " + socket + " (choose another path)");
      }
      if (Files.exists(socket, LinkOption.NOFOLLOW_LINKS) && UnixSocketPaths.answers(socket)) {
        throw new CommandException("another server is listening on NBD socket " + socket + " (choose another path)");
      }
    }
    return new AgentConfig.Nbd(listen, socket, tlsCert, tlsKey, tlsCa, allowRemoteWrite, maxConnections, idleTimeout);
  }

  private static void requireFile(Path file, String what) throws CommandException {
    if (!Files.isRegularFile(file)) {
      throw new CommandException(what + " file " + (Files.exists(file) ? "is not a plain file: " : "not found: ") + file);
    }
    if (!Files.isReadable(file)) {
      throw new CommandException(what + " file is not readable: " + file);
    }
  }

  private Agent start(AgentConfig config) throws IOException, CommandException {
    try {
      return Agent.start(config);
    } catch (BindException e) {
      String on = listen != null && socket != null ? HostPort.format(listen) + " or " + socket
          : listen != null ? HostPort.format(listen) : socket.toString();
      throw new CommandException("cannot listen on " + on + ": " + e.getMessage()
          + (listen != null ? " (is another server using the port? choose another with --listen)" : ""));
    }
  }

  // ---------------------------------------------------------------- what is served

  private List<Map<String, Object>> exports(List<Volume> volumes, InetSocketAddress tcp) {
    boolean remoteClients = tcp != null && !tcp.getAddress().isLoopbackAddress();
    String originAccess = remoteClients && !allowRemoteWrite ? "rw-local" : "rw";
    List<Map<String, Object>> list = new ArrayList<>();
    for (Volume v : volumes) {
      list.add(export(v.name(), v, null, null, originAccess, tcp));
      for (SnapshotInfo s : v.snapshots()) {
        list.add(export(v.name() + "@" + s.name(), v, s.name(), s.id(), "ro", tcp));
      }
    }
    return list;
  }

  private Map<String, Object> export(String name, Volume v, String snapshot, Long snapshotId, String access,
      InetSocketAddress tcp) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("name", name);
    m.put("volume", v.name());
    m.put("volumeUuid", v.uuid());
    m.put("snapshot", snapshot);
    m.put("snapshotId", snapshotId);
    m.put("size", v.size());
    m.put("access", access);
    List<String> uris = new ArrayList<>();
    if (tcp != null) {
      uris.add((tlsCert != null ? "nbds" : "nbd") + "://" + HostPort.format(tcp) + "/" + encode(name, false));
    }
    if (socket != null) {
      uris.add("nbd+unix:///" + encode(name, false) + "?socket=" + encode(socket.toString(), true));
    }
    m.put("uris", uris);
    return m;
  }

  private Map<String, Object> document(List<Map<String, Object>> exports, InetSocketAddress tcp, Agent agent) {
    Map<String, Object> doc = new LinkedHashMap<>();
    doc.put("control", agent.controlSocket().toString());
    doc.put("exports", exports);
    doc.put("listen", tcp == null ? null : HostPort.format(tcp));
    doc.put("socket", socket == null ? null : socket.toString());
    doc.put("tls", tlsCert != null);
    doc.put("allowRemoteWrite", allowRemoteWrite);
    InetSocketAddress remote = agent.remoteAddress();
    doc.put("remote", remote == null ? null : HostPort.format(remote));
    doc.put("pid", ProcessHandle.current().pid());
    return doc;
  }

  private void printLines(List<Map<String, Object>> exports) {
    int nameWidth = exports.stream().mapToInt(e -> e.get("name").toString().length()).max().orElse(0);
    int sizeWidth = exports.stream().mapToInt(e -> Sizes.format((Long) e.get("size")).length()).max().orElse(0);
    int accessWidth = exports.stream().mapToInt(e -> e.get("access").toString().length()).max().orElse(0);
    PrintWriter out = out();
    for (Map<String, Object> e : exports) {
      @SuppressWarnings("unchecked")
      List<String> uris = (List<String>) e.get("uris");
      out.printf("%-" + nameWidth + "s  %" + sizeWidth + "s  %-" + accessWidth + "s  %s%n", e.get("name"),
          Sizes.format((Long) e.get("size")), e.get("access"), String.join("  ", uris));
    }
    out.flush();
  }

  private String where(InetSocketAddress tcp) {
    if (tcp != null && socket != null) {
      return HostPort.format(tcp) + " and " + socket;
    }
    return tcp != null ? HostPort.format(tcp) : socket.toString();
  }

  /**
   * Percent-encodes {@code s} for a URI path segment, or for a query value when {@code query}
   * (where '/' may stay). '@' and ':' stay as they are in both, as RFC 3986 allows.
   */
  static String encode(String s, boolean query) {
    StringBuilder b = new StringBuilder();
    for (byte x : s.getBytes(StandardCharsets.UTF_8)) {
      int c = x & 0xff;
      boolean plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
          || "-._~!$'()*+,;:@".indexOf(c) >= 0 || (query && c == '/');
      if (plain) {
        b.append((char) c);
      } else {
        b.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
            .append(Character.toUpperCase(Character.forDigit(c & 15, 16)));
      }
    }
    return b.toString();
  }

  // ---------------------------------------------------------------- stopping

  /** The shutdown hook: stops the agent (serving, volumes, socket) and ends the process with its status. */
  private static final class Stop implements Runnable {
    /** The agent to stop: it answers what is in flight, flushes and closes its volumes. */
    private final Agent agent;
    /** The command's name in messages. */
    private final String me;
    /** Where the stop is reported. */
    private final PrintWriter err;
    /** Flushed before the process ends. */
    private final PrintWriter out;
    /** Counted down once the volumes are closed; the command's thread waits on it. */
    private final CountDownLatch done = new CountDownLatch(1);
    /** Exit status of the stop; written before {@link #done} is counted down. */
    private volatile int code = ExitCodes.OK;

    Stop(Agent agent, String me, PrintWriter err, PrintWriter out) {
      this.agent = agent;
      this.me = me;
      this.err = err;
      this.out = out;
    }

    @Override
    public void run() {
      int status = ExitCodes.OK;
      int n = agent.volumes().size();
      try {
        SdNotify.notify("STOPPING=1");
      } catch (IOException e) {
        err.println(me + ": could not notify systemd: " + ExitCodes.describe(e));
      }
      try {
        agent.close();
      } catch (IOException | RuntimeException e) {
        err.println(me + ": stopping: " + ExitCodes.describe(e));
        status = ExitCodes.FAILURE;
      }
      if (status == ExitCodes.OK) {
        err.printf("%s: stopped; %d volume%s flushed and closed%n", me, n, n == 1 ? "" : "s");
      }
      out.flush();
      err.flush();
      code = status;
      done.countDown();
      // a JVM stopped by a signal exits 128 + signal; a clean stop is a success
      Runtime.getRuntime().halt(status);
    }

    int await() throws InterruptedException {
      done.await();
      return code;
    }
  }
}
