package dev.shade.requestor.agent;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.requestor.schedule.Schedule;
import dev.shade.requestor.schedule.ScheduleConfig;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * What an agent runs with: its control socket, the volumes it opens at start, and how it serves
 * them over NBD. Read from a JSON file (docs/agent.md describes it) or built by the command line.
 *
 * @param control the control socket's path
 * @param volumes volume directories opened at start, in order
 * @param nbd how the volumes are served over NBD, or null to serve nothing
 * @param schedules the scheduled snapshots (docs/schedule.md); empty for none
 * @param remote the control API for backup servers on other hosts, or null for none
 */
public record AgentConfig(Path control, List<Path> volumes, Nbd nbd, List<Schedule> schedules, Remote remote) {
  /** The control socket when none is configured: under /run/shade for root, else the runtime directory. */
  public static Path defaultControlSocket() {
    String runtime = System.getenv("XDG_RUNTIME_DIR");
    boolean root = "root".equals(System.getProperty("user.name"));
    Path dir = root || runtime == null || runtime.isBlank() ? Path.of("/run/shade") : Path.of(runtime, "shade");
    return dir.resolve("control.sock");
  }

  public AgentConfig {
    volumes = List.copyOf(volumes);
    schedules = List.copyOf(schedules);
  }

  /** A config without a remote API. */
  public AgentConfig(Path control, List<Path> volumes, Nbd nbd, List<Schedule> schedules) {
    this(control, volumes, nbd, schedules, null);
  }

  /** A config without schedules. */
  public AgentConfig(Path control, List<Path> volumes, Nbd nbd) {
    this(control, volumes, nbd, List.of());
  }

  /** This config with {@code remote} as its remote API. */
  public AgentConfig withRemote(Remote remote) {
    return new AgentConfig(control, volumes, nbd, schedules, remote);
  }

  /**
   * The remote control API: the control protocol on a TCP port of its own, for backup servers,
   * which may run only a read-only subset of the commands and backup-complete.
   *
   * @param listen TCP address
   * @param tlsCert PEM certificate, or null for no TLS (loopback addresses only)
   * @param tlsKey PEM key of {@code tlsCert}
   * @param tlsCa PEM CA certificates that client certificates must be signed by
   */
  public record Remote(InetSocketAddress listen, Path tlsCert, Path tlsKey, Path tlsCa) {
    public Remote {
      if (listen == null) {
        throw new IllegalArgumentException("the remote API needs an address to listen on");
      }
      boolean any = tlsCert != null || tlsKey != null || tlsCa != null;
      if (any && (tlsCert == null || tlsKey == null || tlsCa == null)) {
        throw new IllegalArgumentException("the remote API's TLS needs a certificate, its key and a CA");
      }
      if (!any && (listen.getAddress() == null || !listen.getAddress().isLoopbackAddress())) {
        throw new IllegalArgumentException("the remote API on " + listen.getHostString()
            + " (not a loopback address) needs TLS with client certificates (\"tls\": {\"cert\", \"key\", \"ca\"})");
      }
    }

    /** Whether clients must use TLS with a certificate. */
    public boolean tls() {
      return tlsCert != null;
    }
  }

  /**
   * The NBD listeners.
   *
   * @param listen TCP address, or null
   * @param socket Unix socket, or null
   * @param tlsCert PEM certificate of the TCP listener, or null for no TLS
   * @param tlsKey PEM key of {@code tlsCert}
   * @param tlsCa PEM CA certificates that client certificates must be signed by
   * @param allowRemoteWrite let clients on other hosts write to origins
   * @param maxConnections most clients at once
   * @param idleTimeout disconnect a client silent this long
   */
  public record Nbd(InetSocketAddress listen, Path socket, Path tlsCert, Path tlsKey, Path tlsCa,
      boolean allowRemoteWrite, int maxConnections, Duration idleTimeout) {}

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Set<String> TOP = Set.of("control", "volumes", "nbd", "schedules", "remote");
  private static final Set<String> REMOTE = Set.of("listen", "tls");
  private static final Set<String> NBD = Set.of("listen", "socket", "tls", "allowRemoteWrite", "maxConnections", "idleTimeout");
  private static final Set<String> TLS = Set.of("cert", "key", "ca");

