package dev.shade.nbd.server;

import dev.shade.nbd.tls.Pem;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves the exports of an {@link ExportCatalog} over NBD, on a TCP address and/or a Unix socket.
 *
 * <p>Thread-safe. Threads: one accept thread per listener, one reader thread per client, a
 * shared pool of workers that execute requests (so one client's requests complete out of
 * order, as the protocol allows), and a watchdog for idle and stalled clients.
 */
public final class NbdServer implements Closeable {
  /*
   * Security, as the design asks: writable exports only for peers on this host (loopback or
   * the Unix socket, created mode 0600) unless allowRemoteWrite; a TCP listener on a
   * non-loopback address must have TLS, and then every client must STARTTLS and present a
   * certificate signed by the configured CA (FORCEDTLS in the protocol's terms). Bounded:
   * connections, payloads (32 MiB for clients told so; larger requests of the others are
   * streamed in pieces), options (64 KiB), requests and payload bytes in flight per client,
   * handshake time, idle time, and the time one reply may take to write. Faults of bad clients
   * are logged through a FaultLog: the first of each kind and peer in full, the rest counted.
   *
   * Locks: none of the server's own beyond the concurrent collections; each Connection has its
   * writeLock (socket writes). The catalog is called without any lock held.
   */
  private static final Logger LOG = LoggerFactory.getLogger(NbdServer.class);

  /** How the server listens and what it allows. */
  public static final class Config {
    InetSocketAddress listen;
    Path socket;
    Path tlsCert;
    Path tlsKey;
    Path tlsCa;
    boolean allowRemoteWrite;
    int maxConnections = 64;
    Duration idleTimeout = Duration.ofMinutes(10);
    Duration handshakeTimeout = Duration.ofSeconds(30);
    Duration replyTimeout = Duration.ofSeconds(60);
    Duration pinnedSendPatience = Duration.ofSeconds(1);
    Duration faultSummaryInterval = Duration.ofSeconds(60);
    int workers = 16;

    public Config listen(InetSocketAddress address) {
      this.listen = address;
      return this;
    }

    public Config socket(Path path) {
      this.socket = path;
      return this;
    }

    public Config tls(Path cert, Path key, Path ca) {
      this.tlsCert = cert;
      this.tlsKey = key;
      this.tlsCa = ca;
      return this;
    }

    public Config allowRemoteWrite(boolean allow) {
      this.allowRemoteWrite = allow;
      return this;
    }

    public Config maxConnections(int n) {
      if (n < 1) {
        throw new IllegalArgumentException("max connections must be at least 1: " + n);
      }
      this.maxConnections = n;
      return this;
    }

    public Config idleTimeout(Duration d) {
      this.idleTimeout = d;
      return this;
    }

    public Config handshakeTimeout(Duration d) {
      this.handshakeTimeout = d;
      return this;
    }

    /** How long one reply may take to write before the client is taken as stuck and closed. */
    public Config replyTimeout(Duration d) {
      this.replyTimeout = d;
      return this;
    }

    /**
     * How long a reply sent from an export's pinned views ({@link NbdExport#sendView}) may keep
     * them once the export wants them back (a write to the volume waits for them): the server
     * copies what is left between two slices of its socket write, so this bounds only the slice
     * in flight, which the client must take; one that does not is disconnected. Default 1 s.
     */
    public Config pinnedSendPatience(Duration d) {
      if (d.toMillis() <= 0) {
        throw new IllegalArgumentException("pinned send patience must be positive: " + d);
      }
      this.pinnedSendPatience = d;
      return this;
    }

    /**
     * How often repeated client faults are summarised: within one interval, the first fault of a
     * kind from a peer is logged in full, the others counted and reported in one line when it
     * ends. Default 60 s.
     */
    public Config faultSummaryInterval(Duration d) {
      if (d.toMillis() <= 0) {
        throw new IllegalArgumentException("fault summary interval must be positive: " + d);
      }
      this.faultSummaryInterval = d;
      return this;
    }

    public Config workers(int n) {
      if (n < 1) {
        throw new IllegalArgumentException("workers must be at least 1: " + n);
      }
      this.workers = n;
      return this;
    }
  }

  /** One client as {@link #clients} reports it. */
  public record Client(int id, String peer, boolean local, boolean tls, String export, boolean writable) {
    /** True while the client negotiates ({@link #export()} is then null). */
    public boolean negotiating() {
      return export == null;
    }
  }

