package dev.shade.requestor.control;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.nbd.server.UnixSocketPaths;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's control socket: JSON messages over a local Unix socket, or over TCP (with TLS and
 * client certificates for clients on other hosts), one command per message, in the manner of
 * QEMU's QMP.
 *
 * <p>Thread-safe. One thread accepts; each client has a thread of its own that reads its
 * messages and runs its commands one at a time, and a writer thread that sends its replies and
 * events from a bounded queue.
 */
public final class ControlServer implements Closeable {
  /*
   * The protocol (docs/control.md has the full description):
   *
   *   server:  {"shade": {"version": "...", "capabilities": ["events"], "pid": N}}
   *   client:  {"execute": "capabilities", "arguments": {"enable": ["events"]}}
   *   server:  {"return": {}}
   *   client:  {"execute": "snapshot-create", "arguments": {...}, "id": 7}
   *   server:  {"event": "PROGRESS", "data": {...}, "timestamp": {...}}        (zero or more)
   *   server:  {"return": {...}, "id": 7}   or   {"error": {"class", "desc"}, "id": 7}
   *
   * Each message is one JSON object on one line (UTF-8, '\n' ends it). As in QMP, nothing but
   * "capabilities" is accepted until capabilities are negotiated, and asynchronous events
   * ({"event": ...}) go to the clients that enabled them.
   *
   * Defences, so that one bad client cannot stop the agent from serving the others: a message
   * longer than MAX_MESSAGE bytes gets an error and the connection is closed (its end cannot be
   * found safely); a message that is not JSON, not an object or lacks "execute" gets an error and
   * the connection stays; a client that sends nothing within the handshake limit after the
   * greeting, or stays idle past the idle limit, is disconnected by a sweeper; at most
   * MAX_CLIENTS are connected at once (more are told so and closed). Peers are checked with
   * SO_PEERCRED: only the agent's own user and root may talk to it, whatever the file mode of
   * the socket says (it is 0600 too).
   *
   * Over TCP (startTcp) there are no peer credentials: a listener on an address other than
   * loopback must have TLS, and then every client runs the TLS handshake first thing, on its own
   * thread (so a slow one never holds up the acceptor), presenting a certificate signed by the
   * configured CA, as NBD's FORCEDTLS does; the handshake counts against the handshake limit, so
   * a client that stalls in it is swept like one that never negotiates. The peer a command sees
   * is the certificate's subject and the client's address. What a TCP client may run is the
   * handler's business (the agent gives remote clients a read-only subset).
   */
  private static final Logger LOG = LoggerFactory.getLogger(ControlServer.class);

  /** Longest message accepted, in bytes, newline excluded. */
  public static final int MAX_MESSAGE = 1 << 20;
  /** Most clients connected at once. */
  public static final int MAX_CLIENTS = 64;
  /** Most messages queued for one client before it is disconnected as not reading. */
  static final int OUTBOUND_LIMIT = 4096;

  static final ObjectMapper JSON = new ObjectMapper();

  /** Where the server listens; removed on close. Null for a TCP listener. */
  private final Path socket;
  /** The TCP address bound, or null for a Unix socket. */
  private final InetSocketAddress tcp;
  /** TLS of a TCP listener (client certificates required), or null for none. */
  private final SSLContext tls;
  private final ServerSocketChannel listener;
  private final ControlHandler handler;
  /** The greeting's "shade" member, written once at start. */
  private final Map<String, Object> greeting;
  /** Time a client has, after the greeting, to negotiate capabilities. */
  private final Duration handshakeLimit;
  /** Time a client may stay silent between commands. */
  private final Duration idleLimit;
  /** The user this process runs as; peers of the Unix socket must be this user or root. Null over TCP. */
  private final String ownUser;
  /** Connected clients. */
  private final Set<Session> sessions = ConcurrentHashMap.newKeySet();
  /** Closes clients that overstay the handshake or idle limit. */
  private final ScheduledExecutorService sweeper;
  private final Thread acceptor;
  /** Set once by close. */
  private volatile boolean closed;