  /**
   * Reads a config file. Relative paths in it are taken relative to the file's directory;
   * unknown keys are errors (a misspelt key must not be silently ignored).
   */
  public static AgentConfig load(Path file) throws IOException {
    JsonNode doc;
    try {
      doc = JSON.readTree(Files.readString(file));
    } catch (NoSuchFileException e) {
      throw new NoSuchFileException(file.toString(), null, "agent config file not found");
    } catch (JsonProcessingException e) {
      throw new IOException("agent config " + file + " is not valid JSON: line " + e.getLocation().getLineNr()
          + ": " + e.getOriginalMessage());
    }
    if (doc == null || !doc.isObject()) {
      throw new IOException("agent config " + file + " must be a JSON object");
    }
    Path base = file.toAbsolutePath().getParent();
    checkKeys(doc, TOP, file, "");
    Path control = doc.hasNonNull("control") ? base.resolve(string(doc, "control", file)) : defaultControlSocket();
    List<Path> volumes = new ArrayList<>();
    JsonNode vs = doc.get("volumes");
    if (vs != null) {
      if (!vs.isArray()) {
        throw new IOException("agent config " + file + ": \"volumes\" must be a list of volume directories");
      }
      for (JsonNode v : vs) {
        if (!v.isTextual()) {
          throw new IOException("agent config " + file + ": every volume must be a directory path: " + v);
        }
        volumes.add(base.resolve(v.asText()));
      }
    }
    Nbd nbd = null;
    JsonNode n = doc.get("nbd");
    if (n != null && !n.isNull()) {
      if (!n.isObject()) {
        throw new IOException("agent config " + file + ": \"nbd\" must be an object");
      }
      checkKeys(n, NBD, file, "nbd.");
      InetSocketAddress listen = n.hasNonNull("listen") ? hostPort(string(n, "listen", file), file) : null;
      Path socket = n.hasNonNull("socket") ? base.resolve(string(n, "socket", file)) : null;
      Path cert = null;
      Path key = null;
      Path ca = null;
      JsonNode tls = n.get("tls");
      if (tls != null && !tls.isNull()) {
        checkKeys(tls, TLS, file, "nbd.tls.");
        cert = base.resolve(string(tls, "cert", file));
        key = base.resolve(string(tls, "key", file));
        ca = base.resolve(string(tls, "ca", file));
      }
      if (listen == null && socket == null) {
        throw new IOException("agent config " + file + ": \"nbd\" needs \"listen\" (HOST:PORT) or \"socket\" (a path)");
      }
      int max = n.path("maxConnections").asInt(64);
      if (max < 1) {
        throw new IOException("agent config " + file + ": \"nbd.maxConnections\" must be at least 1: " + n.get("maxConnections"));
      }
      Duration idle = n.hasNonNull("idleTimeout") ? duration(string(n, "idleTimeout", file), file) : Duration.ofMinutes(10);
      nbd = new Nbd(listen, socket, cert, key, ca, n.path("allowRemoteWrite").asBoolean(false), max, idle);
    }
    List<Path> held = volumes.stream().map(p -> p.toAbsolutePath().normalize()).toList();
    List<Schedule> schedules = ScheduleConfig.parse(doc.get("schedules"), file, base, held);
    return new AgentConfig(control, volumes, nbd, schedules, remote(doc.get("remote"), file, base));
  }

  private static Remote remote(JsonNode r, Path file, Path base) throws IOException {
    if (r == null || r.isNull()) {
      return null;
    }
    if (!r.isObject()) {
      throw new IOException("agent config " + file + ": \"remote\" must be an object");
    }
    checkKeys(r, REMOTE, file, "remote.");
    if (!r.hasNonNull("listen")) {
      throw new IOException("agent config " + file + ": \"remote\" needs \"listen\" (HOST:PORT)");
    }
    InetSocketAddress listen;
    try {
      listen = ConfigSyntax.hostPort(string(r, "listen", file));
    } catch (IllegalArgumentException e) {
      throw new IOException("agent config " + file + ": \"remote.listen\": " + e.getMessage());
    }
    Path cert = null;
    Path key = null;
    Path ca = null;
    JsonNode tls = r.get("tls");
    if (tls != null && !tls.isNull()) {
      if (!tls.isObject()) {
        throw new IOException("agent config " + file + ": \"remote.tls\" must be an object");
      }
      checkKeys(tls, TLS, file, "remote.tls.");
      cert = base.resolve(string(tls, "cert", file));
      key = base.resolve(string(tls, "key", file));
      ca = base.resolve(string(tls, "ca", file));
    }
    try {
      return new Remote(listen, cert, key, ca);
    } catch (IllegalArgumentException e) {
      throw new IOException("agent config " + file + ": " + e.getMessage());
    }
  }

  private static void checkKeys(JsonNode node, Set<String> allowed, Path file, String prefix) throws IOException {
    for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
      String k = it.next();
      if (!allowed.contains(k)) {
        throw new IOException("agent config " + file + ": unknown key \"" + prefix + k + "\" (known: "
            + String.join(", ", allowed.stream().sorted().toList()) + ")");
      }
    }
  }

  private static String string(JsonNode node, String key, Path file) throws IOException {
    JsonNode v = node.get(key);
    if (v == null || !v.isTextual() || v.asText().isBlank()) {
      throw new IOException("agent config " + file + ": \"" + key + "\" must be a non-empty string");
    }
    return v.asText();
  }

  static InetSocketAddress hostPort(String s, Path file) throws IOException {
    try {
      return ConfigSyntax.hostPort(s);
    } catch (IllegalArgumentException e) {
      throw new IOException("agent config " + file + ": \"nbd.listen\": " + e.getMessage());
    }
  }

  static Duration duration(String s, Path file) throws IOException {
    try {
      return ConfigSyntax.duration(s);
    } catch (IllegalArgumentException e) {
      throw new IOException("agent config " + file + ": \"nbd.idleTimeout\": " + e.getMessage());
    }
  }
}
