package dev.shade.requestor.agent;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.nbd.server.NbdServer;
import dev.shade.nbd.tls.Pem;
import dev.shade.provider.Progress;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.SnapshotSet;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeException;
import dev.shade.provider.VolumeListener;
import dev.shade.requestor.control.ControlException;
import dev.shade.requestor.control.ControlHandler;
import dev.shade.requestor.control.ControlServer;
import dev.shade.requestor.control.ControlSession;
import dev.shade.requestor.export.VolumeExports;
import dev.shade.requestor.ops.ConsistentSnapshot;
import dev.shade.requestor.ops.Rollback;
import dev.shade.requestor.ops.VolumeCommands;
import dev.shade.requestor.lease.GuardPool;
import dev.shade.requestor.schedule.CommandRunner;
import dev.shade.requestor.schedule.Scheduler;
import dev.shade.requestor.schedule.Sleeper;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The production host's agent: the one process that holds a set of volumes open, serves them,
 * and carries out every command on them that arrives on its control socket.
 *
 * <p>Thread-safe: commands of several clients run at once; attaching and detaching wait for the
 * commands running on the agent's volumes to finish.
 */
public final class Agent implements Closeable {
  /*
   * Lifecycle. start: open every configured volume (each takes its flock, so a second agent on
   * the same volume fails with "in use"), start the serving, start the control socket and, when
   * configured, the remote API (the same protocol on TCP with TLS, its commands filtered by
   * RemoteCommands), then write each volume's marker (DIR/agent.json) so that `shade` commands
   * find the agent. close (SIGTERM, SIGINT, or the agent-stop command): tell clients (SHUTDOWN
   * event), close the remote API (no more commands from backup servers), stop serving
   * (requests in flight are answered, volumes flushed), remove the markers, close the volumes
   * (journal folded, locks released), and last remove the control socket.
   *
   * Locks: `membership` is read-held by every command that uses volumes and write-held by
   * attach, detach and close, so a volume is never closed under a running command. It is taken
   * before any of a Volume's own locks.
   */
  private static final Logger LOG = LoggerFactory.getLogger(Agent.class);

  /** Time a client has after the greeting to negotiate capabilities. */
  static final Duration HANDSHAKE_LIMIT = Duration.ofSeconds(10);
  /** Time a client may stay silent between commands. */
  static final Duration IDLE_LIMIT = Duration.ofMinutes(10);
  /** Time a detach gives the NBD clients of the volume to receive their replies in flight. */
  static final Duration DETACH_DRAIN = Duration.ofSeconds(10);
  /** Least time between two progress events of one command. */
  private static final long PROGRESS_EVERY_NANOS = 100_000_000L;

  /** Commands of the agent itself, besides {@link VolumeCommands#COMMANDS}. */
  public static final List<String> AGENT_COMMANDS = List.of("query-version", "query-commands", "query-volumes",
      "volume-attach", "volume-detach", "agent-stop", "schedule-show");

  private final AgentConfig config;
  /** Guards {@link #volumes}; see the class comment. */
  private final ReentrantReadWriteLock membership = new ReentrantReadWriteLock();
  /** Volumes held, in the order attached; guarded by membership. */
  private final List<Volume> volumes = new ArrayList<>();
  /** What the NBD server serves: the held volumes' origins and snapshots. */
  private final VolumeExports exports = new VolumeExports();
  /** Keeps a freeze lease guard between consistent snapshots (one JVM for many snapshots). */
  private final GuardPool guards = GuardPool.create();
  /** Serves {@link #exports} over NBD; null when not configured or not started yet. */
  private volatile NbdServer nbd;
  /** The control socket; null until started. */
  private volatile ControlServer control;
  /** The remote control API for backup servers (TCP, TLS); null when not configured or not started yet. */
  private volatile ControlServer remote;
  /** Takes the configured schedules' snapshots; null until started (after the control socket). */
  private volatile Scheduler scheduler;
  /** Run once by agent-stop, on a thread of its own; null when the owner handles stopping itself. */
  private volatile Runnable stopRequest;
  /** Set once by close. */
  private boolean closed;

  private Agent(AgentConfig config) {
    this.config = config;
  }

