package dev.shade.requestor.export;

import static dev.shade.nbd.protocol.Nbd.*;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A minimal NBD client that sends exactly the requests a test asks for, including ones real
 * clients refuse to send (writes to read-only exports, ranges past the end).
 *
 * <p>Not thread-safe: one thread sends and receives. Requests may be pipelined with
 * {@link #send} and their replies collected with {@link #receive}, in whatever order the server
 * completes them.
 */
public final class RawClient implements Closeable {
  /*
   * Fixed newstyle handshake (doc/proto.md of the NetworkBlockDevice project): read the
   * server's greeting, answer with FIXED_NEWSTYLE (and NO_ZEROES when offered), optionally
   * negotiate STRUCTURED_REPLY and SET_META_CONTEXT, then OPT_GO with an INFO_BLOCK_SIZE
   * request; the INFO_EXPORT reply gives the size and the transmission flags. In transmission a
   * simple reply carries the data of a READ after its header; structured replies arrive as
   * chunks, collected per cookie until the chunk with the DONE flag.
   */

  /** A refused option during the handshake. */
  public static final class OptionException extends IOException {
    private static final long serialVersionUID = 1L;
    /** The option reply type, one of the {@code REP_ERR_*} values. */
    public final int replyType;

    OptionException(int option, int replyType, String message) {
      super("option " + option + " refused with reply type 0x" + Integer.toHexString(replyType) + ": " + message);
      this.replyType = replyType;
    }
  }

  /**
   * The complete reply to one request.
   *
   * @param error 0 on success, else the NBD error (EPERM, EINVAL, ...)
   * @param message the server's error text of a structured error chunk, else empty
   * @param data what a READ returned (zeros where the server sent holes); empty otherwise
   * @param simple true when the server answered with a simple reply
   * @param blockStatus the BLOCK_STATUS chunks: context id, then (length, flags) pairs
   */
  public record Reply(long cookie, int error, String message, byte[] data, boolean simple, List<long[]> blockStatus) {}

  /** A request sent and not yet fully answered. */
  private static final class Pending {
    final int type;
    final long offset;
    final long length;
    /** Where READ data chunks land, at their offset minus the request's. */
    final byte[] data;
    /** BLOCK_STATUS chunks received so far. */
    final List<long[]> blockStatus = new ArrayList<>();
    /** The error of an error chunk, 0 until one arrives. */
    int error;
    /** The text of an error chunk. */
    String message = "";

    Pending(int type, long offset, long length) {
      this.type = type;
      this.offset = offset;
      this.length = length;
      this.data = type == CMD_READ ? new byte[(int) length] : new byte[0];
    }
  }

  /** The connection. */
  private final SocketChannel channel;
  /** Whether structured replies were negotiated. */
  private final boolean structured;
  /** Export size from INFO_EXPORT. */
  private final long size;
  /** Transmission flags from INFO_EXPORT. */
  private final int transmissionFlags;
  /** Minimum, preferred and maximum block sizes, when the server sent INFO_BLOCK_SIZE. */
  private final int[] blockSizes;
  /** The meta contexts the server selected, by name, with the ids it gave them. */
  private final Map<String, Integer> contextIds;
  /** Requests in flight by cookie. */
  private final Map<Long, Pending> pending = new HashMap<>();
  /** The cookie of the next request. */
  private long nextCookie = 1;

  private RawClient(SocketChannel channel, boolean structured, long size, int transmissionFlags, int[] blockSizes,
      Map<String, Integer> contextIds) {
    this.channel = channel;
    this.structured = structured;
    this.size = size;
    this.transmissionFlags = transmissionFlags;
    this.blockSizes = blockSizes;
    this.contextIds = Map.copyOf(contextIds);
  }

  /**
   * Connects to {@code address} (TCP or Unix socket), negotiates structured replies when
   * {@code structuredReplies} is set, and attaches to {@code export} with OPT_GO.
   */
  public static RawClient connect(SocketAddress address, String export, boolean structuredReplies) throws IOException {
    return connect(address, export, structuredReplies, List.of());
  }

  /**
   * As {@link #connect(SocketAddress, String, boolean)}, and also selects {@code metaContexts}
   * with OPT_SET_META_CONTEXT (which needs structured replies) for BLOCK_STATUS.
   */
  public static RawClient connect(SocketAddress address, String export, boolean structuredReplies, List<String> metaContexts)
      throws IOException {
    SocketChannel ch = SocketChannel.open(address);
    try {
      ByteBuffer hello = readExactly(ch, 18);
      long magic = hello.getLong();
      long opt = hello.getLong();
      int serverFlags = Short.toUnsignedInt(hello.getShort());
      if (magic != NBDMAGIC || opt != IHAVEOPT) {
        throw new IOException("not a newstyle NBD server at " + address + ": magic 0x" + Long.toHexString(magic)
            + " 0x" + Long.toHexString(opt));
      }
      if ((serverFlags & FLAG_FIXED_NEWSTYLE) == 0) {
        throw new IOException("server at " + address + " does not offer fixed newstyle (flags 0x" + Integer.toHexString(serverFlags) + ")");
      }
      int clientFlags = FLAG_C_FIXED_NEWSTYLE | (serverFlags & FLAG_NO_ZEROES);
      writeFully(ch, ByteBuffer.allocate(4).putInt(clientFlags).flip());
      if (structuredReplies) {
        sendOption(ch, OPT_STRUCTURED_REPLY, ByteBuffer.allocate(0));
        OptionReply r = readOptionReply(ch, OPT_STRUCTURED_REPLY);
        if (r.type != REP_ACK) {
          throw new OptionException(OPT_STRUCTURED_REPLY, r.type, r.text());
        }
      }
      byte[] name = export.getBytes(StandardCharsets.UTF_8);
      Map<String, Integer> contextIds = new HashMap<>();
      if (!metaContexts.isEmpty()) {
        List<byte[]> queries = new ArrayList<>();
        int len = 4 + name.length + 4;
        for (String q : metaContexts) {
          byte[] b = q.getBytes(StandardCharsets.UTF_8);
          queries.add(b);
          len += 4 + b.length;
        }
        ByteBuffer set = ByteBuffer.allocate(len);
        set.putInt(name.length).put(name).putInt(queries.size());
        for (byte[] q : queries) {
          set.putInt(q.length).put(q);
        }
        sendOption(ch, OPT_SET_META_CONTEXT, set.flip());
        while (true) {
          OptionReply r = readOptionReply(ch, OPT_SET_META_CONTEXT);
          if (r.type == REP_ACK) {
            break;
          }
          if (r.type != REP_META_CONTEXT) {
            throw new OptionException(OPT_SET_META_CONTEXT, r.type, r.text());
          }
          int id = r.data.getInt();
          contextIds.put(StandardCharsets.UTF_8.decode(r.data).toString(), id);
        }
      }
      ByteBuffer go = ByteBuffer.allocate(4 + name.length + 2 + 2);
      go.putInt(name.length).put(name).putShort((short) 1).putShort((short) INFO_BLOCK_SIZE).flip();
      sendOption(ch, OPT_GO, go);
      long size = -1;
      int flags = 0;
      int[] blockSizes = null;
      while (true) {
        OptionReply r = readOptionReply(ch, OPT_GO);
        if (r.type == REP_ACK) {
          break;
        }
        if (r.type != REP_INFO) {
          throw new OptionException(OPT_GO, r.type, r.text());
        }
        int info = Short.toUnsignedInt(r.data.getShort());
        if (info == INFO_EXPORT) {
          size = r.data.getLong();
          flags = Short.toUnsignedInt(r.data.getShort());
        } else if (info == INFO_BLOCK_SIZE) {
          blockSizes = new int[] {r.data.getInt(), r.data.getInt(), r.data.getInt()};
        }
      }
      if (size < 0) {
        throw new IOException("server at " + address + " acknowledged GO of '" + export + "' without INFO_EXPORT");
      }
      return new RawClient(ch, structuredReplies, size, flags, blockSizes, contextIds);
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  public long size() {
    return size;
  }

  public int transmissionFlags() {
    return transmissionFlags;
  }

  public boolean structured() {
    return structured;
  }

  /** The selected meta contexts by name, with their ids; empty when none were asked for. */
  public Map<String, Integer> contextIds() {
    return contextIds;
  }

  /** {minimum, preferred, maximum} block sizes, or null when the server sent none. */
  public int[] blockSizes() {
    return blockSizes == null ? null : blockSizes.clone();
  }

  /**
   * Sends one request without waiting; returns its cookie. {@code payload} is sent after the
   * header for WRITE (and must then have {@code length} bytes), else must be null.
   */
  public long send(int type, int flags, long offset, long length, byte[] payload) throws IOException {
    if (type == CMD_WRITE ? payload == null || payload.length != length : payload != null) {
      throw new IllegalArgumentException("payload must be given for WRITE only, of the request length " + length);
    }
    long cookie = nextCookie++;
    ByteBuffer h = ByteBuffer.allocate(REQUEST_HEADER);
    h.putInt(REQUEST_MAGIC).putShort((short) flags).putShort((short) type).putLong(cookie).putLong(offset)
        .putInt((int) length).flip();
    pending.put(cookie, new Pending(type, offset, length));
    writeFully(channel, h);
    if (payload != null) {
      writeFully(channel, ByteBuffer.wrap(payload));
    }
    return cookie;
  }

  /** Sends {@code bytes} as they are, for tests of malformed requests. */
  public void sendRaw(byte[] bytes) throws IOException {
    writeFully(channel, ByteBuffer.wrap(bytes));
  }

  /** Reads replies until one request is fully answered, and returns that one. */
  public Reply receive() throws IOException {
    while (true) {
      int magic = readExactly(channel, 4).getInt();
      if (magic == SIMPLE_REPLY_MAGIC) {
        ByteBuffer b = readExactly(channel, 12);
        int error = b.getInt();
        long cookie = b.getLong();
        Pending p = take(cookie);
        if (error == 0 && p.type == CMD_READ) {
          readExactly(channel, p.data.length).get(p.data);
        }
        return new Reply(cookie, error, "", p.data, true, p.blockStatus);
      }
      if (magic != STRUCTURED_REPLY_MAGIC) {
        throw new IOException("bad reply magic 0x" + Integer.toHexString(magic) + " from " + channel.getRemoteAddress());
      }
      ByteBuffer b = readExactly(channel, 16);
      int flags = Short.toUnsignedInt(b.getShort());
      int type = Short.toUnsignedInt(b.getShort());
      long cookie = b.getLong();
      int length = b.getInt();
      Pending p = pending.get(cookie);
      if (p == null) {
        throw new IOException("structured reply chunk for unknown cookie " + cookie);
      }
      ByteBuffer payload = readExactly(channel, length);
      chunk(p, type, payload);
      if ((flags & REPLY_FLAG_DONE) != 0) {
        pending.remove(cookie);
        return new Reply(cookie, p.error, p.message, p.data, false, p.blockStatus);
      }
    }
  }

  private static void chunk(Pending p, int type, ByteBuffer payload) throws IOException {
    switch (type) {
      case REPLY_TYPE_NONE:
        return;
      case REPLY_TYPE_OFFSET_DATA: {
        long at = payload.getLong() - p.offset;
        if (at < 0 || at + payload.remaining() > p.length) {
          throw new IOException("OFFSET_DATA chunk at " + (at + p.offset) + " of " + payload.remaining()
              + " bytes lies outside the request at " + p.offset + " of " + p.length);
        }
        payload.get(p.data, (int) at, payload.remaining());
        return;
      }
      case REPLY_TYPE_OFFSET_HOLE: {
        long at = payload.getLong() - p.offset;
        long len = Integer.toUnsignedLong(payload.getInt());
        if (at < 0 || at + len > p.length) {
          throw new IOException("OFFSET_HOLE chunk outside the request");
        }
        java.util.Arrays.fill(p.data, (int) at, (int) (at + len), (byte) 0);
        return;
      }
      case REPLY_TYPE_BLOCK_STATUS: {
        long[] d = new long[1 + 2 * (payload.remaining() - 4) / 8];
        d[0] = Integer.toUnsignedLong(payload.getInt());
        for (int i = 1; i < d.length; i++) {
          d[i] = Integer.toUnsignedLong(payload.getInt());
        }
        p.blockStatus.add(d);
        return;
      }
      case REPLY_TYPE_ERROR:
      case REPLY_TYPE_ERROR_OFFSET: {
        p.error = payload.getInt();
        int mlen = Short.toUnsignedInt(payload.getShort());
        byte[] m = new byte[mlen];
        payload.get(m);
        p.message = new String(m, StandardCharsets.UTF_8);
        return;
      }
      default:
        throw new IOException("unknown structured reply type " + type);
    }
  }

  private Pending take(long cookie) throws IOException {
    Pending p = pending.remove(cookie);
    if (p == null) {
      throw new IOException("reply for unknown cookie " + cookie);
    }
    return p;
  }

  /** Sends one request and waits for its reply; no other request may be in flight. */
  public Reply request(int type, int flags, long offset, long length, byte[] payload) throws IOException {
    if (!pending.isEmpty()) {
      throw new IllegalStateException(pending.size() + " requests are still in flight; use receive()");
    }
    long cookie = send(type, flags, offset, length, payload);
    Reply r = receive();
    if (r.cookie() != cookie) {
      throw new IOException("sent cookie " + cookie + " but the reply is for " + r.cookie());
    }
    return r;
  }

  public Reply read(long offset, int length) throws IOException {
    return request(CMD_READ, 0, offset, length, null);
  }

  public Reply write(long offset, byte[] data) throws IOException {
    return request(CMD_WRITE, 0, offset, data.length, data);
  }

  public Reply flush() throws IOException {
    return request(CMD_FLUSH, 0, 0, 0, null);
  }

  public Reply trim(long offset, long length) throws IOException {
    return request(CMD_TRIM, 0, offset, length, null);
  }

  public Reply writeZeroes(long offset, long length) throws IOException {
    return request(CMD_WRITE_ZEROES, 0, offset, length, null);
  }

  /** BLOCK_STATUS of the selected meta contexts; {@code flags} may hold CMD_FLAG_REQ_ONE. */
  public Reply blockStatus(long offset, long length, int flags) throws IOException {
    return request(CMD_BLOCK_STATUS, flags, offset, length, null);
  }

  /** Sends DISC (when the connection still works) and closes. */
  @Override
  public void close() throws IOException {
    try {
      if (channel.isOpen()) {
        send(CMD_DISC, 0, 0, 0, null);
      }
    } catch (IOException e) {
      // the server may have gone; closing is all that is left
    } finally {
      channel.close();
    }
  }

  // ------------------------------------------------------------------ wire

  /** One option reply of the handshake. */
  private record OptionReply(int type, ByteBuffer data) {
    String text() {
      return StandardCharsets.UTF_8.decode(data.duplicate()).toString();
    }
  }

  private static void sendOption(SocketChannel ch, int option, ByteBuffer data) throws IOException {
    ByteBuffer h = ByteBuffer.allocate(16);
    h.putLong(IHAVEOPT).putInt(option).putInt(data.remaining()).flip();
    writeFully(ch, h);
    writeFully(ch, data);
  }

  private static OptionReply readOptionReply(SocketChannel ch, int option) throws IOException {
    ByteBuffer h = readExactly(ch, 20);
    long magic = h.getLong();
    int opt = h.getInt();
    int type = h.getInt();
    int len = h.getInt();
    if (magic != OPTION_REPLY_MAGIC || opt != option) {
      throw new IOException("bad option reply: magic 0x" + Long.toHexString(magic) + ", option " + opt + " (sent " + option + ")");
    }
    if (len < 0 || len > MAX_OPTION) {
      throw new IOException("option reply of " + Integer.toUnsignedString(len) + " bytes");
    }
    return new OptionReply(type, readExactly(ch, len));
  }

  private static ByteBuffer readExactly(SocketChannel ch, int n) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(n);
    while (b.hasRemaining()) {
      if (ch.read(b) < 0) {
        throw new EOFException("server closed the connection after " + b.position() + " of " + n + " bytes");
      }
    }
    return b.flip();
  }

  private static void writeFully(SocketChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }
}
