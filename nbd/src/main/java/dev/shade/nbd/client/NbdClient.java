package dev.shade.nbd.client;

import static dev.shade.nbd.protocol.Nbd.*;
import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One NBD connection to one export, in transmission: reads, writes, flushes, trims, zeroing and
 * block status, pipelined.
 *
 * <p>Thread-safe: any number of threads may issue requests at once; each request may be
 * synchronous ({@link #read(long, ByteBuffer)}) or asynchronous ({@link #readAsync(long,
 * ByteBuffer)}). At most {@link NbdClientConfig#maxInFlight()} requests are in flight; a thread
 * issuing one more waits for a reply. Callbacks attached to the futures of asynchronous requests
 * run on the connection's reader thread: they must be short and must never wait for a reply of
 * this same connection.
 */
public final class NbdClient implements Closeable {
  /*
   * How it works. A request takes a permit (the bound on requests in flight), gets the next
   * handle, is registered in the inFlight table, and is sent under sendLock with one gathering
   * write (header, then payload). One reader thread reads replies, finds each one's request by
   * handle and completes its future; structured replies are assembled from their chunks (data
   * read straight into the caller's buffer, holes zero-filled, block status parsed, errors kept)
   * until the DONE chunk. Requests larger than the server's maximum payload are split into
   * several, whose futures are combined.
   *
   * Whoever removes a request from inFlight completes it: the reader on its reply, or fail() on
   * a fatal error, which also closes the transport so every blocked thread wakes. A fatal error
   * (protocol violation, broken connection, reply timeout) is sticky: every later request fails
   * with NbdClosedException caused by it.
   *
   * Timeouts: the shared Timer closes the channel when connect or the handshake run past their
   * limit, and checks every fraction of the reply timeout whether the oldest request in flight
   * has waited longer.
   *
   * Locks: sendLock (the transport's writing side and the header buffer). No other lock; the
   * inFlight table and the permits are concurrent structures.
   */

  private final NbdClientConfig config;
  /** The URI, for messages. */
  private final String target;
  private final Transport transport;
  private final ExportInfo info;
  private final boolean structured;
  /** Negotiated meta contexts: id to name, in the server's order. */
  private final Map<Integer, String> contexts;
  /** Requests sent and not yet answered, by handle. */
  private final ConcurrentHashMap<Long, Request> inFlight = new ConcurrentHashMap<>();
  /** Bounds the requests in flight. */
  private final Semaphore permits;
  /** Next request handle. */
  private final AtomicLong nextHandle = new AtomicLong(1);
  /** Guards the transport's writing side and {@link #header}. */
  private final ReentrantLock sendLock = new ReentrantLock();
  /** Request header being sent; guarded by sendLock. */
  private final ByteBuffer header = ByteBuffer.allocateDirect(REQUEST_HEADER);
  /** The first fatal error; once set, the connection is dead. */
  private final AtomicReference<NbdException> failure = new AtomicReference<>();
  /** Set by close(): no new requests. */
  private final AtomicBoolean closing = new AtomicBoolean();
  private final Thread reader;
  /** The reply timeout check, null when there is no reply timeout. */
  private final ScheduledFuture<?> watch;

  private NbdClient(NbdClientConfig config, Transport transport, ExportInfo info, boolean structured, Map<Integer, String> contexts) {
    this.config = config;
    this.target = config.uri().toString();
    this.transport = transport;
    this.info = info;
    this.structured = structured;
    this.contexts = Collections.unmodifiableMap(new LinkedHashMap<>(contexts));
    this.permits = new Semaphore(config.maxInFlight());
    this.reader = new Thread(this::readReplies, "nbd-reader " + target);
    this.reader.setDaemon(true);
    this.reader.start();
    Duration rt = config.replyTimeout();
    if (rt.isZero()) {
      this.watch = null;
    } else {
      long period = Math.max(100, Math.min(1000, rt.toMillis() / 4));
      this.watch = Timer.SCHEDULER.scheduleAtFixedRate(this::checkReplyTimeout, period, period, TimeUnit.MILLISECONDS);
    }
  }

  // ------------------------------------------------------------------ connecting

  /** Connects to the export of {@code uri} with default settings. */
  public static NbdClient connect(String uri) throws IOException {
    return connect(NbdClientConfig.builder(uri).build());
  }

  /** Connects, negotiates and enters transmission on the configured export. */
  public static NbdClient connect(NbdClientConfig config) throws IOException {
    Handshake.Result r = handshake(config, h -> {
      String export = config.uri().export();
      Map<Integer, String> ctx = config.metaContexts().isEmpty() ? Map.of() : h.setMetaContexts(export, config.metaContexts());
      ExportInfo info = h.info(export, true);
      return new Handshake.Result(h.transport(), info, h.structured(), ctx);
    }, false);
    return new NbdClient(config, r.transport(), r.info(), r.structured(), r.contexts());
  }

  /**
   * Opens up to {@code connections} connections to one export for parallel work: more than one
   * only when the server advertises {@code CAN_MULTI_CONN} (so a flush on one covers writes on
   * all), else just the first. The caller closes them all.
   */
  public static List<NbdClient> connectMultiConn(NbdClientConfig config, int connections) throws IOException {
    if (connections < 1) {
      throw new IllegalArgumentException("connections must be at least 1: " + connections);
    }
    List<NbdClient> out = new ArrayList<>();
    out.add(connect(config));
    try {
      if (out.get(0).info().canMultiConn()) {
        while (out.size() < connections) {
          out.add(connect(config));
        }
      }
    } catch (IOException | RuntimeException e) {
      for (NbdClient c : out) {
        c.closeQuietly();
      }
      throw e;
    }
    return out;
  }

  /** The exports the server lists ({@code NBD_OPT_LIST}), with their descriptions. */
  public static List<ListedExport> list(NbdClientConfig config) throws IOException {
    return handshake(config, Handshake::list, true);
  }

  /**
   * The meta contexts of the configured export that match {@code queries}
   * ({@code NBD_OPT_LIST_META_CONTEXT}); no query asks for all of them.
   */
  public static List<String> listMetaContexts(NbdClientConfig config, String... queries) throws IOException {
    return handshake(config, h -> h.listMetaContexts(config.uri().export(), List.of(queries)), true);
  }

  /** What the server says of the configured export ({@code NBD_OPT_INFO}), without attaching to it. */
  public static ExportInfo info(NbdClientConfig config) throws IOException {
    return handshake(config, h -> h.info(config.uri().export(), false), true);
  }

  private interface Step<T> {
    T run(Handshake h) throws IOException;
  }

  /** Connects and runs the handshake with deadlines; {@code abort}: end with OPT_ABORT and close. */
  private static <T> T handshake(NbdClientConfig config, Step<T> step, boolean abort) throws IOException {
    String target = config.uri().toString();
    Transport.Plain plain = Transport.open(config.uri(), config.socketBufferBytes());
    AtomicBoolean timedOut = new AtomicBoolean();
    String[] phase = {"connect"};
    ScheduledFuture<?> deadline = Timer.SCHEDULER.schedule(() -> {
      timedOut.set(true);
      closeQuietly(plain);
    }, config.connectTimeout().toMillis(), TimeUnit.MILLISECONDS);
    Transport t = plain;
    boolean ok = false;
    try {
      try {
        plain.connect();
      } catch (IOException e) {
        if (timedOut.get()) {
          throw new NbdTimeoutException("no connection within " + config.connectTimeout().toMillis() + " ms", target);
        }
        throw new NbdException("cannot connect (" + e.getMessage() + ")", target, e);
      }
      deadline.cancel(false);
      if (timedOut.get()) {
        throw new NbdTimeoutException("no connection within " + config.connectTimeout().toMillis() + " ms", target);
      }
      phase[0] = "handshake";
      deadline = Timer.SCHEDULER.schedule(() -> {
        timedOut.set(true);
        closeQuietly(plain);
      }, config.handshakeTimeout().toMillis(), TimeUnit.MILLISECONDS);
      Handshake h = new Handshake(plain, config);
      h.begin();
      T result = step.run(h);
      t = h.transport();
      if (abort) {
        h.abort();
      }
      if (!deadline.cancel(false) || timedOut.get()) {
        throw new NbdTimeoutException("handshake not done within " + config.handshakeTimeout().toMillis() + " ms", target);
      }
      ok = !abort;
      return result;
    } catch (IOException e) {
      if (timedOut.get() && !(e instanceof NbdTimeoutException)) {
        throw new NbdTimeoutException(phase[0] + " not done within "
            + (phase[0].equals("connect") ? config.connectTimeout() : config.handshakeTimeout()).toMillis() + " ms", target);
      }
      if (e instanceof NbdException) {
        throw e;
      }
      if (config.uri().tls()) {
        // TLS 1.3 servers check the client's certificate after the client thinks the handshake
        // is done: a refusal shows up as a reset on the next option
        throw new NbdHandshakeException("connection lost during or right after the TLS handshake (" + e.getMessage()
            + "; does the server accept this client's certificate?)", target, -1, 0, e);
      }
      throw new NbdException("handshake failed (" + e + ")", target, e);
    } finally {
      deadline.cancel(false);
      if (!ok) {
        closeQuietly(t);
        closeQuietly(plain);
      }
    }
  }

  // ------------------------------------------------------------------ what was negotiated

  /** The export's size, flags, description and block sizes. */
  public ExportInfo info() {
    return info;
  }

  /** The export's size in bytes. */
  public long size() {
    return info.size();
  }

  public NbdUri uri() {
    return config.uri();
  }

  public NbdClientConfig config() {
    return config;
  }

  /** True when the server agreed to structured replies. */
  public boolean structuredReplies() {
    return structured;
  }

  /** The meta contexts the server selected, a subset of those configured, in its order. */
  public List<String> metaContexts() {
    return List.copyOf(contexts.values());
  }

  /** Requests sent and not yet answered. */
  public int inFlight() {
    return inFlight.size();
  }

  // ------------------------------------------------------------------ commands

  /**
   * Reads {@code dst.remaining()} bytes at {@code offset} into {@code dst}, from its position;
   * its position and limit are left as they are. Holes the server reports are zero-filled.
   * Requests larger than the server's maximum payload are split. The caller must not touch
   * {@code dst} until the future completes. Failures: {@link NbdErrorException} (the server's
   * error), {@link NbdClosedException}, {@link NbdTimeoutException}, {@link NbdException}.
   */
  public CompletableFuture<Void> readAsync(long offset, ByteBuffer dst) throws IOException {
    int len = dst.remaining();
    checkRange("read", offset, len);
    if (len == 0) {
      return CompletableFuture.completedFuture(null);
    }
    int max = info.maximumPayload();
    List<Request> parts = new ArrayList<>();
    for (int done = 0; done < len; done += max) {
      int n = Math.min(max, len - done);
      parts.add(send(CMD_READ, 0, offset + done, n, dst.slice(dst.position() + done, n), null));
    }
    return whenAll(parts);
  }

  /** Reads {@code dst.remaining()} bytes at {@code offset} and waits; see {@link #readAsync}. */
  public void read(long offset, ByteBuffer dst) throws IOException {
    await(readAsync(offset, dst));
  }

  /** Reads {@code length} bytes at {@code offset} into a new array. */
  public byte[] read(long offset, int length) throws IOException {
    if (length < 0) {
      throw new IllegalArgumentException("length is negative: " + length);
    }
    byte[] b = new byte[length];
    read(offset, ByteBuffer.wrap(b));
    return b;
  }

  /**
   * Writes {@code src.remaining()} bytes at {@code offset}, from its position (left as it is);
   * {@code fua}: the server makes them durable before replying (needs {@link ExportInfo#canFua()}).
   * The caller must not touch {@code src} until the future completes.
   */
  public CompletableFuture<Void> writeAsync(long offset, ByteBuffer src, boolean fua) throws IOException {
    int len = src.remaining();
    checkRange("write", offset, len);
    int flags = fuaFlag(fua);
    if (len == 0) {
      return CompletableFuture.completedFuture(null);
    }
    int max = info.maximumPayload();
    List<Request> parts = new ArrayList<>();
    for (int done = 0; done < len; done += max) {
      int n = Math.min(max, len - done);
      parts.add(send(CMD_WRITE, flags, offset + done, n, null, src.slice(src.position() + done, n)));
    }
    return whenAll(parts);
  }

  /** Writes and waits; see {@link #writeAsync}. */
  public void write(long offset, ByteBuffer src, boolean fua) throws IOException {
    await(writeAsync(offset, src, fua));
  }

  /** Writes {@code data} at {@code offset} and waits. */
  public void write(long offset, byte[] data) throws IOException {
    write(offset, ByteBuffer.wrap(data), false);
  }

  /** Makes every write the server has acknowledged durable (needs {@link ExportInfo#canFlush()}). */
  public void flush() throws IOException {
    require(info.canFlush(), "FLUSH");
    await(send(CMD_FLUSH, 0, 0, 0, null, null).done);
  }

  /** Tells the server {@code length} bytes at {@code offset} are no longer needed (needs {@link ExportInfo#canTrim()}). */
  public void trim(long offset, long length, boolean fua) throws IOException {
    require(info.canTrim(), "TRIM");
    sendPieces(CMD_TRIM, fuaFlag(fua), offset, checkLong("trim", offset, length), length);
  }

  /**
   * Makes {@code length} bytes at {@code offset} read as zeroes (needs
   * {@link ExportInfo#canWriteZeroes()}); {@code noHole}: the server must allocate them.
   */
  public void writeZeroes(long offset, long length, boolean fua, boolean noHole) throws IOException {
    require(info.canWriteZeroes(), "WRITE_ZEROES");
    sendPieces(CMD_WRITE_ZEROES, fuaFlag(fua) | (noHole ? CMD_FLAG_NO_HOLE : 0), offset, checkLong("write zeroes", offset, length),
        length);
  }

  /**
   * One BLOCK_STATUS request: the extents of every negotiated meta context from {@code offset},
   * by context name, as the server gave them. The server may describe less than {@code length}
   * bytes (and the last extent may reach past it); {@link #extents} covers a whole range.
   * {@code reqOne}: ask for one extent per context.
   */
  public Map<String, List<Extent>> blockStatus(long offset, long length, boolean reqOne) throws IOException {
    if (contexts.isEmpty()) {
      throw new IllegalStateException("no meta context was negotiated (configured: " + config.metaContexts() + "): " + this);
    }
    long n = Math.min(length, (0xFFFFFFFFL / info.minimumBlock()) * info.minimumBlock());
    checkLong("block status", offset, n);
    Request r = send(CMD_BLOCK_STATUS, reqOne ? CMD_FLAG_REQ_ONE : 0, offset, n, null, null);
    await(r.done);
    Map<String, List<Extent>> out = new LinkedHashMap<>();
    for (Map.Entry<Integer, String> c : contexts.entrySet()) {
      List<Extent> e = r.extents == null ? null : r.extents.get(c.getKey());
      if (e == null || e.isEmpty()) {
        throw new NbdException("BLOCK_STATUS (offset=" + offset + ", length=" + n + ") has no extents for " + c.getValue(), target);
      }
      out.put(c.getValue(), e);
    }
    return out;
  }

  /**
   * The extents of {@code context} covering exactly {@code [offset, offset + length)}, asking as
   * many times as the server needs (servers may answer with less than was asked), clipped to
   * the range.
   */
  public List<Extent> extents(String context, long offset, long length) throws IOException {
    if (!contexts.containsValue(context)) {
      throw new IllegalArgumentException("meta context " + context + " was not negotiated (have " + contexts.values() + "): " + this);
    }
    checkLong("block status", offset, length);
    List<Extent> out = new ArrayList<>();
    long pos = offset;
    long end = offset + length;
    while (pos < end) {
      List<Extent> got = blockStatus(pos, end - pos, false).get(context);
      for (Extent e : got) {
        if (pos >= end) {
          break;
        }
        long n = Math.min(e.length(), end - pos);
        Extent last = out.isEmpty() ? null : out.get(out.size() - 1);
        if (last != null && last.flags() == e.flags() && last.end() == pos) {
          out.set(out.size() - 1, new Extent(last.offset(), last.length() + n, last.flags()));
        } else {
          out.add(new Extent(pos, n, e.flags()));
        }
        pos += n;
      }
    }
    return out;
  }

  // ------------------------------------------------------------------ sending

  private static int fuaFlag(boolean fua) {
    return fua ? CMD_FLAG_FUA : 0;
  }

  private void require(boolean can, String what) {
    if (!can) {
      throw new UnsupportedOperationException("the server does not offer " + what + " on this export: " + this);
    }
  }

  private void checkRange(String what, long offset, long length) {
    if (offset < 0) {
      throw new IllegalArgumentException(what + " offset is negative: " + offset + ": " + this);
    }
    int min = info.minimumBlock();
    if (min > 1 && ((offset | length) & (min - 1)) != 0) {
      throw new IllegalArgumentException(what + " at offset " + offset + " of " + length + " bytes is not aligned to the server's"
          + " minimum block size " + min + ": " + this);
    }
  }

  /**
   * Checks the range of a command without payload; returns the length of the pieces to split
   * it in (its length field is 32 bits: 1 GiB pieces, aligned to the minimum block size).
   */
  private long checkLong(String what, long offset, long length) {
    if (length < 0) {
      throw new IllegalArgumentException(what + " length is negative: " + length + ": " + this);
    }
    checkRange(what, offset, length);
    return Math.max(info.minimumBlock(), (1L << 30) / info.minimumBlock() * info.minimumBlock());
  }

  private void sendPieces(int command, int flags, long offset, long piece, long length) throws IOException {
    if (length == 0) {
      return;
    }
    List<Request> parts = new ArrayList<>();
    for (long done = 0; done < length; done += piece) {
      parts.add(send(command, flags, offset + done, Math.min(piece, length - done), null, null));
    }
    await(whenAll(parts));
  }

  /** Sends one request; its future completes when the reply is in, or fails with the reply's error. */
  private Request send(int command, int flags, long offset, long length, ByteBuffer data, ByteBuffer payload)
      throws IOException {
    if ((flags & CMD_FLAG_FUA) != 0) {
      require(info.canFua(), "FUA");
    }
    try {
      permits.acquire();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting to send " + commandName(command) + ": " + this);
    }
    NbdException dead = failure.get();
    if (dead != null || closing.get()) {
      permits.release();
      throw closed(dead);
    }
    long handle = nextHandle.getAndIncrement();
    Request r = new Request(handle, command, offset, length, data);
    inFlight.put(handle, r);
    if (failure.get() != null && inFlight.remove(handle) != null) {
      permits.release(); // fail() ran between our check and our registration
      throw closed(failure.get());
    }
    sendLock.lock();
    try {
      ByteBuffer h = header;
      h.clear();
      h.putInt(REQUEST_MAGIC).putShort((short) flags).putShort((short) command).putLong(handle).putLong(offset).putInt((int) length);
      h.flip();
      if (payload == null) {
        transport.write(h);
      } else {
        transport.write(h, payload);
      }
    } catch (IOException e) {
      fail(new NbdException("cannot send " + commandName(command) + " (offset=" + offset + ", length=" + length + "): " + e, target, e));
    } finally {
      sendLock.unlock();
    }
    return r;
  }

  /**
   * A future that completes when every part has, failing with the first part's failure as it
   * is (not wrapped in a CompletionException, as dependent stages would).
   */
  private static CompletableFuture<Void> whenAll(List<Request> requests) {
    if (requests.size() == 1) {
      return requests.get(0).done;
    }
    List<CompletableFuture<Void>> parts = new ArrayList<>();
    for (Request r : requests) {
      parts.add(r.done);
    }
    CompletableFuture<Void> all = new CompletableFuture<>();
    java.util.concurrent.atomic.AtomicInteger left = new java.util.concurrent.atomic.AtomicInteger(parts.size());
    for (CompletableFuture<Void> p : parts) {
      p.whenComplete((r, e) -> {
        if (e != null) {
          all.completeExceptionally(e instanceof java.util.concurrent.CompletionException && e.getCause() != null ? e.getCause() : e);
        } else if (left.decrementAndGet() == 0) {
          all.complete(null);
        }
      });
    }
    return all;
  }

  private NbdClosedException closed(NbdException cause) {
    if (cause == null || cause instanceof NbdClosedException) {
      return new NbdClosedException("the client is closed", target, null);
    }
    return new NbdClosedException("the connection failed earlier", target, cause);
  }

  /**
   * Waits for a command's future (from {@link #readAsync} and the like) and gives its failure as
   * it was thrown: an IOException or RuntimeException as such, anything else in an IOException.
   */
  public static <T> T await(CompletableFuture<T> f) throws IOException {
    try {
      return f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting for an NBD reply");
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof IOException) {
        throw (IOException) c;
      }
      if (c instanceof RuntimeException) {
        throw (RuntimeException) c;
      }
      throw new IOException(c);
    }
  }

  // ------------------------------------------------------------------ replies

  private void readReplies() {
    ByteBuffer h = ByteBuffer.allocateDirect(32);
    try {
      while (true) {
        h.clear().limit(4);
        transport.readFully(h);
        int magic = h.getInt(0);
        if (magic == SIMPLE_REPLY_MAGIC) {
          h.limit(16);
          transport.readFully(h);
          int error = h.getInt(4);
          long handle = h.getLong(8);
          Request r = inFlight.get(handle);
          if (r == null) {
            throw new NbdException("simple reply to unknown handle " + handle, target);
          }
          if (error == 0 && r.command == CMD_READ) {
            transport.readFully(r.data.duplicate().clear());
            r.covered = r.length;
          }
          r.errno = error;
          complete(r);
        } else if (magic == STRUCTURED_REPLY_MAGIC && structured) {
          h.limit(20);
          transport.readFully(h);
          int flags = Short.toUnsignedInt(h.getShort(4));
          int type = Short.toUnsignedInt(h.getShort(6));
          long handle = h.getLong(8);
          long len = Integer.toUnsignedLong(h.getInt(16));
          Request r = inFlight.get(handle);
          if (r == null) {
            throw new NbdException("structured reply to unknown handle " + handle, target);
          }
          chunk(r, type, len);
          if ((flags & REPLY_FLAG_DONE) != 0) {
            complete(r);
          }
        } else {
          throw new NbdException("bad reply magic 0x" + Integer.toHexString(magic), target);
        }
      }
    } catch (NbdException e) {
      fail(e);
    } catch (ClosedChannelException e) {
      fail(closing.get() ? closed(null) : new NbdException("connection closed", target, e));
    } catch (EOFException e) {
      fail(closing.get() ? closed(null) : new NbdException("the server closed the connection", target, e));
    } catch (IOException e) {
      fail(closing.get() ? closed(null) : new NbdException("connection broken (" + e.getMessage() + ")", target, e));
    } catch (RuntimeException e) {
      fail(new NbdException("reply reader failed (" + e + ")", target, e));
    }
  }

  /** Reads one chunk of {@code len} bytes of {@code type} for {@code r}. */
  private void chunk(Request r, int type, long len) throws IOException {
    String where = commandName(r.command) + " (offset=" + r.offset + ", length=" + r.length + ")";
    switch (type) {
      case REPLY_TYPE_NONE:
        if (len != 0) {
          throw new NbdException(where + ": NONE chunk of " + len + " bytes", target);
        }
        return;
      case REPLY_TYPE_OFFSET_DATA: {
        if (r.command != CMD_READ || len < 9) {
          throw new NbdException(where + ": OFFSET_DATA chunk of " + len + " bytes", target);
        }
        long off = readLong();
        long n = len - 8;
        long pos = off - r.offset;
        if (pos < 0 || pos + n > r.length) {
          throw new NbdException(where + ": data chunk [" + off + ", +" + n + ") outside the request", target);
        }
        ByteBuffer d = r.data.duplicate();
        d.limit((int) (pos + n)).position((int) pos);
        transport.readFully(d);
        r.covered += n;
        return;
      }
      case REPLY_TYPE_OFFSET_HOLE: {
        if (r.command != CMD_READ || len != 12) {
          throw new NbdException(where + ": OFFSET_HOLE chunk of " + len + " bytes", target);
        }
        long off = readLong();
        long n = Integer.toUnsignedLong(readInt());
        long pos = off - r.offset;
        if (pos < 0 || n == 0 || pos + n > r.length) {
          throw new NbdException(where + ": hole chunk [" + off + ", +" + n + ") outside the request", target);
        }
        zero(r.data, (int) pos, (int) n);
        r.covered += n;
        return;
      }
      case REPLY_TYPE_BLOCK_STATUS: {
        if (r.command != CMD_BLOCK_STATUS || len < 12 || (len - 4) % 8 != 0 || len > MAX_BLOCK_STATUS_CHUNK) {
          throw new NbdException(where + ": BLOCK_STATUS chunk of " + len + " bytes", target);
        }
        ByteBuffer b = ByteBuffer.allocate((int) len);
        transport.readFully(b);
        b.flip();
        int id = b.getInt();
        if (!contexts.containsKey(id)) {
          throw new NbdException(where + ": block status for unknown context id " + id, target);
        }
        List<Extent> list = new ArrayList<>((int) ((len - 4) / 8));
        long pos = r.offset;
        while (b.hasRemaining()) {
          long n = Integer.toUnsignedLong(b.getInt());
          int st = b.getInt();
          if (n == 0) {
            throw new NbdException(where + ": extent of length 0 for " + contexts.get(id), target);
          }
          list.add(new Extent(pos, n, st));
          pos += n;
        }
        r.extents().put(id, list);
        return;
      }
      case REPLY_TYPE_ERROR:
      case REPLY_TYPE_ERROR_OFFSET: {
        long fixed = type == REPLY_TYPE_ERROR ? 6 : 14;
        if (len < fixed || len > MAX_OPTION) {
          throw new NbdException(where + ": error chunk of " + len + " bytes", target);
        }
        ByteBuffer b = ByteBuffer.allocate((int) len);
        transport.readFully(b);
        b.flip();
        int error = b.getInt();
        int mlen = Short.toUnsignedInt(b.getShort());
        if (mlen > len - fixed) {
          throw new NbdException(where + ": error message of " + mlen + " bytes in a chunk of " + len, target);
        }
        byte[] m = new byte[mlen];
        b.get(m);
        long at = type == REPLY_TYPE_ERROR_OFFSET ? b.getLong() : -1;
        if (r.errno == 0) {
          r.errno = error == 0 ? EIO : error;
          r.message = new String(m, UTF_8);
          r.errorOffset = at;
        }
        return;
      }
      default:
        skip(len);
        if ((type & 0x8000) != 0 && r.errno == 0) {
          r.errno = EIO;
          r.message = "unknown error chunk type " + type;
        }
    }
  }

  /**
   * Largest block status chunk read: 4 MiB of descriptors (qemu sends at most 1 MiB, 128 Ki
   * extents, per context).
   */
  static final long MAX_BLOCK_STATUS_CHUNK = (4L << 20) + 4;

  /** Zeroes copied into a read's buffer where the server reports a hole. */
  private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(64 << 10);

  private static void zero(ByteBuffer dst, int pos, int n) {
    for (int done = 0; done < n; ) {
      int k = Math.min(ZEROES.capacity(), n - done);
      dst.put(pos + done, ZEROES, 0, k);
      done += k;
    }
  }

  /** Small reads and skipped bytes of the reader thread; reader thread only. */
  private final ByteBuffer scratch = ByteBuffer.allocateDirect(8 << 10);

  private long readLong() throws IOException {
    scratch.clear().limit(8);
    transport.readFully(scratch);
    return scratch.getLong(0);
  }

  private int readInt() throws IOException {
    scratch.clear().limit(4);
    transport.readFully(scratch);
    return scratch.getInt(0);
  }

  private void skip(long n) throws IOException {
    while (n > 0) {
      int k = (int) Math.min(n, scratch.capacity());
      scratch.clear().limit(k);
      transport.readFully(scratch);
      n -= k;
    }
  }

  /** Completes {@code r} from its reply, if nothing else (fail) claimed it first. */
  private void complete(Request r) {
    if (inFlight.remove(r.handle) == null) {
      return;
    }
    permits.release();
    if (r.errno != 0) {
      r.done.completeExceptionally(new NbdErrorException(r.errno, r.command, r.offset, r.length, r.errorOffset, r.message, target));
    } else if (r.command == CMD_READ && r.covered != r.length) {
      r.done.completeExceptionally(new NbdException(commandName(r.command) + " (offset=" + r.offset + ", length=" + r.length
          + ") succeeded with " + r.covered + " bytes of data and holes", target));
    } else {
      r.done.complete(null);
    }
  }

  private void checkReplyTimeout() {
    long limit = config.replyTimeout().toNanos();
    long now = System.nanoTime();
    for (Request r : inFlight.values()) {
      if (now - r.sentNanos > limit) {
        fail(new NbdTimeoutException("no reply to " + commandName(r.command) + " (offset=" + r.offset + ", length=" + r.length
            + ") within " + config.replyTimeout().toMillis() + " ms", target));
        return;
      }
    }
  }

  /** Kills the connection: the first failure sticks, every request in flight fails with it. */
  private void fail(NbdException e) {
    failure.compareAndSet(null, e);
    closeQuietly(transport);
    if (watch != null) {
      watch.cancel(false);
    }
    NbdException why = failure.get();
    for (Long h : new ArrayList<>(inFlight.keySet())) {
      Request r = inFlight.remove(h);
      if (r != null) {
        permits.release();
        r.done.completeExceptionally(why);
      }
    }
  }

  // ------------------------------------------------------------------ closing

  /**
   * Waits for the requests in flight (up to the reply timeout, or 60 s without one), sends
   * {@code NBD_CMD_DISC} and closes the connection. Later requests fail with
   * {@link NbdClosedException}. Idempotent; never fails (a server that already closed is fine).
   */
  @Override
  public void close() {
    if (!closing.compareAndSet(false, true)) {
      return;
    }
    long waitMs = config.replyTimeout().isZero() ? 60_000 : config.replyTimeout().toMillis();
    int all = config.maxInFlight();
    boolean drained = false;
    try {
      drained = permits.tryAcquire(all, waitMs, TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (failure.get() == null && drained) {
      sendLock.lock();
      try {
        header.clear();
        header.putInt(REQUEST_MAGIC).putShort((short) 0).putShort((short) CMD_DISC).putLong(nextHandle.getAndIncrement())
            .putLong(0).putInt(0).flip();
        transport.write(header);
        transport.shutdownOutput();
      } catch (IOException e) {
        // DISC is a courtesy: the server may already have closed its side; closing goes on
      } finally {
        sendLock.unlock();
      }
    }
    if (drained) {
      permits.release(all);
    }
    fail(closed(null));
    try {
      reader.join(1000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  void closeQuietly() {
    close();
  }

  private static void closeQuietly(Closeable c) {
    try {
      c.close();
    } catch (IOException e) {
      // nothing to do
    }
  }

  @Override
  public String toString() {
    return "NBD client of " + target;
  }
}