  /** Starts an agent: opens the configured volumes and listens on the control socket. */
  public static Agent start(AgentConfig config) throws IOException {
    Agent a = new Agent(config);
    try {
      for (Path dir : config.volumes()) {
        a.open(dir);
      }
      a.reconcile();
      if (config.nbd() != null) {
        a.nbd = NbdServer.start(a.exports, nbdConfig(config.nbd()));
      }
      Path socket = config.control().toAbsolutePath().normalize();
      Path dir = socket.getParent();
      if (dir != null && !Files.exists(dir)) {
        Files.createDirectories(dir);
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
      }
      Handler handler = a.new Handler();
      a.control = ControlServer.start(socket, handler, a.greeting(), HANDSHAKE_LIMIT, IDLE_LIMIT);
      AgentConfig.Remote r = config.remote();
      if (r != null) {
        a.remote = ControlServer.startTcp(r.listen(), r.tls() ? Pem.serverContext(r.tlsCert(), r.tlsKey(), r.tlsCa()) : null,
            new RemoteCommands(handler), a.greeting(), HANDSHAKE_LIMIT, IDLE_LIMIT);
      }
      for (Volume v : a.volumes) {
        AgentMarker.write(v.directory(), a.control.socket());
      }
      // scheduled snapshots go through the commands' own path: same locks, same events
      a.scheduler = Scheduler.start(config.schedules(), new CommandRunner((c, args) -> handler.volumeCommand(c, args, null)),
          Clock.systemUTC(), Sleeper.SYSTEM, a::broadcast);
    } catch (IOException | RuntimeException e) {
      try {
        a.close();
      } catch (IOException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }
    return a;
  }

  /** The control socket's path. */
  public Path controlSocket() {
    return control.socket();
  }

  /** The TCP address of the remote control API, or null when it is not configured. */
  public InetSocketAddress remoteAddress() {
    ControlServer r = remote;
    return r == null ? null : r.tcpAddress();
  }

  /** The TCP address NBD clients connect to, or null when there is no TCP listener. */
  public InetSocketAddress nbdTcpAddress() {
    NbdServer s = nbd;
    return s == null ? null : s.tcpAddress();
  }

  /** The volumes held now, in the order attached. */
  public List<Volume> volumes() {
    membership.readLock().lock();
    try {
      return List.copyOf(volumes);
    } finally {
      membership.readLock().unlock();
    }
  }

  /** What runs when a client sends agent-stop (e.g. the same stop as SIGTERM); without it, agent-stop is refused. */
  public void onStopRequest(Runnable r) {
    this.stopRequest = r;
  }

  /** Opens the volume in {@code dir} and serves it. */
  public Volume attach(Path dir) throws IOException {
    membership.writeLock().lock();
    try {
      ensureOpen();
      Volume v = open(dir);
      try {
        reconcile();
        AgentMarker.write(v.directory(), control.socket());
      } catch (IOException | RuntimeException e) {
        volumes.remove(v);
        exports.detach(v);
        v.close();
        throw e;
      }
      LOG.info("attached volume {} ({})", v.name(), v.directory());
      broadcast("VOLUME_ATTACHED", volumeEvent(v));
      return v;
    } finally {
      membership.writeLock().unlock();
    }
  }

  /** Stops serving the volume {@code ref} names and closes it (flushed, lock released). */
  public void detach(String ref) throws IOException {
    membership.writeLock().lock();
    try {
      ensureOpen();
      Volume v = find(ref);
      volumes.remove(v);
      exports.detach(v); // no new clients
      try {
        AgentMarker.remove(v.directory());
        NbdServer s = nbd;
        if (s != null) {
          try {
            int n = s.disconnect(VolumeExports.exportsOf(v), DETACH_DRAIN);
            if (n > 0) {
              LOG.info("detaching volume {}: disconnected {} NBD client{}", v.name(), n, n == 1 ? "" : "s");
            }
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new VolumeException("interrupted while disconnecting the NBD clients of " + v.directory());
          }
        }
      } finally {
        v.close();
      }
      LOG.info("detached volume {} ({})", v.name(), v.directory());
      broadcast("VOLUME_DETACHED", volumeEvent(v));
    } finally {
      membership.writeLock().unlock();
    }
  }

  /**
   * Stops: tells the clients, waits for running commands, flushes and closes every volume,
   * removes the markers and the control socket. Failures are collected; the first is thrown.
   */
  @Override
  public void close() throws IOException {
    Scheduler sch = scheduler;
    if (sch != null) {
      sch.close(); // first: a run under way ends before the volumes close
    }
    ControlServer c = control;
    ControlServer rc = remote;
    broadcast("SHUTDOWN", Map.of());
    IOException first = null;
    if (rc != null) {
      try {
        rc.close(); // backup servers first: no new command of theirs starts while the volumes close
      } catch (IOException e) {
        first = e;
      }
    }
    membership.writeLock().lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      NbdServer s = nbd;
      if (s != null) {
        try {
          s.close(); // answers what is in flight and flushes the volumes
        } catch (IOException | RuntimeException e) {
          first = add(first, e instanceof IOException io ? io : new IOException("stopping the NBD server: " + e, e));
        }
      }
      for (Volume v : volumes) {
        try {
          AgentMarker.remove(v.directory());
        } catch (IOException e) {
          first = add(first, e);
        }
        try {
          v.close();
        } catch (IOException | RuntimeException e) {
          first = add(first, e instanceof IOException io ? io : new IOException("closing " + v.directory() + ": " + e, e));
        }
      }
      volumes.clear();
    } finally {
      membership.writeLock().unlock();
    }
    guards.close();
    if (c != null) {
      try {
        c.close();
      } catch (IOException e) {
        first = add(first, e);
      }
    }
    if (first != null) {
      throw first;
    }
  }

