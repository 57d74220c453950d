package dev.shade.nbd.testing;

import static dev.shade.nbd.protocol.Nbd.*;
import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;

/**
 * NBD frames on one connection, for tests of how the server copes with what a correct client
 * never sends: malformed or oversized options and requests, options out of order, STARTTLS with
 * bytes behind it, odd cookies, replies never read. It writes exactly the bytes it is told to and
 * reads the server's frames strictly (magics, lengths, cookies, chunk bounds), failing the test
 * on any protocol violation by the server. Tests that speak correct NBD use
 * {@link dev.shade.nbd.client.NbdClient} instead.
 *
 * <p>Not thread-safe: one test thread per connection.
 */
public final class RawNbd implements Closeable {
  /*
   * Reads time out after TIMEOUT, so a server that neither answers nor closes fails the test
   * instead of hanging it. Replies are matched to requests by cookie; replies to other cookies
   * that arrive while one is awaited are kept for later, since the server may answer in any
   * order. Structured chunks are checked against the rules of doc/proto.md: data and holes inside
   * the request and not overlapping, exactly one block status chunk per context, error chunks
   * with consistent message lengths, DONE on the last chunk.
   */

  /** Largest READ whose data this client collects (a server may stream larger ones in chunks). */
  static final long MAX_READ = 256L << 20;

  /** Reads that wait longer than this fail: the server neither answered nor closed. */
  public static final Duration TIMEOUT = Duration.ofSeconds(10);

  /** One reply of the option haggling. */
  public record OptionReply(int option, int type, byte[] data) {
    public boolean isError() {
      return type < 0; // bit 31
    }

    public boolean isFinal() {
      return type == REP_ACK || isError();
    }

    @Override
    public String toString() {
      return optionName(option) + " reply " + replyName(type) + " (" + data.length + " bytes"
          + (isError() && data.length > 0 ? ": " + new String(data, UTF_8) : "") + ")";
    }
  }

  /** What the server said about the export the client attached to. */
  public record Attached(long size, int flags) {
    public boolean readOnly() {
      return (flags & FLAG_READ_ONLY) != 0;
    }
  }

  /**
   * The complete reply to one request: error 0 with data or extents, or an error; {@code simple}
   * when it came as a simple reply, {@code message} the text of an error chunk (null otherwise).
   */
  public record Reply(long cookie, int command, int error, String message, byte[] data, Map<Integer, List<long[]>> extents,
      boolean simple) {
    @Override
    public String toString() {
      return commandName(command) + " cookie " + Long.toHexString(cookie) + ": "
          + (error == 0 ? "ok" : "error " + error + (message == null || message.isEmpty() ? "" : " (" + message + ")"));
    }
  }

  /** A request waiting for its reply. */
  private record Pending(int command, long offset, long length) {}

  /** A structured reply being assembled from its chunks. */
  private static final class Partial {
    final Pending request;
    final byte[] data;
    /** Byte ranges {from, to} of the request already covered by data or hole chunks. */
    final List<long[]> covered = new ArrayList<>();
    final Map<Integer, List<long[]>> extents = new LinkedHashMap<>();
    int error;
    String message;

    Partial(Pending request) {
      this.request = request;
      this.data = request.command() == CMD_READ && request.length() <= MAX_READ ? new byte[(int) request.length()] : null;
    }
  }

  private final Socket plain;
  private Socket socket;
  private DataInputStream in;
  private OutputStream out;
  /** True once the server acknowledged OPT_STRUCTURED_REPLY (reset by STARTTLS). */
  private boolean structured;
  /** Requests sent and not yet answered, by cookie. */
  private final Map<Long, Pending> pending = new HashMap<>();
  /** Structured replies whose DONE chunk has not arrived yet. */
  private final Map<Long, Partial> partial = new HashMap<>();
  /** Replies that arrived while another cookie was awaited. */
  private final Map<Long, Reply> early = new LinkedHashMap<>();
  /** What the last successful GO said of the export, or null. */
  private Attached attached;
  /** Meta contexts chosen by the last SET_META_CONTEXT: id to name. */
  private final Map<Integer, String> contexts = new LinkedHashMap<>();
  private long nextCookie = 1;

  private RawNbd(Socket socket) throws IOException {
    this.plain = socket;
    use(socket);
  }

  private void use(Socket s) throws IOException {
    this.socket = s;
    this.in = new DataInputStream(s.getInputStream());
    this.out = new BufferedOutputStream(s.getOutputStream(), 64 << 10);
  }