  private final Config config;
  /** What is served, asked on every handshake. */
  private final ExportCatalog catalog;
  /** Client faults, summarised. */
  private final FaultLog faults;
  /** Exports being disconnected by {@link #disconnect}: a connection that attaches to one stops at once. */
  private final List<Predicate<? super NbdExport>> revocations = new CopyOnWriteArrayList<>();
  private final SSLContext tls;
  private final BufferPool buffers = new BufferPool(256L << 20);
  private final ThreadPoolExecutor workers;
  private final ScheduledExecutorService watchdog;
  private final Set<Connection> connections = ConcurrentHashMap.newKeySet();
  private final List<ServerSocketChannel> listeners = new ArrayList<>();
  private final List<Thread> acceptors = new ArrayList<>();
  private final AtomicInteger ids = new AtomicInteger();
  private final CountDownLatch stopped = new CountDownLatch(1);
  private volatile boolean closing;
  private InetSocketAddress boundTcp;
  /** Set once this server's Unix socket is in place: only then does close remove the path. */
  private volatile boolean boundUnix;

  private NbdServer(ExportCatalog catalog, Config config, SSLContext tls) {
    this.config = config;
    this.catalog = catalog;
    this.faults = new FaultLog(LOG, config.faultSummaryInterval.toMillis());
    this.tls = tls;
    this.workers = new ThreadPoolExecutor(config.workers, config.workers, 30, TimeUnit.SECONDS,
        new LinkedBlockingQueue<>(), r -> daemon(r, "nbd-worker"));
    this.watchdog = Executors.newSingleThreadScheduledExecutor(r -> daemon(r, "nbd-watchdog"));
  }