  @Override
  public String toString() {
    return "agent on " + (control == null ? config.control() : control.socket());
  }

  /** Sends an event to the clients of the control socket and of the remote API that enabled events. */
  private void broadcast(String event, Map<String, ?> data) {
    ControlServer c = control;
    if (c != null) {
      c.broadcast(event, data);
    }
    ControlServer r = remote;
    if (r != null) {
      r.broadcast(event, data);
    }
  }

  // ------------------------------------------------------------------ volumes

  /** Opens {@code dir} and adds it; the caller holds the membership write lock or is start. */
  private Volume open(Path dir) throws IOException {
    Path abs = dir.toAbsolutePath().normalize();
    if (Files.exists(abs)) {
      abs = abs.toRealPath(); // commands name volumes by real path
    }
    for (Volume v : volumes) {
      if (v.directory().toAbsolutePath().normalize().equals(abs)) {
        throw new VolumeException("volume " + abs + " is held by this agent already");
      }
    }
    if (!Volume.isVolume(abs)) {
      throw new VolumeException(Files.isDirectory(abs) ? "not a shade volume (no volume.properties): " + abs
          : "volume directory does not exist: " + abs);
    }
    for (Volume v : volumes) {
      if (v.name().equals(abs.getFileName().toString())) {
        throw new VolumeException("this agent holds a volume named '" + v.name() + "' already (" + v.directory()
            + "); volume names are directory names and must be unique");
      }
    }
    Volume v;
    try {
      v = Volume.open(abs);
    } catch (VolumeException e) {
      if (e.getMessage() != null && e.getMessage().contains("in use")) {
        String who = AgentMarker.read(abs).map(h -> " (held by the agent with pid " + h.pid() + ", control socket "
            + h.controlSocket() + ")").orElse("");
        throw new VolumeException(e.getMessage() + who, e);
      }
      throw e;
    }
    v.addListener(new Listener(v));
    try {
      exports.attach(v);
    } catch (RuntimeException e) {
      v.close();
      throw e;
    }
    volumes.add(v);
    return v;
  }

  /**
   * Makes every snapshot set all-or-none across the volumes held (a crash during a set's commit
   * can leave it on some members only); sets with members not held here are kept and reported.
   * Caller holds the membership write lock or is start.
   */
  private void reconcile() throws IOException {
    SnapshotSet.Reconciliation r = SnapshotSet.reconcile(volumes);
    for (SnapshotSet.SetReport s : r.unverified()) {
      LOG.warn("snapshot set {} (snapshot '{}') has members this agent does not hold ({}); it is kept as it is until "
          + "they are attached", s.setId(), s.snapshotName(), s.missingFrom());
    }
    // snapshots whose writers never finished (the agent was killed mid-snapshot) may not be consistent
    ConsistentSnapshot.discardUnfinished(volumes);
  }