  /** Opens a TCP connection; reads nothing yet. */
  public static RawNbd connect(InetSocketAddress address) throws IOException {
    Socket s = new Socket();
    try {
      s.setTcpNoDelay(true);
      s.connect(address, (int) TIMEOUT.toMillis());
      s.setSoTimeout((int) TIMEOUT.toMillis());
    } catch (IOException e) {
      s.close();
      throw e;
    }
    return new RawNbd(s);
  }

  /** Connects, negotiates as a well-behaved client would and enters transmission on {@code export}. */
  public static RawNbd attach(InetSocketAddress address, String export, boolean structuredReplies, String... contexts)
      throws IOException {
    RawNbd c = connect(address);
    try {
      c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
      if (structuredReplies) {
        c.structuredReplies();
        if (contexts.length > 0) {
          c.setMetaContext(export, contexts);
        }
      }
      c.go(export);
      return c;
    } catch (IOException | RuntimeException | AssertionError e) {
      c.close();
      throw e;
    }
  }

  public boolean structured() {
    return structured;
  }

  public Map<Integer, String> contexts() {
    return contexts;
  }

  /** The export's size and flags from the last successful GO, or null before one. */
  public Attached attached() {
    return attached;
  }

  // ------------------------------------------------------------------ handshake

  /** Reads the server's greeting and returns its handshake flags. */
  public int greeting() throws IOException {
    assertEquals(NBDMAGIC, in.readLong(), "greeting magic");
    assertEquals(IHAVEOPT, in.readLong(), "greeting IHAVEOPT");
    int flags = in.readUnsignedShort();
    assertTrue((flags & FLAG_FIXED_NEWSTYLE) != 0, "server does not offer fixed newstyle: flags 0x" + Integer.toHexString(flags));
    return flags;
  }

  /** Reads the greeting and sends {@code clientFlags}. */
  public void handshake(int clientFlags) throws IOException {
    greeting();
    clientFlags(clientFlags);
  }

  /** Sends the client flags (after the greeting). */
  public void clientFlags(int flags) throws IOException {
    out.write(ByteBuffer.allocate(4).putInt(flags).array());
    out.flush();
  }

  /** The bytes of an option: magic, option, declared length, then {@code data} as is. */
  public static byte[] option(long magic, int option, long declaredLength, byte[] data) {
    ByteBuffer b = ByteBuffer.allocate(16 + data.length);
    b.putLong(magic).putInt(option).putInt((int) declaredLength).put(data);
    return b.array();
  }

  /** Sends a well-formed option. */
  public void sendOption(int option, byte[] data) throws IOException {
    out.write(option(IHAVEOPT, option, data.length, data));
    out.flush();
  }

  /** Reads one option reply; fails on a bad magic or an absurd length. */
  private OptionReply readOptionReply() throws IOException {
    long magic;
    try {
      magic = in.readLong();
    } catch (EOFException | SocketException e) {
      throw new AssertionError("the server closed the connection instead of answering an option", e);
    }
    assertEquals(OPTION_REPLY_MAGIC, magic, "option reply magic");
    int option = in.readInt();
    int type = in.readInt();
    long len = Integer.toUnsignedLong(in.readInt());
    assertTrue(len <= MAX_OPTION, "option reply of " + len + " bytes");
    byte[] data = new byte[(int) len];
    in.readFully(data);
    return new OptionReply(option, type, data);
  }

  /** Reads replies to {@code option} up to and including the final one (ACK or an error). */
  public List<OptionReply> optionReplies(int option) throws IOException {
    List<OptionReply> out = new ArrayList<>();
    while (true) {
      OptionReply r = readOptionReply();
      assertEquals(option, r.option(), "reply names another option: " + r);
      out.add(r);
      if (r.isFinal()) {
        return out;
      }
      assertTrue(r.type() == REP_SERVER || r.type() == REP_INFO || r.type() == REP_META_CONTEXT, "unknown reply type: " + r);
    }
  }

  /** Sends {@code option} and returns all its replies. */
  public List<OptionReply> negotiate(int option, byte[] data) throws IOException {
    sendOption(option, data);
    return optionReplies(option);
  }

  /** Negotiates structured replies; fails unless the server acknowledges. */
  public void structuredReplies() throws IOException {
    List<OptionReply> r = negotiate(OPT_STRUCTURED_REPLY, new byte[0]);
    assertEquals(1, r.size(), "STRUCTURED_REPLY replies: " + r);
    assertEquals(REP_ACK, r.get(0).type(), "STRUCTURED_REPLY: " + r);
    structured = true;
  }