  private ControlServer(Path socket, InetSocketAddress tcp, SSLContext tls, ServerSocketChannel listener,
      ControlHandler handler, Map<String, Object> greeting, Duration handshakeLimit, Duration idleLimit)
      throws IOException {
    this.socket = socket;
    this.tcp = tcp;
    this.tls = tls;
    this.listener = listener;
    this.handler = handler;
    this.greeting = greeting;
    this.handshakeLimit = handshakeLimit;
    this.idleLimit = idleLimit;
    this.ownUser = socket == null ? null : Files.getOwner(socket, LinkOption.NOFOLLOW_LINKS).getName();
    this.sweeper = Executors.newSingleThreadScheduledExecutor(r -> daemon(r, "shade-control-sweeper"));
    this.acceptor = daemon(this::acceptLoop, "shade-control-accept");
  }

  /**
   * Listens on {@code socket} (created mode 0600; its directory must exist) and serves
   * {@code handler}'s commands until closed. {@code greeting} becomes the greeting's "shade"
   * member. A socket file left by a process that is gone is replaced; one that a live server
   * answers on is not.
   */
  public static ControlServer start(Path socket, ControlHandler handler, Map<String, Object> greeting,
      Duration handshakeLimit, Duration idleLimit) throws IOException {
    Path abs = socket.toAbsolutePath().normalize();
    UnixSocketPaths.removeStale(abs, "control socket");
    ServerSocketChannel ch = bind(abs);
    ControlServer server;
    try {
      server = new ControlServer(abs, null, null, ch, handler, greeting, handshakeLimit, idleLimit);
    } catch (IOException | RuntimeException e) {
      ch.close();
      Files.deleteIfExists(abs);
      throw e;
    }
    server.sweeper.scheduleWithFixedDelay(server::sweep, 200, 200, TimeUnit.MILLISECONDS);
    server.acceptor.start();
    return server;
  }

  /**
   * Listens on TCP {@code listen} (port 0: any free port) and serves {@code handler}'s commands
   * until closed, with TLS when {@code tls} is not null: each client must then present a
   * certificate that {@code tls}'s trust managers accept. An address other than loopback without
   * TLS is refused ({@link IllegalArgumentException}): nothing would tell who the client is.
   */
  public static ControlServer startTcp(InetSocketAddress listen, SSLContext tls, ControlHandler handler,
      Map<String, Object> greeting, Duration handshakeLimit, Duration idleLimit) throws IOException {
    if (listen == null) {
      throw new IllegalArgumentException("no TCP address to listen on");
    }
    InetAddress a = listen.getAddress();
    if (tls == null && (a == null || !a.isLoopbackAddress())) {
      throw new IllegalArgumentException("listening for control clients on " + listen.getHostString()
          + " (not a loopback address) needs TLS with client certificates: give a certificate, its key and the CA "
          + "that signs the clients' certificates");
    }
    ServerSocketChannel ch = ServerSocketChannel.open();
    ControlServer server;
    try {
      ch.setOption(StandardSocketOptions.SO_REUSEADDR, true);
      ch.bind(listen, 16);
      server = new ControlServer(null, (InetSocketAddress) ch.getLocalAddress(), tls, ch, handler, greeting,
          handshakeLimit, idleLimit);
    } catch (IOException e) {
      ch.close();
      throw new IOException("cannot listen for control clients on " + listen + ": " + e.getMessage(), e);
    } catch (RuntimeException e) {
      ch.close();
      throw e;
    }
    server.sweeper.scheduleWithFixedDelay(server::sweep, 200, 200, TimeUnit.MILLISECONDS);
    server.acceptor.start();
    return server;
  }

  /** The socket's path; null for a TCP listener. */
  public Path socket() {
    return socket;
  }

  /** The TCP address bound (with the port picked for port 0); null for a Unix socket. */
  public InetSocketAddress tcpAddress() {
    return tcp;
  }

  /** Clients connected now. */
  public int clientCount() {
    return sessions.size();
  }

  /** Sends an asynchronous event to every client that enabled events. */
  public void broadcast(String event, Map<String, ?> data) {
    ObjectNode msg = eventMessage(event, data);
    for (Session s : sessions) {
      if (s.events) {
        s.send(msg);
      }
    }
  }

