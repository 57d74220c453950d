package dev.shade.nbd.server;

import dev.shade.provider.Volume;
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
 * Serves volumes over NBD: each origin read-write as {@code NAME}, each snapshot read-only as
 * {@code NAME@SNAPSHOT}, on a TCP address and/or a Unix socket.
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
   * connections, payloads (32 MiB), options (64 KiB), requests and payload bytes in flight per
   * client, handshake time, idle time, and the time one reply may take to write.
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

    public Config workers(int n) {
      if (n < 1) {
        throw new IllegalArgumentException("workers must be at least 1: " + n);
      }
      this.workers = n;
      return this;
    }
  }

  private final Config config;
  private final ExportTable exports;
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

  private NbdServer(List<Volume> volumes, Config config, SSLContext tls) {
    this.config = config;
    this.exports = new ExportTable(volumes);
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

  /** Validates the configuration, binds the listeners and starts serving. */
  public static NbdServer start(List<Volume> volumes, Config config) throws IOException {
    if (volumes.isEmpty()) {
      throw new IllegalArgumentException("nothing to serve: no volumes");
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
    List<String> names = new ArrayList<>();
    for (Volume v : volumes) {
      if (names.contains(v.name())) {
        throw new IllegalArgumentException("two volumes are named " + v.name() + "; export names must be unique");
      }
      names.add(v.name());
    }
    SSLContext ctx = anyTls ? Pem.serverContext(config.tlsCert, config.tlsKey, config.tlsCa) : null;
    NbdServer s = new NbdServer(volumes, config, ctx);
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
    if (Files.exists(path)) {
      throw new IOException("socket path already exists: " + path + " (another server, or a leftover: remove it)");
    }
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

  private void admit(SocketChannel c, boolean unix, boolean tlsRequired) {
    String peer;
    boolean local;
    try {
      if (unix) {
        peer = "unix socket";
        local = true;
      } else {
        c.setOption(java.net.StandardSocketOptions.TCP_NODELAY, true);
        InetSocketAddress remote = (InetSocketAddress) c.getRemoteAddress();
        peer = remote.getAddress().getHostAddress() + ":" + remote.getPort();
        local = remote.getAddress().isLoopbackAddress();
      }
    } catch (IOException e) {
      closeQuietly(c);
      return;
    }
    if (closing || connections.size() >= config.maxConnections) {
      LOG.warn("refusing a connection from {}: {}", peer, closing ? "shutting down" : "the limit of " + config.maxConnections + " connections is reached");
      closeQuietly(c);
      return;
    }
    Connection conn = new Connection(ids.incrementAndGet(), this, Transport.plain(c), local, tlsRequired, peer);
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

  /** Closes connections stuck in the handshake or idle beyond their limits. */
  private void reap() {
    long now = System.currentTimeMillis();
    for (Connection c : connections) {
      // read once: the reply writer sets it back to 0 when a write ends, and a second read
      // of 0 would make any write look 'now' milliseconds old
      long writeStarted = c.writeStarted;
      if (c.handshaking && now - c.accepted > config.handshakeTimeout.toMillis()) {
        LOG.warn("connection {} from {}: no handshake within {} s; closing it", c.id, c.peer, config.handshakeTimeout.toSeconds());
        c.closeQuietly();
      } else if (writeStarted != 0 && now - writeStarted > config.replyTimeout.toMillis()) {
        LOG.warn("connection {} from {}: a reply could not be written for {} s (the client does not read); closing it", c.id, c.peer, config.replyTimeout.toSeconds());
        c.closeQuietly();
      } else if (!c.handshaking && c.inflightRequests() == 0 && now - c.lastActivity > config.idleTimeout.toMillis()) {
        LOG.info("connection {} from {}: idle for {} s; closing it", c.id, c.peer, config.idleTimeout.toSeconds());
        c.stopReading();
      }
    }
  }

  void closed(Connection c) {
    connections.remove(c);
  }

  ExportTable exports() {
    return exports;
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

  /** Blocks until {@link #close()} has finished. */
  public void awaitTermination() throws InterruptedException {
    stopped.await();
  }

  /**
   * Stops accepting, lets every client's in-flight requests finish and their replies go out,
   * closes the connections, then flushes every volume. Does not close the volumes.
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
      if (config.socket != null) {
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
      IOException first = null;
      for (Volume v : exports.volumes()) {
        try {
          v.flush();
        } catch (IOException | RuntimeException e) {
          if (first == null) {
            first = e instanceof IOException ? (IOException) e : new IOException(e);
          }
        }
      }
      if (first != null) {
        throw first;
      }
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