  /** Data of INFO/GO: name and information requests. */
  public static byte[] infoRequest(String export, int... infos) {
    byte[] n = export.getBytes(UTF_8);
    ByteBuffer b = ByteBuffer.allocate(4 + n.length + 2 + 2 * infos.length);
    b.putInt(n.length).put(n).putShort((short) infos.length);
    for (int i : infos) {
      b.putShort((short) i);
    }
    return b.array();
  }

  /** Data of LIST/SET_META_CONTEXT: export name and queries. */
  public static byte[] metaContextRequest(String export, String... queries) {
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    byte[] n = export.getBytes(UTF_8);
    o.writeBytes(ByteBuffer.allocate(4).putInt(n.length).array());
    o.writeBytes(n);
    o.writeBytes(ByteBuffer.allocate(4).putInt(queries.length).array());
    for (String q : queries) {
      byte[] qb = q.getBytes(UTF_8);
      o.writeBytes(ByteBuffer.allocate(4).putInt(qb.length).array());
      o.writeBytes(qb);
    }
    return o.toByteArray();
  }

  /** Selects meta contexts; returns them by id (also kept for checking block status replies). */
  public Map<Integer, String> setMetaContext(String export, String... queries) throws IOException {
    List<OptionReply> replies = negotiate(OPT_SET_META_CONTEXT, metaContextRequest(export, queries));
    OptionReply last = replies.get(replies.size() - 1);
    assertEquals(REP_ACK, last.type(), "SET_META_CONTEXT " + export + ": " + replies);
    contexts.clear();
    for (OptionReply r : replies.subList(0, replies.size() - 1)) {
      assertEquals(REP_META_CONTEXT, r.type(), "SET_META_CONTEXT: " + r);
      ByteBuffer b = ByteBuffer.wrap(r.data());
      int id = b.getInt();
      String name = new String(r.data(), 4, r.data().length - 4, UTF_8);
      assertTrue(contexts.put(id, name) == null, "context id " + id + " given twice");
    }
    return contexts;
  }

  /** Enters transmission with OPT_GO; fails unless the server accepts. */
  public Attached go(String export) throws IOException {
    List<OptionReply> replies = negotiate(OPT_GO, infoRequest(export, INFO_BLOCK_SIZE));
    attached = attached("GO " + export, replies);
    return attached;
  }

  /** Checks the replies of a successful INFO or GO and returns the export's size and flags. */
  public static Attached attached(String what, List<OptionReply> replies) {
    OptionReply last = replies.get(replies.size() - 1);
    assertEquals(REP_ACK, last.type(), what + ": " + replies);
    Attached a = null;
    for (OptionReply r : replies.subList(0, replies.size() - 1)) {
      assertEquals(REP_INFO, r.type(), what + ": " + r);
      ByteBuffer b = ByteBuffer.wrap(r.data());
      int info = Short.toUnsignedInt(b.getShort());
      if (info == INFO_EXPORT) {
        assertEquals(12, r.data().length, what + ": INFO_EXPORT length");
        a = new Attached(b.getLong(), Short.toUnsignedInt(b.getShort()));
      } else if (info == INFO_BLOCK_SIZE) {
        assertEquals(14, r.data().length, what + ": INFO_BLOCK_SIZE length");
        int min = b.getInt();
        int preferred = b.getInt();
        int max = b.getInt();
        assertTrue(min >= 1 && min <= preferred && preferred <= max && Integer.bitCount(min) == 1
            && Integer.bitCount(preferred) == 1, what + ": block sizes " + min + "/" + preferred + "/" + max);
      }
    }
    assertTrue(a != null, what + ": no INFO_EXPORT among " + replies);
    assertTrue((a.flags() & FLAG_HAS_FLAGS) != 0, what + ": transmission flags lack HAS_FLAGS");
    return a;
  }

  /** Enters transmission with the old EXPORT_NAME option. */
  public Attached exportName(String export, boolean noZeroes) throws IOException {
    byte[] n = export.getBytes(UTF_8);
    sendOption(OPT_EXPORT_NAME, n);
    long size = in.readLong();
    int flags = in.readUnsignedShort();
    if (!noZeroes) {
      byte[] zeroes = new byte[124];
      in.readFully(zeroes);
      assertTrue(Arrays.equals(zeroes, new byte[zeroes.length]), "EXPORT_NAME reply padding is not zero");
    }
    return new Attached(size, flags);
  }

