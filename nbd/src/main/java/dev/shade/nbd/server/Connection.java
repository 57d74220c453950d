package dev.shade.nbd.server;

import static dev.shade.nbd.protocol.Nbd.*;

import dev.shade.nbd.protocol.Extent;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.locks.ReentrantLock;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client: the fixed newstyle handshake, then the transmission phase with requests served
 * out of order by the server's workers.
 *
 * <p>Thread-safety: the connection's own thread reads and negotiates; workers execute requests
 * and queue their replies; the connection's reply thread writes them. A worker never blocks on
 * the socket, so a client that stops reading its replies stalls only itself (and is closed
 * after the server's reply-stall timeout).
 */
final class Connection implements Runnable {
  /*
   * Protocol errors that leave the byte stream in an unknown state (bad magic, a WRITE whose
   * payload is too large to consume, an option longer than MAX_OPTION) end the connection;
   * every other bad request gets the protocol's error reply and the connection goes on.
   * Requests are validated before anything touches an export, so garbage never changes data.
   * Faults that end a connection go through the server's FaultLog, so a flood of bad clients
   * does not flood the log.
   *
   * Request sizes: a client that asked for NBD_INFO_BLOCK_SIZE in its NBD_OPT_GO was told the
   * 32 MiB maximum, and a larger READ gets EINVAL, a larger WRITE closes the connection (its
   * payload is not worth skipping). A client that never agreed block sizes (NBD_OPT_EXPORT_NAME,
   * or GO without that request) is owed an effectively unlimited maximum (doc/proto.md, "Block
   * size constraints"): its READs and WRITEs of more than 32 MiB are streamed by the reader
   * thread in PIECE-sized pieces through one pooled buffer, so memory stays bounded whatever the
   * length (up to 4 GiB - 1) and the client's in-flight byte budget still applies.
   */
  private static final Logger LOG = LoggerFactory.getLogger(Connection.class);
  /** Requests of one client executing or queued at once. */
  static final int MAX_INFLIGHT = 64;
  /**
   * Largest READ the reader thread serves itself when its data is in the page cache (a cached
   * copy runs at memory speed, cheaper than a hand-off). Larger reads, and reads that would
   * wait for the disk, go to the workers, so smaller requests behind them are not held up.
   */
  static final int INLINE_READ = 1 << 20;
  /** Payload bytes (WRITE data read, READ data to send) one client may hold at once. */
  static final int MAX_INFLIGHT_BYTES = 64 << 20;
  private static final int KNOWN_FLAGS = CMD_FLAG_FUA | CMD_FLAG_NO_HOLE | CMD_FLAG_DF | CMD_FLAG_REQ_ONE | CMD_FLAG_FAST_ZERO;
  /** Most descriptors in one block status chunk (the protocol suggests at most 2^20). */
  private static final int MAX_EXTENTS = 1 << 16;
  /** Longest single descriptor: under 4 GiB and block aligned. */
  private static final long MAX_EXTENT_LENGTH = 0xFFFF_F000L;
  /** Piece in which a READ or WRITE larger than MAX_PAYLOAD is streamed. */
  static final int PIECE = 4 << 20;

  final int id;
  private final NbdServer server;
  /** True when the peer is on this host (loopback address or Unix socket). */
  private final boolean localPeer;
  /** True when this listener accepts nothing but STARTTLS and ABORT before TLS. */
  private final boolean tlsRequired;
  final String peer;
  /** The peer's host (no port), for grouping its faults. */
  final String peerHost;
  private volatile Transport transport;

  // negotiation state, connection thread only
  private boolean structured;
  /** Export the negotiated meta contexts belong to. */
  private String contextExport;
  /** Negotiated meta contexts; the id of context i is i + 1. */
  private final List<String> contexts = new ArrayList<>();
  /**
   * True when the client asked for NBD_INFO_BLOCK_SIZE in the NBD_OPT_GO that attached it, and so
   * was told the 32 MiB maximum; false for clients owed an unlimited one.
   */
  private boolean blockSizesAgreed;

  /** The export attached (set at EXPORT_NAME or GO, before transmission); closed when the connection ends. */
  private volatile NbdExport export;
  private final Semaphore inflight = new Semaphore(MAX_INFLIGHT);
  private final Semaphore inflightBytes = new Semaphore(MAX_INFLIGHT_BYTES);
  /** Replies waiting for the reply thread, in the order workers finished them. */
  private final LinkedBlockingQueue<Reply> replies = new LinkedBlockingQueue<>();
  /** When the reply thread began its current socket write (ms), 0 when not writing. */
  volatile long writeStarted;
  /** Serialises socket writes between the reply thread and the reader's direct replies. */
  private final ReentrantLock writeLock = new ReentrantLock();
  /** The thread that reads requests (set when transmission starts). */
  private volatile Thread reader;
  /** Set when a reply could not be written: the rest are dropped, the connection closes. */
  private volatile boolean broken;
  /** When the last request arrived (ms); for the idle timeout. */
  volatile long lastActivity = System.currentTimeMillis();
  /** When the connection was accepted (ms); for the handshake timeout. */
  final long accepted = lastActivity;
  /** True until the transmission phase starts. */
  volatile boolean handshaking = true;

  Connection(int id, NbdServer server, Transport transport, boolean localPeer, boolean tlsRequired, String peer, String peerHost) {
    this.id = id;
    this.tlsRequired = tlsRequired;
    this.server = server;
    this.transport = transport;
    this.localPeer = localPeer;
    this.peer = peer;
    this.peerHost = peerHost;
  }

  /** The export this connection is attached to, or null while it negotiates. */
  NbdExport export() {
    return export;
  }

  /** Whether the attached client may write (false while negotiating). */
  boolean writable() {
    NbdExport e = export;
    return e != null && !e.readOnly();
  }

  boolean tls() {
    return transport.isTls();
  }

  boolean isLocal() {
    return localPeer;
  }

  int inflightRequests() {
    return MAX_INFLIGHT - inflight.availablePermits();
  }

  /** Ends reading: the connection finishes its in-flight requests and closes. */
  void stopReading() {
    try {
      transport.shutdownInput();
    } catch (IOException | RuntimeException e) {
      closeQuietly();
    }
  }

  void closeQuietly() {
    try {
      transport.close();
    } catch (IOException | RuntimeException e) {
      // already gone
    }
  }

  @Override
  public void run() {
    try {
      if (handshake()) {
        handshaking = false;
        LOG.debug("connection {} from {}: attached to {}", id, peer, export.name());
        transmission();
      }
    } catch (EOFException e) {
      LOG.debug("connection {} from {}: closed by the client", id, peer);
    } catch (ProtocolException e) {
      server.faults().fault(e.kind, peerHost, "connection " + id + " from " + peer + ": " + e.getMessage() + "; closing it");
    } catch (SSLException e) {
      server.faults().fault("failed TLS", peerHost, "connection " + id + " from " + peer + ": TLS failed: "
          + (e.getMessage() != null ? e.getMessage() : e.toString()));
    } catch (IOException e) {
      LOG.debug("connection {} from {}: {}", id, peer, e.toString());
    } catch (RuntimeException e) {
      LOG.error("connection {} from {}: unexpected failure", id, peer, e);
    } finally {
      closeQuietly(); // transmission() has already waited for every reply
      release();
      server.closed(this);
    }
  }

  /** Flushes a writable export when the server is stopping, then closes the export. */
  private void release() {
    NbdExport e = export;
    if (e == null) {
      return;
    }
    try {
      if (server.isClosing() && !e.readOnly()) {
        e.flush();
      }
    } catch (IOException | RuntimeException ex) {
      LOG.warn("connection {}: flushing {} at the stop failed: {}", id, e.name(), ex.toString());
    }
    closeExport(e);
  }

  private void closeExport(NbdExport e) {
    try {
      e.close();
    } catch (IOException | RuntimeException ex) {
      LOG.warn("connection {}: closing {} failed: {}", id, e.name(), ex.toString());
    }
  }

  /** A violation that leaves the stream unusable. */
  static final class ProtocolException extends IOException {
    private static final long serialVersionUID = 1L;
    /** What kind of fault, a fixed phrase without numbers: faults are summarised by it. */
    final String kind;

    ProtocolException(String kind, String message) {
      super(message);
      this.kind = kind;
    }
  }

  /** Takes {@code e} as the attached export; stops reading at once if its owner is disconnecting it. */
  private void attach(NbdExport e) {
    export = e; // volatile write, then read of the revocations: see NbdServer.disconnect
    if (server.revoked(e)) {
      stopReading();
    }
  }

  // ------------------------------------------------------------------ handshake

  /** Negotiates until the transmission phase (true) or the client leaves (false). */
  private boolean handshake() throws IOException {
    ByteBuffer hello = ByteBuffer.allocate(18);
    hello.putLong(NBDMAGIC).putLong(IHAVEOPT).putShort((short) (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)).flip();
    transport.write(hello);
    int clientFlags = readInt();
    if ((clientFlags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) != 0) {
      throw new ProtocolException("unknown client flags", "unknown client flags 0x" + Integer.toHexString(clientFlags));
    }
    boolean noZeroes = (clientFlags & FLAG_C_NO_ZEROES) != 0;
    while (true) {
      long magic = readLong();
      if (magic != IHAVEOPT) {
        throw new ProtocolException("bad option magic", "bad option magic 0x" + Long.toHexString(magic));
      }
      int option = readInt();
      long length = Integer.toUnsignedLong(readInt());
      if (length > MAX_OPTION) {
        throw new ProtocolException("oversized option", "option " + option + " carries " + length + " bytes, more than " + MAX_OPTION);
      }
      ByteBuffer data = ByteBuffer.allocate((int) length);
      transport.readFully(data);
      data.flip();
      lastActivity = System.currentTimeMillis();
      if (tlsRequired && !transport.isTls() && option != OPT_STARTTLS && option != OPT_ABORT) {
        if (option == OPT_EXPORT_NAME) {
          throw new ProtocolException("EXPORT_NAME without TLS", "EXPORT_NAME without TLS on a server that requires TLS");
        }
        optionReply(option, REP_ERR_TLS_REQD, "this server requires TLS (STARTTLS with a client certificate)");
        continue;
      }
      switch (option) {
        case OPT_EXPORT_NAME: {
          String name = string(data, data.remaining());
          NbdExport e = server.catalog().find(name, mayWrite());
          if (e == null) {
            throw new ProtocolException("EXPORT_NAME of an unknown export", "EXPORT_NAME of an unknown export '" + printable(name) + "'");
          }
          blockSizesAgreed = false; // EXPORT_NAME cannot negotiate them: the client is owed no limit
          attach(e);
          ByteBuffer reply = ByteBuffer.allocate(noZeroes ? 10 : 134);
          reply.putLong(e.size()).putShort((short) transmissionFlags(e)).position(reply.limit()).flip();
          transport.write(reply);
          return true;
        }
        case OPT_ABORT:
          optionReply(option, REP_ACK, (ByteBuffer) null);
          return false;
        case OPT_LIST:
          if (data.hasRemaining()) {
            optionReply(option, REP_ERR_INVALID, "LIST takes no data");
            break;
          }
          for (ExportCatalog.Entry e : server.catalog().list(mayWrite())) {
            byte[] name = e.name().getBytes(StandardCharsets.UTF_8);
            byte[] desc = e.description().getBytes(StandardCharsets.UTF_8);
            ByteBuffer b = ByteBuffer.allocate(4 + name.length + desc.length);
            b.putInt(name.length).put(name).put(desc).flip();
            optionReply(option, REP_SERVER, b);
          }
          optionReply(option, REP_ACK, (ByteBuffer) null);
          break;
        case OPT_STARTTLS:
          if (data.hasRemaining()) {
            optionReply(option, REP_ERR_INVALID, "STARTTLS takes no data");
          } else if (server.tlsContext() == null) {
            optionReply(option, REP_ERR_UNSUP, "TLS is not configured on this server");
          } else if (transport.isTls()) {
            optionReply(option, REP_ERR_INVALID, "TLS is already active");
          } else {
            optionReply(option, REP_ACK, (ByteBuffer) null);
            transport = transport.startTls(server.tlsContext());
            structured = false; // nothing negotiated before TLS survives it
            contexts.clear();
            contextExport = null;
          }
          break;
        case OPT_INFO:
        case OPT_GO:
          if (infoOrGo(option, data)) {
            return true;
          }
          break;
        case OPT_STRUCTURED_REPLY:
          if (data.hasRemaining()) {
            optionReply(option, REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
          } else {
            structured = true;
            optionReply(option, REP_ACK, (ByteBuffer) null);
          }
          break;
        case OPT_LIST_META_CONTEXT:
        case OPT_SET_META_CONTEXT:
          metaContext(option, data);
          break;
        default:
          optionReply(option, REP_ERR_UNSUP, "option " + option + " is not supported");
      }
    }
  }

  /** Whether this peer may write: it is on this host, or the server allows remote writes. */
  private boolean mayWrite() {
    return localPeer || server.allowRemoteWrite();
  }

  /** The export's flags as this client may see them: DF only with structured replies (proto.md: MUST). */
  private int transmissionFlags(NbdExport e) {
    int f = FLAG_HAS_FLAGS | FLAG_CAN_MULTI_CONN | FLAG_SEND_FLUSH | (structured ? FLAG_SEND_DF : 0);
    if (e.readOnly()) {
      return f | FLAG_READ_ONLY;
    }
    // CAN_MULTI_CONN: the export contract makes a flush cover writes made through every
    // connection to the same backend
    return f | FLAG_SEND_FUA | FLAG_SEND_TRIM | FLAG_SEND_WRITE_ZEROES;
  }

  /** A client-supplied string for a log line: at most 100 characters, control characters escaped. */
  private static String printable(String s) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < s.length() && b.length() < 100; i++) {
      char c = s.charAt(i);
      if (c < 0x20 || c == 0x7f) {
        b.append(String.format("\\x%02x", (int) c));
      } else {
        b.append(c);
      }
    }
    return s.length() > 100 ? b + "..." : b.toString();
  }

  /** Answers INFO or GO; returns true when GO succeeded. */
  private boolean infoOrGo(int option, ByteBuffer data) throws IOException {
    if (data.remaining() < 6) {
      optionReply(option, REP_ERR_INVALID, "truncated request");
      return false;
    }
    long nameLen = Integer.toUnsignedLong(data.getInt());
    if (nameLen > data.remaining() - 2 || nameLen > MAX_STRING) {
      optionReply(option, REP_ERR_INVALID, "export name length " + nameLen + " does not fit the request");
      return false;
    }
    String name = string(data, (int) nameLen);
    int count = Short.toUnsignedInt(data.getShort());
    if (data.remaining() != count * 2) {
      optionReply(option, REP_ERR_INVALID, "information request count does not match the data");
      return false;
    }
    Set<Integer> wanted = new LinkedHashSet<>();
    for (int i = 0; i < count; i++) {
      wanted.add(Short.toUnsignedInt(data.getShort()));
    }
    NbdExport e = server.catalog().find(name, mayWrite());
    if (e == null) {
      optionReply(option, REP_ERR_UNKNOWN, "no export named '" + name + "' (see the list with nbdinfo --list)");
      return false;
    }
    boolean attached = false;
    try {
      attached = infoReplies(option, e, wanted);
      return attached;
    } finally {
      if (!attached) {
        closeExport(e); // INFO, or a GO that failed on the way: this export is not used
      }
    }
  }

  /** Sends the INFO replies for {@code e}; for GO, attaches it and returns true. */
  private boolean infoReplies(int option, NbdExport e, Set<Integer> wanted) throws IOException {
    ByteBuffer info = ByteBuffer.allocate(12);
    info.putShort((short) INFO_EXPORT).putLong(e.size()).putShort((short) transmissionFlags(e)).flip();
    optionReply(option, REP_INFO, info);
    if (wanted.contains(INFO_NAME)) {
      byte[] n = e.name().getBytes(StandardCharsets.UTF_8);
      optionReply(option, REP_INFO, ByteBuffer.allocate(2 + n.length).putShort((short) INFO_NAME).put(n).flip());
    }
    if (wanted.contains(INFO_DESCRIPTION)) {
      byte[] d = e.description().getBytes(StandardCharsets.UTF_8);
      optionReply(option, REP_INFO, ByteBuffer.allocate(2 + d.length).putShort((short) INFO_DESCRIPTION).put(d).flip());
    }
    ByteBuffer bs = ByteBuffer.allocate(14);
    bs.putShort((short) INFO_BLOCK_SIZE).putInt(1).putInt(4096).putInt(MAX_PAYLOAD).flip();
    optionReply(option, REP_INFO, bs);
    optionReply(option, REP_ACK, (ByteBuffer) null);
    if (option == OPT_GO) {
      if (contextExport != null && !contextExport.equals(e.name())) {
        contexts.clear(); // contexts were negotiated for another export
      }
      blockSizesAgreed = wanted.contains(INFO_BLOCK_SIZE);
      attach(e);
      return true;
    }
    return false;
  }

  private void metaContext(int option, ByteBuffer data) throws IOException {
    if (!structured) {
      optionReply(option, REP_ERR_INVALID, "negotiate structured replies first");
      return;
    }
    if (data.remaining() < 8) {
      optionReply(option, REP_ERR_INVALID, "truncated request");
      return;
    }
    long nameLen = Integer.toUnsignedLong(data.getInt());
    if (nameLen > data.remaining() - 4 || nameLen > MAX_STRING) {
      optionReply(option, REP_ERR_INVALID, "export name length " + nameLen + " does not fit the request");
      return;
    }
    String name = string(data, (int) nameLen);
    long count = Integer.toUnsignedLong(data.getInt());
    List<String> queries = new ArrayList<>();
    for (long i = 0; i < count; i++) {
      if (data.remaining() < 4) {
        optionReply(option, REP_ERR_INVALID, "query " + i + " is truncated");
        return;
      }
      long qlen = Integer.toUnsignedLong(data.getInt());
      if (qlen > data.remaining() || qlen > MAX_STRING) {
        optionReply(option, REP_ERR_INVALID, "query " + i + " length " + qlen + " does not fit the request");
        return;
      }
      queries.add(string(data, (int) qlen));
    }
    if (data.hasRemaining()) {
      optionReply(option, REP_ERR_INVALID, "trailing bytes after the queries");
      return;
    }
    NbdExport e = server.catalog().find(name, mayWrite());
    if (e == null) {
      optionReply(option, REP_ERR_UNKNOWN, "no export named '" + name + "'");
      return;
    }
    boolean set = option == OPT_SET_META_CONTEXT;
    List<String> chosen = new ArrayList<>();
    String canonical;
    try {
      canonical = e.name();
      if (queries.isEmpty()) {
        if (!set) {
          chosen.addAll(e.metaContexts(null)); // LIST with no query: everything selectable
        }
      } else {
        for (String q : queries) {
          List<String> found = set ? (e.offersMetaContext(q) ? List.of(q) : List.of()) : e.metaContexts(q);
          for (String c : found) {
            if (!chosen.contains(c)) {
              chosen.add(c);
            }
          }
        }
      }
    } finally {
      closeExport(e);
    }
    if (set) {
      contexts.clear();
      contexts.addAll(chosen);
      contextExport = canonical;
    }
    for (int i = 0; i < chosen.size(); i++) {
      byte[] n = chosen.get(i).getBytes(StandardCharsets.UTF_8);
      ByteBuffer b = ByteBuffer.allocate(4 + n.length);
      b.putInt(set ? i + 1 : 0).put(n).flip();
      optionReply(option, REP_META_CONTEXT, b);
    }
    optionReply(option, REP_ACK, (ByteBuffer) null);
  }

  private void optionReply(int option, int type, String message) throws IOException {
    optionReply(option, type, message == null ? null : ByteBuffer.wrap(message.getBytes(StandardCharsets.UTF_8)));
  }

  private void optionReply(int option, int type, ByteBuffer data) throws IOException {
    int len = data == null ? 0 : data.remaining();
    ByteBuffer h = ByteBuffer.allocate(20);
    h.putLong(OPTION_REPLY_MAGIC).putInt(option).putInt(type).putInt(len).flip();
    if (data == null) {
      transport.write(h);
    } else {
      transport.write(h, data);
    }
  }

  private int readInt() throws IOException {
    ByteBuffer b = ByteBuffer.allocate(4);
    transport.readFully(b);
    return b.getInt(0);
  }

  private long readLong() throws IOException {
    ByteBuffer b = ByteBuffer.allocate(8);
    transport.readFully(b);
    return b.getLong(0);
  }

  private static String string(ByteBuffer data, int len) {
    byte[] b = new byte[len];
    data.get(b);
    return new String(b, StandardCharsets.UTF_8);
  }

  // ------------------------------------------------------------------ transmission

  /** One request as read off the wire; {@code cost} payload bytes are held for it. */
  private record Request(int flags, int type, long cookie, long offset, long length, ByteBuffer payload, int cost) {}

  /**
   * Bytes to write, and what to release once they are written (or dropped). A reply of an
   * export's pinned views also holds the view. When the export wants it back (a write to the
   * volume waits for it), the view's bytes are copied and the view released: at once, on the
   * export's thread, while the reply is still queued; between two slices of the socket write
   * (see {@link #writePinned}) once the reply thread has taken it.
   */
  private static final class Reply {
    /** The buffers in order; a view's entries may be swapped for copies (under this reply's monitor). */
    final ByteBuffer[] buffers;
    /** The pinned views whose bytes are among {@link #buffers}, or null. */
    final NbdExport.SendView view;
    final Runnable after;
    /** Set once the reply thread has taken the reply to write (under the monitor). */
    private boolean claimed;
    /** Set once the view's unsent bytes are copies and the view released (under the monitor). */
    private volatile boolean copied;
    /** Set (from any thread) when the export wants {@link #view} back. */
    volatile boolean wanted;
    /** Set once {@link #after} has run: written or dropped, the view released. */
    volatile boolean done;

    Reply(ByteBuffer[] buffers, NbdExport.SendView view, Runnable after) {
      this.buffers = buffers;
      this.view = view;
      this.after = after;
    }

    ByteBuffer[] buffers() {
      return buffers;
    }

    /** The reply thread takes the reply: from now on only it copies the view out, in its own array of the batch. */
    synchronized void claim() {
      claimed = true;
    }

    /**
     * The export wants the view back: copies it now (on the export's thread) unless the reply
     * thread has taken the reply; whether the view is released.
     */
    boolean wantedWhileQueued() {
      synchronized (this) {
        wanted = true;
        if (claimed || copied) {
          return copied;
        }
        swapForCopies(buffers, 0, buffers.length);
      }
      view.release(); // outside the monitor: the export's release takes its own locks
      return true;
    }

    /** The reply thread, between slices: the view's unsent bytes among {@code all[from, to)} become copies; releases the view. */
    void copyOut(ByteBuffer[] all, int from, int to) {
      synchronized (this) {
        if (copied) {
          return;
        }
        swapForCopies(all, from, to);
      }
      view.release();
    }

    /** Swaps the view's buffers among {@code all[from, to)} for copies of their unsent bytes; caller holds the monitor. */
    private void swapForCopies(ByteBuffer[] all, int from, int to) {
      List<ByteBuffer> views = Arrays.asList(view.buffers());
      for (int k = from; k < to; k++) {
        ByteBuffer b = all[k];
        if (views.stream().anyMatch(v -> v == b)) {
          ByteBuffer copy = ByteBuffer.allocate(b.remaining());
          copy.put(b.duplicate()).flip();
          all[k] = copy;
        }
      }
      copied = true;
    }

    boolean copied() {
      return copied;
    }

    /** Written or dropped: releases the view (unless copied out before) and what else the reply held. */
    void finish() {
      boolean release;
      synchronized (this) {
        claimed = true;
        release = view != null && !copied;
      }
      if (release) {
        view.release(); // the kernel has copied the views' bytes, or never will
      }
      after.run();
      done = true;
    }
  }

  /**
   * Most bytes of one socket write while a batch holds pinned views: the export's wait for a view
   * it wants back is bounded by this slice, which the client must take, not by the whole batch.
   */
  static final int PINNED_SLICE = 256 << 10;

  /** A gathering write takes at most this many buffers (IOV_MAX is 1024) ... */
  private static final int MAX_BATCH_BUFFERS = 256;
  /** ... and stops adding replies once it holds this many bytes. */
  private static final long MAX_BATCH_BYTES = 4L << 20;

  /** Tells the reply thread to stop. */
  private static final Reply END = new Reply(new ByteBuffer[0], null, () -> {});

  private void transmission() throws IOException {
    reader = Thread.currentThread();
    Thread writer = new Thread(this::writeReplies, "nbd-reply-" + id);
    writer.setDaemon(true);
    writer.start();
    try {
      readRequests();
    } finally {
      inflight.acquireUninterruptibly(MAX_INFLIGHT); // every reply is written or dropped
      inflight.release(MAX_INFLIGHT);
      replies.add(END);
      try {
        writer.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /**
   * The reply thread: writes queued replies in order until END. Replies that are ready
   * together go out in one gathering write (a client with many requests in flight gets many
   * replies per system call).
   */
  private void writeReplies() {
    List<Reply> batch = new ArrayList<>();
    while (true) {
      Reply r;
      try {
        r = replies.take();
      } catch (InterruptedException e) {
        continue; // only END stops this thread: the releases below must all run
      }
      boolean end = r == END;
      int buffers = 0;
      long bytes = 0;
      while (!end) {
        batch.add(r);
        buffers += r.buffers().length;
        for (ByteBuffer b : r.buffers()) {
          bytes += b.remaining();
        }
        if (buffers >= MAX_BATCH_BUFFERS || bytes >= MAX_BATCH_BYTES || (r = replies.poll()) == null) {
          break;
        }
        end = r == END;
      }
      if (!batch.isEmpty()) {
        writeLock.lock();
        try {
          write(batch);
        } finally {
          writeLock.unlock();
        }
        batch.clear();
      }
      if (end) {
        return;
      }
    }
  }

  /** Writes one reply (unless the connection is broken) and releases what it held; caller holds writeLock. */
  private void write(Reply r) {
    write(List.of(r));
  }

  /** Writes the replies in order with one gathering write and releases what they held; caller holds writeLock. */
  private void write(List<Reply> batch) {
    try {
      if (!broken) {
        writeStarted = System.currentTimeMillis();
        boolean pinned = false;
        int[] start = new int[batch.size() + 1];
        for (int i = 0; i < batch.size(); i++) {
          Reply r = batch.get(i);
          if (r.view != null) {
            pinned = true;
            r.claim(); // its buffers as they are now (views, or copies made while it was queued)
          }
          start[i + 1] = start[i] + r.buffers().length;
        }
        ByteBuffer[] all;
        if (batch.size() == 1) {
          all = batch.get(0).buffers();
        } else {
          all = new ByteBuffer[start[batch.size()]];
          for (int i = 0; i < batch.size(); i++) {
            System.arraycopy(batch.get(i).buffers(), 0, all, start[i], start[i + 1] - start[i]);
          }
        }
        if (pinned) {
          writePinned(batch, all, start);
        } else {
          transport.write(all);
        }
      }
    } catch (IOException | RuntimeException e) {
      broken = true;
      LOG.debug("connection {}: could not send a reply ({}); closing", id, e.toString());
      closeQuietly();
      inflightBytes.release(PIECE);
    } finally {
      writeStarted = 0;
      for (Reply r : batch) {
        r.finish();
      }
    }
  }

  /**
   * Writes {@code all} (the buffers of {@code batch}, reply i's from {@code start[i]}) in slices of
   * at most PINNED_SLICE bytes; before each, the views of replies whose export wants them back
   * are swapped for copies of their unsent bytes and released.
   */
  private void writePinned(List<Reply> batch, ByteBuffer[] all, int[] start) throws IOException {
    int next = 0; // the first buffer with bytes left
    while (true) {
      for (int i = 0; i < batch.size(); i++) {
        Reply r = batch.get(i);
        if (r.view != null && r.wanted && !r.copied()) {
          r.copyOut(all, start[i], start[i + 1]);
        }
      }
      while (next < all.length && !all[next].hasRemaining()) {
        next++;
      }
      if (next == all.length) {
        return;
      }
      int end = next;
      long bytes = 0;
      while (end < all.length && bytes + all[end].remaining() <= PINNED_SLICE) {
        bytes += all[end++].remaining();
      }
      if (end == next) { // one buffer larger than a slice: its first PINNED_SLICE bytes
        ByteBuffer b = all[next];
        int limit = b.limit();
        b.limit(b.position() + PINNED_SLICE);
        try {
          transport.write(b);
        } finally {
          b.limit(limit);
        }
      } else {
        transport.write(Arrays.copyOfRange(all, next, end));
      }
    }
  }

  /**
   * The export wants the views of {@code r} back: copied now while the reply is queued, else by
   * the reply thread before its next slice; a client that has not taken the slice in flight once
   * the patience has passed is disconnected, which drops the reply and releases the view.
   */
  private void wanted(Reply r) {
    if (r.wantedWhileQueued()) {
      return;
    }
    server.afterPinnedSendPatience(() -> {
      if (!r.done && !r.copied()) {
        server.faults().fault("pinned send not read", peerHost, "connection " + id + " from " + peer
            + ": a write to the export waited " + server.pinnedSendPatience().toMillis()
            + " ms for bytes this client was being sent (the client does not read); closing it so the write can go on");
        closeQuietly();
      }
    });
  }

  /**
   * Sends a reply; {@code pooled} goes back to the pool once it is written. The reader thread
   * writes its own replies directly when nothing is queued (a small cached read then costs no
   * thread hand-off at all); workers always queue, so they never block on the socket.
   */
  private void send(Request r, ByteBuffer pooled, ByteBuffer... buffers) {
    send(r, pooled, null, buffers);
  }

  /** {@link #send(Request, ByteBuffer, ByteBuffer...)}, releasing {@code view} (if not null) once written or dropped. */
  private void send(Request r, ByteBuffer pooled, NbdExport.SendView view, ByteBuffer... buffers) {
    Reply reply = new Reply(buffers, view, () -> {
      server.buffers().give(pooled);
      inflightBytes.release(r.cost());
      inflight.release();
    });
    if (view != null) {
      view.whenWanted(() -> wanted(reply));
    }
    if (Thread.currentThread() == reader && replies.isEmpty() && writeLock.tryLock()) {
      try {
        write(reply);
      } finally {
        writeLock.unlock();
      }
      return;
    }
    replies.add(reply);
  }

  private void readRequests() throws IOException {
    ByteBuffer header = ByteBuffer.allocate(REQUEST_HEADER);
    BufferPool pool = server.buffers();
    NbdExport e = export;
    while (true) {
      header.clear();
      transport.readFully(header);
      header.flip();
      lastActivity = System.currentTimeMillis();
      int magic = header.getInt();
      if (magic != REQUEST_MAGIC) {
        throw new ProtocolException("bad request magic", "bad request magic 0x" + Integer.toHexString(magic));
      }
      int flags = Short.toUnsignedInt(header.getShort());
      int type = Short.toUnsignedInt(header.getShort());
      long cookie = header.getLong();
      long offset = header.getLong();
      long length = Integer.toUnsignedLong(header.getInt());
      if (type == CMD_DISC) {
        LOG.debug("connection {}: client disconnects", id);
        return;
      }
      boolean large = (type == CMD_WRITE || type == CMD_READ) && length > MAX_PAYLOAD;
      if (large && type == CMD_WRITE && blockSizesAgreed) {
        throw new ProtocolException("oversized WRITE", "WRITE of " + length + " bytes exceeds the " + MAX_PAYLOAD + " byte maximum");
      }
      if (large && !blockSizesAgreed) {
        inflight.acquireUninterruptibly();
        Request r = new Request(flags, type, cookie, offset, length, null, 0);
        if (type == CMD_WRITE) {
          streamWrite(r, e);
        } else {
          streamRead(r, e);
        }
        continue;
      }
      // backpressure: wait for replies to go out before taking more payload in
      int cost = (type == CMD_WRITE || type == CMD_READ) && length <= MAX_PAYLOAD ? (int) length : 0;
      inflight.acquireUninterruptibly();
      inflightBytes.acquireUninterruptibly(cost);
      ByteBuffer payload = null;
      if (type == CMD_WRITE) {
        payload = pool.take((int) length);
        try {
          transport.readFully(payload);
        } catch (IOException ex) {
          pool.give(payload);
          inflightBytes.release(cost);
          inflight.release();
          throw ex;
        }
        payload.flip();
      }
      Request r = new Request(flags, type, cookie, offset, length, payload, cost);
      if (type == CMD_READ && length <= INLINE_READ && inRange(r, e) && e.cached(offset, (int) length)) {
        handle(r); // cached: a hand-off to a worker would cost more than the copy
        continue;
      }
      if (type == CMD_WRITE && (flags & CMD_FLAG_FUA) == 0 && !e.readOnly() && inRange(r, e) && e.cheapWrite(offset, length)) {
        try {
          handle(r); // no copy, no sync: a page-cache write is cheaper than a hand-off
        } finally {
          pool.give(payload);
        }
        continue;
      }
      try {
        server.workers().execute(() -> {
          try {
            handle(r);
          } finally {
            pool.give(r.payload());
          }
        });
      } catch (RejectedExecutionException ex) {
        pool.give(payload);
        reply(r, ESHUTDOWN, "the server is shutting down");
        return;
      }
    }
  }

  /** Whether the request's range lies inside the export (for hints, before validation). */
  private static boolean inRange(Request r, NbdExport e) {
    return r.offset() >= 0 && r.length() > 0 && r.length() <= e.size() - r.offset();
  }

  /** Executes a request and queues exactly one reply for it, whatever happens. */
  private void handle(Request r) {
    NbdExport e = export;
    try {
      Invalid invalid = validate(r, e);
      if (invalid != null) {
        reply(r, invalid.error(), invalid.message());
        return;
      }
      boolean fua = (r.flags() & CMD_FLAG_FUA) != 0;
      switch (r.type()) {
        case CMD_READ:
          read(r, e);
          return;
        case CMD_WRITE:
          if (r.length() > 0) {
            e.write(r.offset(), r.payload(), fua);
          }
          break;
        case CMD_FLUSH:
          if (!e.readOnly()) {
            e.flush();
          }
          break;
        case CMD_TRIM:
          if (r.length() > 0) {
            e.trim(r.offset(), r.length(), fua);
          }
          break;
        case CMD_WRITE_ZEROES:
          if (r.length() > 0) {
            e.writeZeroes(r.offset(), r.length(), (r.flags() & CMD_FLAG_NO_HOLE) == 0, fua);
          }
          break;
        case CMD_BLOCK_STATUS:
          blockStatus(r, e);
          return;
        default:
          throw new IllegalStateException("validated command " + r.type());
      }
      reply(r, 0, null);
    } catch (Exception | Error ex) {
      failed(r, e, ex);
    }
  }

  /** Answers a request whose execution failed with the error the failure calls for. */
  private void failed(Request r, NbdExport e, Throwable ex) {
    if (ex instanceof NbdErrorException) {
      reply(r, ((NbdErrorException) ex).error(), ex.getMessage());
    } else if (ex instanceof IllegalArgumentException) {
      reply(r, EINVAL, ex.getMessage());
    } else {
      LOG.warn("connection {}: {} at offset {} length {} on {} failed: {}", id, commandName(r.type()), r.offset(), r.length(),
          e.name(), ex.toString());
      reply(r, EIO, ex.getMessage());
    }
  }

  /** Why a request is refused: the NBD error and a message for the log. */
  private record Invalid(int error, String message) {}

  /** The flags each command may carry (FUA is accepted on every command and ignored where it means nothing). */
  private static int flagsFor(int type) {
    switch (type) {
      case CMD_READ:
        return CMD_FLAG_FUA | CMD_FLAG_DF;
      case CMD_WRITE_ZEROES:
        return CMD_FLAG_FUA | CMD_FLAG_NO_HOLE | CMD_FLAG_FAST_ZERO;
      case CMD_BLOCK_STATUS:
        return CMD_FLAG_FUA | CMD_FLAG_REQ_ONE;
      default:
        return CMD_FLAG_FUA;
    }
  }

  /**
   * Checks a request before anything is touched, as doc/proto.md asks: EINVAL for unknown
   * commands, flags that do not apply to the command, and reads and trims past the end;
   * ENOSPC for writes and zeroing past the end (the protocol's SHOULDs, as nbdkit does); EPERM
   * for changes to a read-only export.
   */
  private Invalid validate(Request r, NbdExport e) {
    if ((r.flags() & ~KNOWN_FLAGS) != 0) {
      return new Invalid(EINVAL, "unknown command flags 0x" + Integer.toHexString(r.flags()));
    }
    if (r.type() <= CMD_WRITE_ZEROES || r.type() == CMD_BLOCK_STATUS) {
      int stray = r.flags() & ~flagsFor(r.type());
      if (stray != 0) {
        return new Invalid(EINVAL, "command flags 0x" + Integer.toHexString(stray) + " do not apply to command " + r.type());
      }
    }
    switch (r.type()) {
      case CMD_READ:
        if (r.length() > MAX_PAYLOAD && blockSizesAgreed) {
          return new Invalid(EINVAL, "READ of " + r.length() + " bytes exceeds the " + MAX_PAYLOAD + " byte maximum");
        }
        if ((r.flags() & CMD_FLAG_DF) != 0 && !structured) {
          return new Invalid(EINVAL, "DF needs structured replies");
        }
        return range(r, e, EINVAL);
      case CMD_WRITE:
      case CMD_TRIM:
      case CMD_WRITE_ZEROES:
        if (e.readOnly()) {
          return new Invalid(EPERM, "read-only export " + e.name());
        }
        if (r.type() == CMD_WRITE_ZEROES && (r.flags() & CMD_FLAG_FAST_ZERO) != 0) {
          return new Invalid(EINVAL, "fast zero is not offered by this server");
        }
        return range(r, e, r.type() == CMD_TRIM ? EINVAL : ENOSPC);
      case CMD_FLUSH:
        return null;
      case CMD_BLOCK_STATUS:
        if (!structured || contexts.isEmpty()) {
          return new Invalid(EINVAL, "BLOCK_STATUS needs structured replies and a meta context");
        }
        if (r.length() == 0) {
          return new Invalid(EINVAL, "BLOCK_STATUS of length 0");
        }
        return range(r, e, EINVAL);
      default:
        return new Invalid(EINVAL, "unsupported command " + r.type());
    }
  }

  private static Invalid range(Request r, NbdExport e, int error) {
    long size = e.size();
    if (r.offset() < 0 || r.offset() > size || r.length() > size - r.offset()) {
      return new Invalid(error, "offset " + Long.toUnsignedString(r.offset()) + " + length " + r.length() + " is past the end of "
          + e.name() + " (" + size + " bytes)");
    }
    return null;
  }

  /**
   * The bytes of [offset, offset + len): a view of the export's memory when it has one and the
   * transport is a plain socket (the kernel then copies straight from the page cache: one copy
   * where reading into a buffer makes two; only the kernel reads the view, TLS would read it in
   * Java), else {@code into}, filled and flipped.
   */
  private ByteBuffer readInto(NbdExport e, long offset, int len, ByteBuffer into) throws IOException {
    ByteBuffer view = len > 0 && !transport.isTls() ? e.residentView(offset, len) : null;
    if (view != null) {
      return view;
    }
    into.clear().limit(len);
    if (len > 0) {
      e.read(offset, into);
    }
    return into.flip();
  }

  private void read(Request r, NbdExport e) throws IOException {
    int len = (int) r.length();
    // see readInto: views of the export's memory are sent without a copy of ours; the export
    // keeps their bytes as they are until the reply is written or dropped (send's release)
    NbdExport.SendView view = len > 0 && !transport.isTls() ? e.sendView(r.offset(), len) : null;
    if (view != null) {
      ByteBuffer[] views = view.buffers();
      ByteBuffer[] out = new ByteBuffer[views.length + 1];
      System.arraycopy(views, 0, out, 1, views.length);
      if (!structured) {
        ByteBuffer h = ByteBuffer.allocate(16);
        h.putInt(SIMPLE_REPLY_MAGIC).putInt(0).putLong(r.cookie()).flip();
        out[0] = h;
      } else {
        out[0] = dataChunkHeader(r.cookie(), REPLY_FLAG_DONE, r.offset(), len);
      }
      send(r, null, view, out);
      return;
    }
    ByteBuffer data = server.buffers().take(len);
    if (len > 0) {
      try {
        e.read(r.offset(), data);
      } catch (IOException | RuntimeException | Error ex) {
        server.buffers().give(data);
        throw ex;
      }
    }
    ByteBuffer payload = data.flip();
    if (!structured) {
      ByteBuffer h = ByteBuffer.allocate(16);
      h.putInt(SIMPLE_REPLY_MAGIC).putInt(0).putLong(r.cookie()).flip();
      send(r, data, h, payload);
    } else if (len == 0) {
      server.buffers().give(data);
      send(r, null, chunkHeader(r.cookie(), REPLY_FLAG_DONE, REPLY_TYPE_NONE, 0));
    } else {
      send(r, data, dataChunkHeader(r.cookie(), REPLY_FLAG_DONE, r.offset(), len), payload);
    }
  }

  private static ByteBuffer dataChunkHeader(long cookie, int flags, long offset, long len) {
    ByteBuffer h = ByteBuffer.allocate(28);
    h.putInt(STRUCTURED_REPLY_MAGIC).putShort((short) flags).putShort((short) REPLY_TYPE_OFFSET_DATA)
        .putLong(cookie).putInt((int) (8 + len)).putLong(offset).flip();
    return h;
  }

  // ------------------------------------------------------------------ requests over 32 MiB

  /**
   * Receives a WRITE of more than MAX_PAYLOAD bytes in pieces and writes each to the export as
   * it arrives, on this (the reader) thread, holding PIECE bytes of the client's budget. A
   * request that fails validation, or whose export write fails, still has its whole payload
   * consumed so the stream stays usable; the one reply comes after the last byte. The caller has
   * acquired one in-flight permit, which the reply releases.
   */
  private void streamWrite(Request r, NbdExport e) throws IOException {
    Invalid invalid = validate(r, e);
    Throwable failure = null;
    BufferPool pool = server.buffers();
    inflightBytes.acquireUninterruptibly(PIECE);
    ByteBuffer piece = pool.take(PIECE);
    try {
      for (long done = 0; done < r.length(); ) {
        int n = (int) Math.min(PIECE, r.length() - done);
        piece.clear().limit(n);
        transport.readFully(piece);
        piece.flip();
        lastActivity = System.currentTimeMillis();
        if (invalid == null && failure == null) {
          try {
            e.write(r.offset() + done, piece, false);
          } catch (Exception | Error ex) {
            failure = ex;
          }
        }
        done += n;
      }
      if (invalid == null && failure == null && (r.flags() & CMD_FLAG_FUA) != 0) {
        try {
          e.flush();
        } catch (Exception | Error ex) {
          failure = ex;
        }
      }
    } catch (IOException | RuntimeException ex) {
      inflight.release(); // no reply will come: the stream ended inside the payload
      throw ex;
    } finally {
      pool.give(piece);
      inflightBytes.release(PIECE);
    }
    if (invalid != null) {
      reply(r, invalid.error(), invalid.message());
    } else if (failure != null) {
      failed(r, e, failure);
    } else {
      reply(r, 0, null);
    }
  }

  /**
   * Sends a READ of more than MAX_PAYLOAD bytes in pieces read one at a time into one buffer, on
   * this (the reader) thread, holding PIECE bytes of the client's budget. With structured replies
   * each piece is an OFFSET_DATA chunk, and other replies may go out between them. A simple reply
   * (or DF, which forbids fragmenting) is one header followed by all the data, so the socket is
   * held for the whole of it; an export failure after the header has gone out leaves no way to
   * tell the client, and the connection is closed (the protocol's answer). The caller has
   * acquired one in-flight permit; this releases it.
   */
  private void streamRead(Request r, NbdExport e) throws IOException {
    Invalid invalid = validate(r, e);
    boolean df = (r.flags() & CMD_FLAG_DF) != 0;
    if (invalid == null && structured && df && r.length() > 0xFFFF_FFFFL - 8) {
      invalid = new Invalid(EOVERFLOW, "a READ of " + r.length() + " bytes does not fit one chunk (DF)");
    }
    if (invalid != null) {
      reply(r, invalid.error(), invalid.message());
      return;
    }
    boolean oneChunk = !structured || df;
    BufferPool pool = server.buffers();
    inflightBytes.acquireUninterruptibly(PIECE);
    ByteBuffer piece = pool.take(PIECE);
    long done = 0;
    boolean started = false;
    try {
      if (oneChunk) {
        writeLock.lock();
        try {
          while (done < r.length()) {
            int n = (int) Math.min(PIECE, r.length() - done);
            ByteBuffer data = readInto(e, r.offset() + done, n, piece);
            if (started) {
              writeNow(data);
            } else {
              ByteBuffer h;
              if (structured) {
                h = dataChunkHeader(r.cookie(), REPLY_FLAG_DONE, r.offset(), r.length());
              } else {
                h = ByteBuffer.allocate(16);
                h.putInt(SIMPLE_REPLY_MAGIC).putInt(0).putLong(r.cookie()).flip();
              }
              started = true;
              writeNow(h, data);
            }
            done += n;
          }
        } finally {
          writeLock.unlock();
        }
      } else {
        while (done < r.length()) {
          int n = (int) Math.min(PIECE, r.length() - done);
          ByteBuffer data = readInto(e, r.offset() + done, n, piece);
          boolean last = done + n == r.length();
          writeLock.lock();
          try {
            writeNow(dataChunkHeader(r.cookie(), last ? REPLY_FLAG_DONE : 0, r.offset() + done, n), data);
          } finally {
            writeLock.unlock();
          }
          done += n;
        }
      }
      inflight.release();
    } catch (SocketFailure ex) {
      inflight.release();
      throw ex.getCause();
    } catch (Exception | Error ex) {
      if (oneChunk && started) {
        inflight.release();
        LOG.warn("connection {}: READ at offset {} length {} on {} failed after {} bytes were sent: {}; closing the connection",
            id, r.offset(), r.length(), e.name(), done, ex.toString());
        closeQuietly();
        throw new IOException("closed after a streamed READ failed part way");
      }
      failed(r, e, ex); // releases the permit with the reply
    } finally {
      pool.give(piece);
      inflightBytes.release(PIECE);
    }
  }

  /** A failure to write to the client's socket, told apart from the export's failures. */
  private static final class SocketFailure extends Exception {
    private static final long serialVersionUID = 1L;

    SocketFailure(IOException cause) {
      super(cause);
    }

    @Override
    public synchronized IOException getCause() {
      return (IOException) super.getCause();
    }
  }

  /** Writes now, from the reader thread; the caller holds writeLock. A failure breaks the connection. */
  private void writeNow(ByteBuffer... buffers) throws SocketFailure {
    if (broken) {
      throw new SocketFailure(new IOException("the connection is broken"));
    }
    writeStarted = System.currentTimeMillis();
    try {
      transport.write(buffers);
    } catch (IOException | RuntimeException ex) {
      broken = true;
      closeQuietly();
      throw new SocketFailure(ex instanceof IOException ? (IOException) ex : new IOException(ex));
    } finally {
      writeStarted = 0;
    }
  }

  // ------------------------------------------------------------------ block status

  private void blockStatus(Request r, NbdExport e) throws IOException {
    boolean one = (r.flags() & CMD_FLAG_REQ_ONE) != 0;
    List<ByteBuffer> chunks = new ArrayList<>();
    for (int i = 0; i < contexts.size(); i++) {
      String c = contexts.get(i);
      List<long[]> desc = descriptors(e, c, r.offset(), r.length());
      chunks.add(descriptors(i + 1, desc, one, r.length()));
    }
    ByteBuffer[] out = new ByteBuffer[chunks.size() * 2];
    for (int i = 0; i < chunks.size(); i++) {
      ByteBuffer c = chunks.get(i);
      out[2 * i] = chunkHeader(r.cookie(), i == chunks.size() - 1 ? REPLY_FLAG_DONE : 0, REPLY_TYPE_BLOCK_STATUS, c.remaining());
      out[2 * i + 1] = c;
    }
    send(r, null, out);
  }

  /**
   * The export's extents of [offset, offset + length) in {@code context} as {length, flags},
   * checked against the contract (in order, adjacent, from {@code offset}, at least one) and cut
   * at the end of the range.
   */
  private static List<long[]> descriptors(NbdExport e, String context, long offset, long length) throws IOException {
    List<Extent> extents = e.extents(context, offset, length);
    long end = offset + length;
    long pos = offset;
    List<long[]> out = new ArrayList<>();
    for (Extent x : extents) {
      if (x.offset() != pos) {
        throw new IOException(e.name() + " answered " + context + " at " + offset + "+" + length + " with an extent at "
            + x.offset() + " where " + pos + " was due");
      }
      long stop = Math.min(end, x.end());
      out.add(new long[] {stop - pos, x.flags()});
      pos = stop;
      if (pos == end) {
        break;
      }
    }
    if (out.isEmpty()) {
      throw new IOException(e.name() + " answered " + context + " at " + offset + "+" + length + " with no extent");
    }
    return out;
  }

  private static ByteBuffer descriptors(int contextId, List<long[]> desc, boolean one, long requested) {
    List<long[]> split = new ArrayList<>();
    for (long[] d : desc) {
      long len = d[0];
      while (len > 0 && split.size() < MAX_EXTENTS) {
        long n = Math.min(len, MAX_EXTENT_LENGTH);
        split.add(new long[] {n, d[1]});
        len -= n;
      }
      if (one && !split.isEmpty()) {
        break;
      }
    }
    if (one) {
      split = split.subList(0, 1);
      split.get(0)[0] = Math.min(split.get(0)[0], requested);
    }
    ByteBuffer b = ByteBuffer.allocate(4 + 8 * split.size());
    b.putInt(contextId);
    for (long[] d : split) {
      b.putInt((int) d[0]).putInt((int) d[1]);
    }
    return b.flip();
  }

  private static ByteBuffer chunkHeader(long cookie, int flags, int type, int length) {
    ByteBuffer h = ByteBuffer.allocate(20);
    h.putInt(STRUCTURED_REPLY_MAGIC).putShort((short) flags).putShort((short) type).putLong(cookie).putInt(length).flip();
    return h;
  }

  /** Queues success (error 0) or an error reply, simple or structured as the request needs. */
  private void reply(Request r, int error, String message) {
    if (error != 0 && structured && (r.type() == CMD_READ || r.type() == CMD_BLOCK_STATUS)) {
      byte[] m = message == null ? new byte[0] : message.getBytes(StandardCharsets.UTF_8);
      int mlen = Math.min(m.length, 4096);
      ByteBuffer p = ByteBuffer.allocate(6 + mlen);
      p.putInt(error).putShort((short) mlen).put(m, 0, mlen).flip();
      send(r, null, chunkHeader(r.cookie(), REPLY_FLAG_DONE, REPLY_TYPE_ERROR, p.remaining()), p);
    } else {
      ByteBuffer h = ByteBuffer.allocate(16);
      h.putInt(SIMPLE_REPLY_MAGIC).putInt(error).putLong(r.cookie()).flip();
      send(r, null, h);
    }
    if (error != 0) {
      LOG.debug("connection {}: {} refused with error {}: {}", id, commandName(r.type()), error, message);
    }
  }
}