  /** Stops accepting, disconnects every client and removes the socket. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    sweeper.shutdownNow();
    try {
      listener.close();
    } finally {
      for (Session s : sessions) {
        s.close();
      }
      if (socket != null) {
        Files.deleteIfExists(socket);
      }
    }
  }

  @Override
  public String toString() {
    return socket != null ? "control socket " + socket
        : "control listener " + tcp.getHostString() + ":" + tcp.getPort() + (tls != null ? " (TLS)" : "");
  }

  // ------------------------------------------------------------------ listening

  /** Binds under a temporary name, restricts it to mode 0600, then renames it into place. */
  private static ServerSocketChannel bind(Path socket) throws IOException {
    Path dir = socket.getParent();
    if (dir == null || !Files.isDirectory(dir)) {
      throw new IOException("the control socket's directory does not exist: " + dir);
    }
    Path tmp = dir.resolve("." + socket.getFileName() + "." + ProcessHandle.current().pid() + ".tmp");
    Files.deleteIfExists(tmp);
    ServerSocketChannel ch = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    try {
      ch.bind(UnixDomainSocketAddress.of(tmp), 16);
      Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-------"));
      Files.move(tmp, socket, StandardCopyOption.ATOMIC_MOVE);
      return ch;
    } catch (IOException | RuntimeException e) {
      ch.close();
      Files.deleteIfExists(tmp);
      throw e;
    }
  }

  private void acceptLoop() {
    while (!closed) {
      SocketChannel ch;
      try {
        ch = listener.accept();
      } catch (ClosedChannelException e) {
        return;
      } catch (IOException e) {
        if (!closed) {
          LOG.warn("{}: accept failed: {}", this, e.getMessage());
          sleepQuietly(100);
        }
        continue;
      }
      String peer;
      if (socket != null) {
        peer = peerUser(ch);
        if (peer == null || !(peer.equals(ownUser) || peer.equals("root"))) {
          LOG.warn("{}: refused a client of user {} (only {} and root may use it)", this, peer, ownUser);
          rejectQuietly(ch, errorMessage(ControlException.PERMISSION_DENIED,
              "only user " + ownUser + " and root may use this agent", null));
          continue;
        }
      } else {
        peer = remoteAddress(ch); // the certificate's subject is added after the TLS handshake
      }
      if (sessions.size() >= MAX_CLIENTS) {
        LOG.warn("{}: refused a client: {} clients connected already", this, MAX_CLIENTS);
        // a TLS client would read the plain message as a broken record: it is just closed
        rejectQuietly(ch, tls != null ? null
            : errorMessage(ControlException.IN_USE, "too many clients (" + MAX_CLIENTS + ") connected", null));
        continue;
      }
      Session s = new Session(ch, peer);
      sessions.add(s);
      daemon(s::run, "shade-control-client").start();
    }
  }

  private static String peerUser(SocketChannel ch) {
    try {
      UnixDomainPrincipal p = ch.getOption(ExtendedSocketOptions.SO_PEERCRED);
      return p.user().getName();
    } catch (IOException | UnsupportedOperationException e) {
      return null;
    }
  }

  private static String remoteAddress(SocketChannel ch) {
    try {
      SocketAddress a = ch.getRemoteAddress();
      return a instanceof InetSocketAddress i ? i.getAddress().getHostAddress() + ":" + i.getPort() : String.valueOf(a);
    } catch (IOException e) {
      return "unknown peer";
    }
  }

  private static void rejectQuietly(SocketChannel ch, ObjectNode message) {
    try (ch) {
      if (message != null) {
        writeFully(ch, line(message));
      }
    } catch (IOException ignored) {
      // the client is being turned away; nothing to report to it
    }
  }

  private void sweep() {
    long now = System.nanoTime();
    for (Session s : sessions) {
      if (s.busy) {
        continue;
      }
      long limit = (s.negotiated ? idleLimit : handshakeLimit).toNanos();
      if (now - s.lastActivity > limit) {
        LOG.info("{}: disconnecting a client that sent nothing for {} ms{}", this, TimeUnit.NANOSECONDS.toMillis(limit),
            s.negotiated ? "" : " after the greeting");
        s.close();
      }
    }
  }

  // ------------------------------------------------------------------ messages