  /** Refuses to roll back the origin of {@code v} while an NBD client may write to it (it would see its data change underneath). */
  private void refuseWhileWritable(Volume v) throws ControlException {
    List<String> writers = writableClients(v);
    if (!writers.isEmpty()) {
      throw new ControlException(ControlException.IN_USE, "not reverting volume '" + v.name() + "': "
          + writers.size() + " NBD client" + (writers.size() == 1 ? " has" : "s have") + " its origin open for writing ("
          + String.join(", ", writers) + "); stop what uses it (unmount, disconnect the NBD client) first");
    }
  }

  /** The peers of the NBD clients that have the origin of {@code v} open for writing. */
  private List<String> writableClients(Volume v) {
    NbdServer s = nbd;
    List<String> writers = new ArrayList<>();
    if (s == null) {
      return writers;
    }
    String origin = VolumeExports.originName(v);
    for (NbdServer.Client c : s.clients()) {
      if (c.writable() && origin.equals(c.export())) {
        writers.add(c.peer());
      }
    }
    return writers;
  }

  /** The NBD clients of the held volumes, as a rollback sees them. */
  private final class Clients implements Rollback.Clients {
    @Override
    public List<String> writableClients(Volume v) {
      return Agent.this.writableClients(v);
    }

    @Override
    public int disconnect(Volume v) throws IOException {
      NbdServer s = nbd;
      if (s == null) {
        return 0;
      }
      String origin = VolumeExports.originName(v);
      try {
        int n = s.disconnect(VolumeExports.exportsOf(v).and(e -> e.name().equals(origin)), DETACH_DRAIN);
        LOG.info("rollback of volume {}: disconnected {} NBD client{} of its origin", v.name(), n, n == 1 ? "" : "s");
        return n;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new VolumeException("interrupted while disconnecting the NBD clients of " + v.directory());
      }
    }
  }

  /** The held volume {@code ref} names: its directory, its name or its uuid. Caller holds membership. */
  private Volume find(String ref) throws ControlException {
    Path asPath = ref.startsWith("/") ? realOrNormal(Path.of(ref)) : null;
    for (Volume v : volumes) {
      if (ref.equals(v.name()) || ref.equals(v.uuid())
          || (asPath != null && v.directory().toAbsolutePath().normalize().equals(asPath))) {
        return v;
      }
    }
    throw new ControlException(ControlException.VOLUME_NOT_FOUND, "this agent holds no volume " + ref);
  }

  private static Path realOrNormal(Path p) {
    try {
      return p.toRealPath();
    } catch (IOException e) {
      return p.normalize();
    }
  }

  private void ensureOpen() throws ControlException {
    if (closed) {
      throw new ControlException(ControlException.GENERIC, "the agent is stopping");
    }
  }

  private static NbdServer.Config nbdConfig(AgentConfig.Nbd n) {
    NbdServer.Config c = new NbdServer.Config()
        .allowRemoteWrite(n.allowRemoteWrite())
        .maxConnections(n.maxConnections())
        .idleTimeout(n.idleTimeout());
    if (n.listen() != null) {
      c.listen(n.listen());
    }
    if (n.socket() != null) {
      c.socket(n.socket());
    }
    if (n.tlsCert() != null) {
      c.tls(n.tlsCert(), n.tlsKey(), n.tlsCa());
    }
    return c;
  }

  private Map<String, Object> greeting() {
    Map<String, Object> g = new LinkedHashMap<>();
    Package p = Agent.class.getPackage();
    g.put("version", p.getImplementationVersion() == null ? "dev" : p.getImplementationVersion());
    g.put("capabilities", List.of("events"));
    g.put("pid", ProcessHandle.current().pid());
    return g;
  }