  /**
   * Upgrades to TLS after STARTTLS was acknowledged: the handshake runs as a client presenting
   * the certificate of {@code ctx}, and everything negotiated before is forgotten.
   */
  public void startTls(SSLContext ctx) throws IOException {
    InetSocketAddress peer = (InetSocketAddress) plain.getRemoteSocketAddress();
    SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(plain, peer.getHostString(), peer.getPort(), true);
    s.setUseClientMode(true);
    s.setSoTimeout(plain.getSoTimeout());
    s.startHandshake();
    use(s);
    structured = false;
    contexts.clear();
  }

  // ------------------------------------------------------------------ transmission

  /** The 28 bytes of a request header. */
  public static byte[] header(int magic, int flags, int type, long cookie, long offset, long length) {
    ByteBuffer b = ByteBuffer.allocate(REQUEST_HEADER);
    b.putInt(magic).putShort((short) flags).putShort((short) type).putLong(cookie).putLong(offset).putInt((int) length);
    return b.array();
  }

  public long newCookie() {
    return nextCookie++;
  }

  /**
   * Sends a request (with {@code payload} after the header when not null) and remembers it so its
   * reply can be parsed; DISC is not remembered, it has no reply.
   */
  public void request(int flags, int type, long cookie, long offset, long length, byte[] payload) throws IOException {
    if (type != CMD_DISC) {
      assertTrue(pending.put(cookie, new Pending(type, offset, length)) == null, "cookie " + cookie + " is already in flight");
    }
    out.write(header(REQUEST_MAGIC, flags, type, cookie, offset, length));
    if (payload != null) {
      out.write(payload);
    }
    out.flush();
  }