  private static Thread daemon(Runnable r, String name) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    return t;
  }

  /**
   * Validates the configuration, binds the listeners and starts serving what {@code catalog}
   * finds. The server never closes the catalog's backends.
   */
  public static NbdServer start(ExportCatalog catalog, Config config) throws IOException {
    if (catalog == null) {
      throw new IllegalArgumentException("nothing to serve: no export catalog");
    }
    if (config.listen == null && config.socket == null) {
      throw new IllegalArgumentException("give a TCP address to listen on, a Unix socket path, or both");
    }
    boolean anyTls = config.tlsCert != null || config.tlsKey != null || config.tlsCa != null;
    if (anyTls && (config.tlsCert == null || config.tlsKey == null || config.tlsCa == null)) {
      throw new IllegalArgumentException("TLS needs all three of --tls-cert, --tls-key and --tls-ca");
    }
    if (config.listen != null && !isLoopback(config.listen) && !anyTls) {
      throw new IllegalArgumentException("listening on " + config.listen.getHostString()
          + " (not a loopback address) needs TLS with client certificates: give --tls-cert, --tls-key and --tls-ca");
    }
    SSLContext ctx = anyTls ? Pem.serverContext(config.tlsCert, config.tlsKey, config.tlsCa) : null;
    NbdServer s = new NbdServer(catalog, config, ctx);
    try {
      if (config.listen != null) {
        ServerSocketChannel tcp = ServerSocketChannel.open();
        tcp.setOption(java.net.StandardSocketOptions.SO_REUSEADDR, true);
        tcp.bind(config.listen, 64);
        s.boundTcp = (InetSocketAddress) tcp.getLocalAddress();
        s.listeners.add(tcp);
        s.acceptors.add(s.acceptLoop(tcp, false, ctx != null));
      }
      if (config.socket != null) {
        ServerSocketChannel unix = bindUnix(config.socket);
        s.boundUnix = true;
        s.listeners.add(unix);
        s.acceptors.add(s.acceptLoop(unix, true, false));
      }
    } catch (IOException | RuntimeException e) {
      s.close();
      throw e;
    }
    long tick = 1000;
    s.watchdog.scheduleWithFixedDelay(s::reap, tick, tick, TimeUnit.MILLISECONDS);
    for (Thread t : s.acceptors) {
      t.start();
    }
    return s;
  }

  /** Binds under a temporary name, restricts it to mode 0600, then moves it into place. */
  private static ServerSocketChannel bindUnix(Path path) throws IOException {
    Path dir = path.toAbsolutePath().getParent();
    Path tmp = dir.resolve("." + path.getFileName() + "." + ProcessHandle.current().pid() + ".tmp");
    Files.deleteIfExists(tmp);
    UnixSocketPaths.removeStale(path, "NBD socket");
    ServerSocketChannel ch = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    try {
      ch.bind(UnixDomainSocketAddress.of(tmp), 64);
      Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-------"));
      Files.move(tmp, path, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      ch.close();
      Files.deleteIfExists(tmp);
      throw e;
    }
    return ch;
  }

  private static boolean isLoopback(InetSocketAddress a) {
    InetAddress addr = a.getAddress();
    return addr != null && addr.isLoopbackAddress();
  }

  private Thread acceptLoop(ServerSocketChannel ch, boolean unix, boolean tlsRequired) {
    Thread t = new Thread(() -> {
      while (!closing) {
        SocketChannel c;
        try {
          c = ch.accept();
        } catch (ClosedChannelException e) {
          return;
        } catch (IOException e) {
          if (!closing) {
            LOG.warn("accept failed: {}", e.toString());
          }
          continue;
        }
        admit(c, unix, tlsRequired);
      }
    }, unix ? "nbd-accept-unix" : "nbd-accept-tcp");
    t.setDaemon(true);
    return t;
  }

  /**
   * Bytes of replies the kernel may queue on a client's socket: a 4 MiB READ reply (what the
   * backup server and nbdcopy's large requests ask for) goes out in four writes instead of
   * twenty, each a wake-up of the reply thread. Unix sockets default to 208 KiB; profiled with
   * perf while {@code nbdcopy --request-size=4194304} read a resident 768 MiB snapshot over the
   * agent's Unix socket, the scheduler's switch path took 21 % of the agent's samples with the
   * default, 3 % with 4 MiB and 6 % with 1 MiB (docs/performance.md, "Zero-copy snapshot
   * sends"). Not more: what the kernel holds is sent even when the agent dies, and with 4 MiB on
   * each of the backup's 4 connections a 16 MiB snapshot was wholly in flight before its first
   * bytes reached a throttled client, so killing the agent no longer cut the backup
   * (BackupConnectionCutTest). The kernel caps it at {@code net.core.wmem_max}.
   */
  static final int SEND_BUFFER = 1 << 20;

  /** Asks for {@link #SEND_BUFFER} on {@code c}; a refusal is no failure (the default stays). */
  private static void sendBuffer(SocketChannel c) {
    try {
      if (c.getOption(java.net.StandardSocketOptions.SO_SNDBUF) < SEND_BUFFER) {
        c.setOption(java.net.StandardSocketOptions.SO_SNDBUF, SEND_BUFFER);
      }
    } catch (IOException | UnsupportedOperationException e) {
      LOG.debug("could not set SO_SNDBUF on a client socket: {}", e.toString());
    }
  }

  private void admit(SocketChannel c, boolean unix, boolean tlsRequired) {
    String peer;
    String host;
    boolean local;
    try {
      sendBuffer(c);
      if (unix) {
        peer = "unix socket";
        host = peer;
        local = true;
      } else {
        c.setOption(java.net.StandardSocketOptions.TCP_NODELAY, true);
        InetSocketAddress remote = (InetSocketAddress) c.getRemoteAddress();
        host = remote.getAddress().getHostAddress();
        peer = host + ":" + remote.getPort();
        local = remote.getAddress().isLoopbackAddress();
      }
    } catch (IOException e) {
      closeQuietly(c);
      return;
    }
    if (closing) {
      LOG.info("refusing a connection from {}: shutting down", peer);
      closeQuietly(c);
      return;
    }
    if (connections.size() >= config.maxConnections) {
      faults.fault("the connection limit", host, "refusing a connection from " + peer + ": the limit of " + config.maxConnections
          + " connections is reached");
      closeQuietly(c);
      return;
    }
    Connection conn = new Connection(ids.incrementAndGet(), this, Transport.plain(c), local, tlsRequired, peer, host);
    connections.add(conn);
    Thread t = new Thread(conn, "nbd-conn-" + conn.id);
    t.setDaemon(true);
    t.start();
  }

  private static void closeQuietly(SocketChannel c) {
    try {
      c.close();
    } catch (IOException e) {
      // nothing to do
    }
  }

  /** Closes connections stuck in the handshake or idle beyond their limits; reports fault counts. */
  private void reap() {
    faults.tick();
    long now = System.currentTimeMillis();
    for (Connection c : connections) {
      // read once: the reply writer sets it back to 0 when a write ends, and a second read
      // of 0 would make any write look 'now' milliseconds old
      long writeStarted = c.writeStarted;
      if (c.handshaking && now - c.accepted > config.handshakeTimeout.toMillis()) {
        faults.fault("no handshake in time", c.peerHost, "connection " + c.id + " from " + c.peer + ": no handshake within "
            + config.handshakeTimeout.toSeconds() + " s; closing it");
        c.closeQuietly();
      } else if (writeStarted != 0 && now - writeStarted > config.replyTimeout.toMillis()) {
        faults.fault("replies not read", c.peerHost, "connection " + c.id + " from " + c.peer + ": a reply could not be written for "
            + config.replyTimeout.toSeconds() + " s (the client does not read); closing it");
        c.closeQuietly();
      } else if (!c.handshaking && c.inflightRequests() == 0 && now - c.lastActivity > config.idleTimeout.toMillis()) {
        LOG.info("connection {} from {}: idle for {} s; closing it", c.id, c.peer, config.idleTimeout.toSeconds());
        c.stopReading();
      }
    }
  }

  /** Runs {@code task} on the watchdog once the pinned-send patience has passed (not at all once the server is closed). */
  void afterPinnedSendPatience(Runnable task) {
    try {
      watchdog.schedule(task, config.pinnedSendPatience.toMillis(), TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.RejectedExecutionException e) {
      // closing: every connection is closed, which drops its replies and releases their views
    }
  }

  /** The pinned-send patience, for log lines. */
  Duration pinnedSendPatience() {
    return config.pinnedSendPatience;
  }

  void closed(Connection c) {
    connections.remove(c);
  }

  ExportCatalog catalog() {
    return catalog;
  }

  FaultLog faults() {
    return faults;
  }

  boolean isClosing() {
    return closing;
  }

  /** Whether a {@link #disconnect} in progress covers {@code e}. */
  boolean revoked(NbdExport e) {
    for (Predicate<? super NbdExport> p : revocations) {
      if (p.test(e)) {
        return true;
      }
    }
    return false;
  }

  SSLContext tlsContext() {
    return tls;
  }

  boolean allowRemoteWrite() {
    return config.allowRemoteWrite;
  }

  BufferPool buffers() {
    return buffers;
  }

  ThreadPoolExecutor workers() {
    return workers;
  }

  /** The bound TCP address (useful with port 0), or null without a TCP listener. */
  public InetSocketAddress tcpAddress() {
    return boundTcp;
  }

  /** Number of connected clients. */
  public int connectionCount() {
    return connections.size();
  }

  /** The clients connected now, attached or still negotiating, in no particular order. */
  public List<Client> clients() {
    List<Client> out = new ArrayList<>();
    for (Connection c : connections) {
      NbdExport e = c.export();
      out.add(new Client(c.id, c.peer, c.isLocal(), c.tls(), e == null ? null : e.name(), c.writable()));
    }
    return out;
  }

  /**
   * Disconnects every client attached to an export that {@code which} matches, as a server stop
   * does: it reads no more requests from them, answers those in flight, closes their connections
   * and closes their exports. Returns once they are all closed; connections that have not closed
   * after {@code timeout} (a client that does not read its replies) are closed without waiting
   * further. A client that attaches to a matching export while this runs is disconnected too;
   * to keep new ones away, take the exports out of the catalog first. Returns the number of
   * connections disconnected. Thread-safe.
   */
  public int disconnect(Predicate<? super NbdExport> which, Duration timeout) throws InterruptedException {
    revocations.add(which);
    try {
      // a connection publishes its export before it reads the revocations, and this adds the
      // revocation before it reads the exports: each connection is seen by one side or the other
      List<Connection> hit = new ArrayList<>();
      for (Connection c : connections) {
        NbdExport e = c.export();
        if (e != null && which.test(e)) {
          hit.add(c);
          c.stopReading();
        }
      }
      long deadline = System.nanoTime() + timeout.toNanos();
      boolean forced = false;
      while (true) {
        boolean open = false;
        for (Connection c : connections) {
          NbdExport e = c.export();
          if (e != null && which.test(e)) {
            open = true;
            if (!hit.contains(c)) {
              hit.add(c); // attached meanwhile and stopped itself
            }
          }
        }
        if (!open) {
          return hit.size();
        }
        if (!forced && System.nanoTime() - deadline > 0) {
          for (Connection c : hit) {
            c.closeQuietly();
          }
          forced = true; // they close now; wait for their threads to finish
        }
        Thread.sleep(5);
      }
    } finally {
      revocations.remove(which);
    }
  }

  /** Blocks until {@link #close()} has finished. */
  public void awaitTermination() throws InterruptedException {
    stopped.await();
  }

  /**
   * Stops accepting, lets every client's in-flight requests finish and their replies go out,
   * flushes every writable export that had a client, and closes the connections and their
   * exports. Does not touch the catalog's backends otherwise.
   */
  @Override
  public void close() throws IOException {
    if (closing) {
      awaitQuietly();
      return;
    }
    closing = true;
    try {
      for (ServerSocketChannel l : listeners) {
        try {
          l.close();
        } catch (IOException e) {
          LOG.debug("closing a listener: {}", e.toString());
        }
      }
      if (boundUnix) {
        Files.deleteIfExists(config.socket);
      }
      for (Connection c : connections) {
        c.stopReading();
      }
      long deadline = System.currentTimeMillis() + 30_000;
      while (!connections.isEmpty() && System.currentTimeMillis() < deadline) {
        try {
          Thread.sleep(10);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          break;
        }
      }
      for (Connection c : connections) {
        c.closeQuietly();
      }
      workers.shutdown();
      watchdog.shutdownNow();
      try {
        workers.awaitTermination(30, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      faults.flush();
    } finally {
      stopped.countDown();
    }
  }

  private void awaitQuietly() {
    try {
      stopped.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