  private static Map<String, Object> volumeEvent(Volume v) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("volume", v.name());
    m.put("volumeUuid", v.uuid());
    m.put("directory", v.directory().toAbsolutePath().toString());
    return m;
  }

  private static IOException add(IOException first, IOException e) {
    if (first == null) {
      return e;
    }
    first.addSuppressed(e);
    return first;
  }

  /** Turns a volume's own deletions into events. */
  private final class Listener implements VolumeListener {
    private final Volume volume;

    Listener(Volume volume) {
      this.volume = volume;
    }

    @Override
    public void snapshotDeletedForSpace(SnapshotInfo deleted, long diffMaxBytes) {
      Map<String, Object> m = volumeEvent(volume);
      m.putAll(VolumeCommands.snapshot(deleted));
      m.put("reason", "diff area full");
      m.put("diffMax", diffMaxBytes);
      broadcast("SNAPSHOT_DELETED", m);
    }
  }

  // ------------------------------------------------------------------ commands

  /** Carries out the commands of the control socket. */
  private final class Handler implements ControlHandler {
    @Override
    public Object execute(String command, JsonNode args, ControlSession session) throws Exception {
      switch (command) {
        case "query-version":
          return greeting();
        case "query-commands": {
          List<String> all = new ArrayList<>(AGENT_COMMANDS);
          all.addAll(VolumeCommands.COMMANDS);
          return all;
        }
        case "query-volumes":
          return queryVolumes();
        case "volume-attach":
          return VolumeCommands.info(attach(Path.of(VolumeCommands.text(args, "directory", command))));
        case "volume-detach":
          detach(VolumeCommands.text(args, "volume", command));
          return null;
        case "schedule-show": {
          Scheduler sch = scheduler;
          return sch == null ? Map.of("schedules", List.of()) : sch.show();
        }
        case "agent-stop": {
          Runnable r = stopRequest;
          if (r == null) {
            throw new ControlException(ControlException.GENERIC, "this agent is not stopped through its control socket");
          }
          Thread t = new Thread(r, "shade-agent-stop");
          t.start();
          return null;
        }
        default:
          return volumeCommand(command, args, session);
      }
    }

    private Object queryVolumes() {
      membership.readLock().lock();
      try {
        List<Object> out = new ArrayList<>();
        for (Volume v : volumes) {
          out.add(VolumeCommands.info(v));
        }
        return out;
      } finally {
        membership.readLock().unlock();
      }
    }

    private Object volumeCommand(String command, JsonNode args, ControlSession session) throws IOException {
      if (!VolumeCommands.COMMANDS.contains(command)) {
        throw new ControlException(ControlException.COMMAND_NOT_FOUND, "no such command: " + command
            + " (query-commands lists them)");
      }
      Progress progress = args.path("progress").asBoolean(false) ? throttled(command, session) : Progress.NONE;
      membership.readLock().lock();
      try {
        ensureOpen();
        Object result = VolumeCommands.execute(command, args, new VolumeCommands.Volumes() {
          @Override
          public Volume get(String ref) throws IOException {
            return find(ref);
          }

          @Override
          public void beforeRevert(Volume v) throws IOException {
            refuseWhileWritable(v);
          }

          @Override
          public Rollback.Clients clients() {
            return new Clients();
          }

          @Override
          public GuardPool guards() {
            return guards;
          }
        }, progress);
        announce(command, result);
        return result;
      } finally {
        membership.readLock().unlock();
      }
    }

    /** Events for what other clients may want to know: snapshots created and deleted. */
    @SuppressWarnings("unchecked")
    private void announce(String command, Object result) {
      if (command.equals(VolumeCommands.SNAPSHOT_CREATE)) {
        for (Object s : (List<Object>) ((Map<String, Object>) result).get("snapshots")) {
          broadcast("SNAPSHOT_CREATED", (Map<String, Object>) s);
        }
      } else if (command.equals(VolumeCommands.SNAPSHOT_DELETE)) {
        Map<String, Object> m = new LinkedHashMap<>((Map<String, Object>) result);
        m.put("reason", "requested");
        broadcast("SNAPSHOT_DELETED", m);
      }
    }

    private Progress throttled(String command, ControlSession session) {
      long[] last = {0};
      return (done, total) -> {
        long now = System.nanoTime();
        if (done == total || now - last[0] >= PROGRESS_EVERY_NANOS) {
          last[0] = now;
          Map<String, Object> m = new LinkedHashMap<>();
          m.put("command", command);
          m.put("done", done);
          m.put("total", total);
          session.event("PROGRESS", m);
        }
      };
    }
  }
}