  /** Sends raw bytes; false when the server had already closed the connection. */
  public boolean sendRaw(byte[] bytes) {
    try {
      out.write(bytes);
      out.flush();
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  /** Reads until the reply to {@code cookie} is complete, keeping other replies for later. */
  public Reply await(long cookie) throws IOException {
    Reply r = early.remove(cookie);
    while (r == null) {
      Reply next = fromWire();
      if (next.cookie() == cookie) {
        r = next;
      } else {
        early.put(next.cookie(), next);
      }
    }
    return r;
  }

  /** The next complete reply, whichever request it belongs to. */
  public Reply next() throws IOException {
    if (!early.isEmpty()) {
      Long first = early.keySet().iterator().next();
      return early.remove(first);
    }
    return fromWire();
  }

  /** The next reply read off the socket. */
  private Reply fromWire() throws IOException {
    try {
      while (true) {
        int magic = in.readInt();
        if (magic == SIMPLE_REPLY_MAGIC) {
          return simple();
        } else if (magic == STRUCTURED_REPLY_MAGIC) {
          assertTrue(structured, "structured reply chunk although structured replies were not negotiated");
          Reply r = chunk();
          if (r != null) {
            return r;
          }
        } else {
          fail("reply with bad magic 0x" + Integer.toHexString(magic));
        }
      }
    } catch (EOFException | SocketException e) {
      throw new AssertionError("the server closed the connection with " + pending.size() + " requests unanswered: "
          + pending.keySet().stream().map(Long::toHexString).toList(), e);
    }
  }

  private Pending take(long cookie) {
    Pending p = pending.remove(cookie);
    assertTrue(p != null, "reply for cookie " + Long.toHexString(cookie) + ", which is not in flight (in flight: " + pending.keySet() + ")");
    return p;
  }

  private Reply simple() throws IOException {
    int error = in.readInt();
    long cookie = in.readLong();
    assertTrue(!partial.containsKey(cookie), "simple reply for cookie " + Long.toHexString(cookie) + " after structured chunks");
    Pending p = take(cookie);
    if (structured) {
      assertTrue(p.command() != CMD_READ, "simple reply (error " + error + ") to READ although structured replies were negotiated");
      assertTrue(p.command() != CMD_BLOCK_STATUS || error != 0, "successful BLOCK_STATUS answered by a simple reply");
    }
    assertTrue(error >= 0, "negative error " + error);
    byte[] data = new byte[0];
    if (error == 0 && p.command() == CMD_READ) {
      data = new byte[(int) p.length()];
      in.readFully(data);
    }
    return new Reply(cookie, p.command(), error, null, data, Map.of(), true);
  }

  /** Reads one structured chunk; returns the reply when this chunk completes it. */
  private Reply chunk() throws IOException {
    int flags = in.readUnsignedShort();
    int type = in.readUnsignedShort();
    long cookie = in.readLong();
    long len = Integer.toUnsignedLong(in.readInt());
    Partial p = partial.get(cookie);
    if (p == null) {
      p = new Partial(take(cookie));
      partial.put(cookie, p);
    }
    Pending req = p.request;
    String where = "chunk type " + type + " for " + commandName(req.command()) + " cookie " + Long.toHexString(cookie);
    assertTrue(len <= MAX_READ + 8L, where + ": length " + len);
    switch (type) {
      case REPLY_TYPE_NONE:
        assertEquals(0, len, where + ": NONE with a payload");
        assertTrue((flags & REPLY_FLAG_DONE) != 0, where + ": NONE without DONE");
        break;
      case REPLY_TYPE_OFFSET_DATA: {
        assertEquals(CMD_READ, req.command(), where);
        assertTrue(len >= 9, where + ": OFFSET_DATA of length " + len);
        long offset = in.readLong();
        int n = (int) (len - 8);
        cover(p, offset, n, where);
        in.readFully(p.data, (int) (offset - req.offset()), n);
        break;
      }
      case REPLY_TYPE_OFFSET_HOLE: {
        assertEquals(CMD_READ, req.command(), where);
        assertEquals(12, len, where + ": OFFSET_HOLE length");
        long offset = in.readLong();
        long n = Integer.toUnsignedLong(in.readInt());
        assertTrue(n > 0, where + ": empty hole");
        cover(p, offset, n, where);
        break;
      }
      case REPLY_TYPE_BLOCK_STATUS: {
        assertEquals(CMD_BLOCK_STATUS, req.command(), where);
        assertTrue(len >= 12 && (len - 4) % 8 == 0, where + ": BLOCK_STATUS length " + len);
        int id = in.readInt();
        assertTrue(contexts.containsKey(id), where + ": unknown context id " + id + " (negotiated " + contexts + ")");
        List<long[]> d = new ArrayList<>();
        for (long i = 0; i < (len - 4) / 8; i++) {
          long n = Integer.toUnsignedLong(in.readInt());
          long status = Integer.toUnsignedLong(in.readInt());
          assertTrue(n > 0, where + ": descriptor of length 0");
          d.add(new long[] {n, status});
        }
        assertTrue(p.extents.put(id, d) == null, where + ": second chunk for context " + id);
        break;
      }
      case REPLY_TYPE_ERROR:
      case REPLY_TYPE_ERROR_OFFSET: {
        long fixed = type == REPLY_TYPE_ERROR ? 6 : 14;
        assertTrue(len >= fixed, where + ": error chunk of length " + len);
        int error = in.readInt();
        int mlen = in.readUnsignedShort();
        assertTrue(error != 0, where + ": error chunk with error 0");
        assertTrue(mlen <= len - fixed, where + ": message length " + mlen + " in a chunk of " + len);
        byte[] m = new byte[mlen];
        in.readFully(m);
        if (type == REPLY_TYPE_ERROR_OFFSET) {
          long offset = in.readLong();
          assertTrue(offset >= req.offset() && offset - req.offset() < req.length(), where + ": error offset " + offset + " outside the request");
        }
        skip(len - fixed - mlen);
        if (p.error == 0) {
          p.error = error;
          p.message = new String(m, UTF_8);
        }
        break;
      }
      default:
        assertTrue((type & 0x8000) != 0, where + ": unknown chunk type");
        skip(len); // an unknown error type: the reply failed
        if (p.error == 0) {
          p.error = EIO;
          p.message = "unknown error chunk type " + type;
        }
    }
    if ((flags & REPLY_FLAG_DONE) == 0) {
      return null;
    }
    partial.remove(cookie);
    if (p.error == 0) {
      if (req.command() == CMD_READ) {
        long total = 0;
        for (long[] c : p.covered) {
          total += c[1] - c[0];
        }
        assertEquals(req.length(), total, where + ": success without covering the whole request");
      } else if (req.command() == CMD_BLOCK_STATUS) {
        assertEquals(contexts.keySet(), p.extents.keySet(), where + ": contexts answered");
      }
    }
    return new Reply(cookie, req.command(), p.error, p.message, p.data == null ? new byte[0] : p.data, p.extents, false);
  }

  private static void cover(Partial p, long offset, long n, String where) {
    Pending req = p.request;
    assertTrue(Long.compareUnsigned(offset, req.offset()) >= 0 && offset - req.offset() + n <= req.length(),
        where + ": content [" + offset + ", +" + n + ") outside the request [" + req.offset() + ", +" + req.length() + ")");
    long from = offset;
    long to = offset + n;
    for (long[] c : p.covered) {
      assertTrue(to <= c[0] || from >= c[1], where + ": content [" + from + ", " + to + ") overlaps earlier content");
    }
    p.covered.add(new long[] {from, to});
  }

  private void skip(long n) throws IOException {
    byte[] b = new byte[(int) Math.min(n, 8192)];
    while (n > 0) {
      int k = (int) Math.min(n, b.length);
      in.readFully(b, 0, k);
      n -= k;
    }
  }

  // ------------------------------------------------------------------ compositions of frames

  /** Sends one request with a new cookie and waits for its reply. */
  public Reply call(int flags, int type, long offset, long length, byte[] payload) throws IOException {
    long cookie = newCookie();
    request(flags, type, cookie, offset, length, payload);
    return await(cookie);
  }

  /** Reads {@code length} bytes at {@code offset}; fails on an error reply. */
  public byte[] read(long offset, int length) throws IOException {
    Reply r = call(0, CMD_READ, offset, length, null);
    assertEquals(0, r.error(), "READ " + offset + "+" + length + ": " + r);
    return r.data();
  }

  /** Sends DISC and waits for the server to close; fails if it sends anything. */
  public void disconnect() throws IOException {
    assertEquals(0, pending.size(), "requests still in flight: " + pending.keySet());
    request(0, CMD_DISC, newCookie(), 0, 0, null);
    byte[] rest = drainUntilClosed();
    assertEquals(0, rest.length, "bytes after DISC");
    close();
  }

  /** Ends sending (TCP FIN) but keeps reading. */
  public void halfClose() {
    try {
      out.flush();
      socket.shutdownOutput();
    } catch (IOException | UnsupportedOperationException e) {
      // already closed by the server; reading tells the rest
    }
  }

  /** Drops the connection with a TCP reset, whatever is in flight. */
  public void abort() {
    try {
      plain.setSoLinger(true, 0);
    } catch (IOException e) {
      // closing anyway
    }
    closeQuietly();
  }

  /**
   * Reads until the server closes the connection (end of stream or reset) and returns what
   * came before; fails if the server keeps it open longer than {@link #TIMEOUT}.
   */
  public byte[] drainUntilClosed() throws IOException {
    ByteArrayOutputStream got = new ByteArrayOutputStream();
    byte[] b = new byte[8192];
    InputStream s = in;
    while (true) {
      int n;
      try {
        n = s.read(b);
      } catch (SocketTimeoutException e) {
        throw new AssertionError("the server kept the connection open for " + TIMEOUT.toSeconds() + " s; received "
            + got.size() + " bytes", e);
      } catch (EOFException | SocketException e) {
        return got.toByteArray(); // reset by the server
      } catch (IOException e) {
        if (e.getClass().getName().contains("SSL")) {
          return got.toByteArray(); // TLS ended without close_notify
        }
        throw e;
      }
      if (n < 0) {
        return got.toByteArray();
      }
      got.write(b, 0, n);
    }
  }

  /** Parses bytes received in the handshake as option replies; fails on a partial reply. */
  public static List<OptionReply> parseOptionReplies(byte[] bytes) {
    List<OptionReply> out = new ArrayList<>();
    ByteBuffer b = ByteBuffer.wrap(bytes);
    while (b.hasRemaining()) {
      assertTrue(b.remaining() >= 20, "partial option reply of " + b.remaining() + " bytes");
      assertEquals(OPTION_REPLY_MAGIC, b.getLong(), "option reply magic");
      int option = b.getInt();
      int type = b.getInt();
      int len = b.getInt();
      assertTrue(len >= 0 && len <= b.remaining(), "option reply length " + len + " with " + b.remaining() + " bytes left");
      byte[] data = new byte[len];
      b.get(data);
      out.add(new OptionReply(option, type, data));
    }
    return out;
  }

  private void closeQuietly() {
    try {
      socket.close();
    } catch (IOException e) {
      // nothing to do
    }
    try {
      plain.close();
    } catch (IOException e) {
      // nothing to do
    }
  }

  @Override
  public void close() {
    closeQuietly();
  }

  @Override
  public String toString() {
    return "raw NBD connection " + plain.getLocalPort() + " -> " + plain.getRemoteSocketAddress();
  }
}