  static ObjectNode eventMessage(String event, Map<String, ?> data) {
    ObjectNode msg = JsonNodeFactory.instance.objectNode();
    msg.put("event", event);
    msg.set("data", JSON.valueToTree(data == null ? Map.of() : data));
    Instant now = Instant.now();
    ObjectNode ts = msg.putObject("timestamp");
    ts.put("seconds", now.getEpochSecond());
    ts.put("microseconds", now.getNano() / 1000);
    return msg;
  }

  static ObjectNode errorMessage(String errorClass, String desc, JsonNode id) {
    ObjectNode msg = JsonNodeFactory.instance.objectNode();
    ObjectNode err = msg.putObject("error");
    err.put("class", errorClass);
    err.put("desc", desc);
    if (id != null) {
      msg.set("id", id);
    }
    return msg;
  }

  static ByteBuffer line(JsonNode message) {
    try {
      byte[] b = JSON.writeValueAsBytes(message);
      return ByteBuffer.allocate(b.length + 1).put(b).put((byte) '\n').flip();
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot write a control message", e);
    }
  }

  static void writeFully(WritableByteChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }

  private static Thread daemon(Runnable r, String name) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    return t;
  }

  private static void sleepQuietly(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** One connected client. */
  private final class Session implements ControlSession {
    private final SocketChannel ch;
    /** Who the client is: its user (Unix socket), or its address and, after TLS, certificate subject. */
    private volatile String peer;
    /** Where the client's bytes come from: the channel, or the TLS layer over it; set before the greeting. */
    private ReadableByteChannel in;
    /** Where replies go: the channel, or the TLS layer over it; set before the writer starts. */
    private volatile WritableByteChannel out;
    /** Reads the client's messages; set with {@link #in}. */
    private MessageReader reader;
    /** Set once capabilities are negotiated; read by the sweeper. */
    private volatile boolean negotiated;
    /** Whether the client asked for asynchronous events. */
    private volatile boolean events;
    /** True while a command runs: the sweeper leaves the client alone. */
    private volatile boolean busy;
    /** System.nanoTime() of the last message received. */
    private volatile long lastActivity = System.nanoTime();
    /**
     * Messages waiting to be written by the session's writer thread, so that neither a command
     * nor a broadcast ever blocks on a client that does not read; a client that lets it fill is
     * disconnected.
     */
    private final BlockingQueue<ByteBuffer> outbound = new ArrayBlockingQueue<>(OUTBOUND_LIMIT);

    Session(SocketChannel ch, String peer) {
      this.ch = ch;
      this.peer = peer;
    }

    void run() {
      try {
        if (tls != null) {
          startTls();
        } else {
          in = ch;
          out = ch;
        }
      } catch (IOException e) {
        LOG.warn("{}: refused client {}: TLS handshake failed: {}", ControlServer.this, peer, e.getMessage());
        close();
        return;
      }
      reader = new MessageReader(in, MAX_MESSAGE);
      daemon(this::writeLoop, "shade-control-writer").start();
      try {
        ObjectNode hello = JsonNodeFactory.instance.objectNode();
        hello.set("shade", JSON.valueToTree(greeting));
        send(hello);
        while (!closed) {
          String text;
          try {
            text = reader.next();
          } catch (MessageReader.TooLongException e) {
            send(errorMessage(ControlException.INVALID_ARGUMENT, e.getMessage() + "; closing the connection", null));
            return;
          }
          if (text == null) {
            return;
          }
          lastActivity = System.nanoTime();
          if (text.isBlank()) {
            continue;
          }
          busy = true;
          try {
            send(handle(text));
          } finally {
            lastActivity = System.nanoTime();
            busy = false;
          }
        }
      } catch (IOException e) {
        // the client went away or was disconnected
      } finally {
        drain(1000);
        close();
      }
    }

    /**
     * Runs the TLS handshake as the server, requiring a client certificate the context's trust
     * managers accept; the peer becomes the certificate's subject at the client's address.
     */
    private void startTls() throws IOException {
      InetSocketAddress remote = (InetSocketAddress) ch.getRemoteAddress();
      SSLSocket s = (SSLSocket) tls.getSocketFactory().createSocket(ch.socket(), remote.getHostString(),
          remote.getPort(), true);
      s.setUseClientMode(false);
      s.setNeedClientAuth(true);
      s.startHandshake();
      Certificate[] chain = s.getSession().getPeerCertificates();
      if (chain.length > 0 && chain[0] instanceof X509Certificate x) {
        peer = x.getSubjectX500Principal().getName() + " at " + peer;
      }
      in = Channels.newChannel(s.getInputStream());
      out = Channels.newChannel(s.getOutputStream());
    }

    private ObjectNode handle(String text) {
      JsonNode msg;
      try {
        msg = JSON.readTree(text);
      } catch (JsonProcessingException e) {
        return errorMessage(ControlException.INVALID_ARGUMENT, "not a JSON message: " + e.getOriginalMessage(), null);
      }
      if (msg == null || !msg.isObject()) {
        return errorMessage(ControlException.INVALID_ARGUMENT, "a message must be a JSON object", null);
      }
      JsonNode id = msg.get("id");
      JsonNode execute = msg.get("execute");
      if (execute == null || !execute.isTextual()) {
        return errorMessage(ControlException.INVALID_ARGUMENT, "a command needs \"execute\": a command name", id);
      }
      JsonNode args = msg.get("arguments");
      if (args == null || args.isNull()) {
        args = JsonNodeFactory.instance.objectNode();
      } else if (!args.isObject()) {
        return errorMessage(ControlException.INVALID_ARGUMENT, "\"arguments\" must be an object", id);
      }
      String command = execute.asText();
      try {
        Object result;
        if (command.equals("capabilities")) {
          result = negotiate(args);
        } else if (!negotiated) {
          throw new ControlException(ControlException.NOT_NEGOTIATED,
              "negotiate capabilities first: {\"execute\": \"capabilities\"}");
        } else {
          result = handler.execute(command, args, this);
        }
        ObjectNode reply = JsonNodeFactory.instance.objectNode();
        reply.set("return", result == null ? JsonNodeFactory.instance.objectNode() : JSON.valueToTree(result));
        if (id != null) {
          reply.set("id", id);
        }
        return reply;
      } catch (Exception e) {
        ControlException ce = ControlErrors.of(e);
        if (ce.errorClass().equals(ControlException.GENERIC) && !(e instanceof IOException)) {
          LOG.warn("{}: command {} failed unexpectedly", ControlServer.this, command, e);
        }
        return errorMessage(ce.errorClass(), ce.getMessage(), id);
      }
    }

    private Object negotiate(JsonNode args) throws ControlException {
      JsonNode enable = args.get("enable");
      boolean wantEvents = false;
      if (enable != null) {
        if (!enable.isArray()) {
          throw new ControlException(ControlException.INVALID_ARGUMENT, "\"enable\" must be a list of capabilities");
        }
        for (JsonNode c : enable) {
          if (!c.isTextual() || !c.asText().equals("events")) {
            throw new ControlException(ControlException.INVALID_ARGUMENT, "unknown capability: " + c
                + " (this agent offers: " + List.of("events") + ")");
          }
          wantEvents = true;
        }
      }
      events = wantEvents;
      negotiated = true;
      return new LinkedHashMap<String, Object>();
    }

    @Override
    public void event(String name, Map<String, ?> data) {
      send(eventMessage(name, data));
    }

    @Override
    public String peerUser() {
      return peer;
    }

    /** Queues one message for the writer; a client that is too far behind is disconnected. */
    void send(JsonNode message) {
      if (!outbound.offer(line(message))) {
        LOG.warn("{}: disconnecting a client that does not read its messages ({} waiting)", ControlServer.this,
            OUTBOUND_LIMIT);
        close();
      }
    }

    private void writeLoop() {
      try {
        while (ch.isOpen()) {
          ByteBuffer b = outbound.poll(1, TimeUnit.SECONDS);
          if (b != null) {
            writeFully(out, b);
          }
        }
      } catch (IOException e) {
        close();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }

    /** Waits up to {@code millis} for the queued messages to be written (before closing on the session's own terms). */
    private void drain(long millis) {
      long end = System.nanoTime() + millis * 1_000_000;
      while (!outbound.isEmpty() && ch.isOpen() && System.nanoTime() < end) {
        sleepQuietly(5);
      }
    }

    void close() {
      sessions.remove(this);
      try {
        ch.close();
      } catch (IOException ignored) {
        // closing a socket that failed already
      }
    }
  }
}
