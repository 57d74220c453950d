package dev.shade.nbd.client;

import static dev.shade.nbd.protocol.Nbd.*;
import static java.nio.charset.StandardCharsets.UTF_8;

import dev.shade.nbd.tls.Pem;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLException;

/**
 * The option haggling of the fixed newstyle handshake, from the greeting to transmission (or to
 * an abort after LIST / INFO / LIST_META_CONTEXT).
 *
 * <p>Not thread-safe: the connecting thread alone uses it.
 */
final class Handshake {
  /*
   * Order, as libnbd does it: greeting and client flags; STARTTLS when the URI says nbds (the
   * connection fails if the server refuses it); STRUCTURED_REPLY when configured; then either
   * the query options or SET_META_CONTEXT and GO. GO asks for NBD_INFO_BLOCK_SIZE (which
   * promises the server that we honour its block sizes) and NBD_INFO_DESCRIPTION. A server that
   * does not know GO (ERR_UNSUP) gets the old EXPORT_NAME, which has no error reply: the server
   * just closes the connection when it has no such export.
   */

  /** The oldstyle greeting's second magic: this client refuses oldstyle servers. */
  static final long OLDSTYLE_MAGIC = 0x00420281861253L;

  /** Transmission state agreed on: the transport (TLS or not), export, structured replies, contexts by id. */
  record Result(Transport transport, ExportInfo info, boolean structured, Map<Integer, String> contexts) {}

  private Transport t;
  private final NbdClientConfig config;
  private final String target;
  /** The server allows NO_ZEROES: EXPORT_NAME's reply lacks its 124 zero bytes. */
  private boolean noZeroes;
  /** The server acknowledged STRUCTURED_REPLY. */
  private boolean structured;
  /** TLS is up. */
  private boolean tls;
  /** Small buffer for fixed-size reads. */
  private final ByteBuffer small = ByteBuffer.allocate(32);

  Handshake(Transport t, NbdClientConfig config) {
    this.t = t;
    this.config = config;
    this.target = config.uri().toString();
  }

  /** The transport, which STARTTLS replaces. */
  Transport transport() {
    return t;
  }

  /** Greeting, client flags, STARTTLS when asked, STRUCTURED_REPLY when configured. */
  void begin() throws IOException {
    long magic = readLong();
    if (magic != NBDMAGIC) {
      throw new NbdHandshakeException("not an NBD server: greeting starts with 0x" + Long.toHexString(magic), target, -1, 0);
    }
    long second = readLong();
    if (second == OLDSTYLE_MAGIC) {
      throw new NbdHandshakeException("the server speaks the oldstyle handshake, which this client does not"
          + " (it has no export names, TLS or structured replies); serve the export with the newstyle handshake", target, -1, 0);
    }
    if (second != IHAVEOPT) {
      throw new NbdHandshakeException("unknown handshake: second magic 0x" + Long.toHexString(second), target, -1, 0);
    }
    int flags = readShort();
    if ((flags & FLAG_FIXED_NEWSTYLE) == 0) {
      throw new NbdHandshakeException("the server does not offer the fixed newstyle handshake (flags 0x"
          + Integer.toHexString(flags) + ")", target, -1, 0);
    }
    noZeroes = (flags & FLAG_NO_ZEROES) != 0;
    t.write(ByteBuffer.allocate(4).putInt(0, FLAG_C_FIXED_NEWSTYLE | (noZeroes ? FLAG_C_NO_ZEROES : 0)));
    if (config.uri().tls()) {
      startTls();
    }
    if (config.structuredReplies()) {
      Reply r = single(OPT_STRUCTURED_REPLY, new byte[0]);
      if (r.type == REP_ACK) {
        structured = true;
      } else if (r.type != REP_ERR_UNSUP) {
        throw refused(OPT_STRUCTURED_REPLY, r, "structured replies");
      }
    }
  }

  private void startTls() throws IOException {
    SSLContext ctx = config.sslContext().orElse(null);
    if (ctx == null) {
      if (config.tlsCa().isEmpty()) {
        throw new NbdHandshakeException("TLS needs a CA certificate: give one, or ?tls-certificates=DIR with ca-cert.pem", target, OPT_STARTTLS, 0);
      }
      java.nio.file.Path cert = config.tlsCert().orElse(null);
      java.nio.file.Path key = config.tlsKey().orElse(null);
      if (cert != null && !Files.exists(cert) && config.uri().tlsCertificates().isPresent()) {
        cert = null; // libnbd: client-cert.pem is optional in a tls-certificates directory
        key = null;
      }
      ctx = Pem.clientContext(config.tlsCa().get(), cert, key);
    }
    Reply r = single(OPT_STARTTLS, new byte[0]);
    if (r.type != REP_ACK) {
      throw refused(OPT_STARTTLS, r, "TLS");
    }
    try {
      t = ((Transport.Plain) t).startTls(ctx, config.uri().tlsHostname().orElse(null));
      tls = true;
    } catch (SSLException e) {
      throw new NbdHandshakeException("TLS handshake failed (" + e.getMessage() + "; is the server's certificate signed by the"
          + " CA given, for this host, and does the server accept this client's certificate?)", target, OPT_STARTTLS, 0, e);
    } catch (EOFException e) {
      throw new NbdHandshakeException("the server closed the connection during the TLS handshake"
          + " (does it accept this client's certificate?)", target, OPT_STARTTLS, 0);
    }
  }

  /** NBD_OPT_LIST. */
  List<ListedExport> list() throws IOException {
    send(OPT_LIST, new byte[0]);
    List<ListedExport> out = new ArrayList<>();
    while (true) {
      Reply r = reply(OPT_LIST);
      if (r.type == REP_ACK) {
        return out;
      }
      if (r.type != REP_SERVER) {
        throw refused(OPT_LIST, r, "the export list");
      }
      ByteBuffer b = ByteBuffer.wrap(r.data);
      int n = b.getInt();
      if (n < 0 || n > r.data.length - 4) {
        throw new NbdException("LIST reply names an export of " + n + " bytes in " + r.data.length, target);
      }
      out.add(new ListedExport(new String(r.data, 4, n, UTF_8), new String(r.data, 4 + n, r.data.length - 4 - n, UTF_8)));
    }
  }

  /** NBD_OPT_LIST_META_CONTEXT: the context names the server has for {@code export} that match {@code queries}. */
  List<String> listMetaContexts(String export, List<String> queries) throws IOException {
    requireStructured("LIST_META_CONTEXT");
    return new ArrayList<>(metaContext(OPT_LIST_META_CONTEXT, export, queries).values());
  }

  /** NBD_OPT_SET_META_CONTEXT: the contexts selected, by id. */
  Map<Integer, String> setMetaContexts(String export, List<String> names) throws IOException {
    requireStructured("meta contexts (" + String.join(", ", names) + ")");
    return metaContext(OPT_SET_META_CONTEXT, export, names);
  }

  private void requireStructured(String what) throws NbdHandshakeException {
    if (!structured) {
      throw new NbdHandshakeException(what + " need structured replies, which "
          + (config.structuredReplies() ? "the server does not offer" : "are turned off"), target, OPT_STRUCTURED_REPLY, 0);
    }
  }

  private Map<Integer, String> metaContext(int option, String export, List<String> queries) throws IOException {
    byte[] name = export.getBytes(UTF_8);
    List<byte[]> qs = new ArrayList<>();
    int len = 4 + name.length + 4;
    for (String q : queries) {
      byte[] b = q.getBytes(UTF_8);
      qs.add(b);
      len += 4 + b.length;
    }
    ByteBuffer d = ByteBuffer.allocate(len);
    d.putInt(name.length).put(name).putInt(qs.size());
    for (byte[] q : qs) {
      d.putInt(q.length).put(q);
    }
    send(option, d.array());
    Map<Integer, String> out = new LinkedHashMap<>();
    int i = 0;
    while (true) {
      Reply r = reply(option);
      if (r.type == REP_ACK) {
        return out;
      }
      if (r.type != REP_META_CONTEXT) {
        if (r.type == REP_ERR_UNSUP) {
          return out; // an older server without meta contexts: none selected
        }
        throw refused(option, r, "meta contexts of export '" + export + "'");
      }
      if (r.data.length < 4) {
        throw new NbdException("META_CONTEXT reply of " + r.data.length + " bytes", target);
      }
      int id = ByteBuffer.wrap(r.data).getInt();
      String n = new String(r.data, 4, r.data.length - 4, UTF_8);
      out.put(option == OPT_LIST_META_CONTEXT ? i++ : id, n);
    }
  }

  /**
   * NBD_OPT_GO ({@code go}) or NBD_OPT_INFO on {@code export}; GO falls back to EXPORT_NAME on
   * a server without it.
   */
  ExportInfo info(String export, boolean go) throws IOException {
    int option = go ? OPT_GO : OPT_INFO;
    byte[] name = export.getBytes(UTF_8);
    ByteBuffer d = ByteBuffer.allocate(4 + name.length + 2 + 4);
    d.putInt(name.length).put(name).putShort((short) 2).putShort((short) INFO_BLOCK_SIZE).putShort((short) INFO_DESCRIPTION);
    send(option, d.array());
    long size = -1;
    int flags = 0;
    String description = "";
    int min = 1;
    int preferred = 4096;
    long max = MAX_PAYLOAD;
    while (true) {
      Reply r = reply(option);
      if (r.type == REP_ACK) {
        break;
      }
      if (r.type == REP_ERR_UNSUP && go) {
        return exportName(export);
      }
      if (r.type != REP_INFO) {
        throw refused(option, r, "export '" + export + "'");
      }
      if (r.data.length < 2) {
        throw new NbdException("INFO reply of " + r.data.length + " bytes", target);
      }
      ByteBuffer b = ByteBuffer.wrap(r.data);
      int info = Short.toUnsignedInt(b.getShort());
      switch (info) {
        case INFO_EXPORT:
          if (r.data.length != 12) {
            throw new NbdException("INFO_EXPORT of " + r.data.length + " bytes", target);
          }
          size = b.getLong();
          flags = Short.toUnsignedInt(b.getShort());
          break;
        case INFO_DESCRIPTION:
          description = new String(r.data, 2, r.data.length - 2, UTF_8);
          break;
        case INFO_BLOCK_SIZE:
          if (r.data.length != 14) {
            throw new NbdException("INFO_BLOCK_SIZE of " + r.data.length + " bytes", target);
          }
          min = b.getInt();
          preferred = b.getInt();
          max = Integer.toUnsignedLong(b.getInt());
          if (min < 1 || Integer.bitCount(min) != 1 || min > 64 << 10 || preferred < min || max < min) {
            throw new NbdException("the server's block sizes make no sense: minimum " + min + ", preferred " + preferred
                + ", maximum " + max, target);
          }
          break;
        default:
          break; // information we did not ask for
      }
    }
    if (size < 0) {
      throw new NbdException((go ? "GO" : "INFO") + " succeeded without INFO_EXPORT", target);
    }
    // the protocol caps payloads at 32 MiB for clients that were not told more; shade never sends more
    int maxPayload = (int) Math.max(min, Math.min(max, MAX_PAYLOAD) / min * min);
    return new ExportInfo(export, description, size, flags, min, preferred, maxPayload);
  }

  private ExportInfo exportName(String export) throws IOException {
    byte[] name = export.getBytes(UTF_8);
    ByteBuffer h = ByteBuffer.allocate(16);
    h.putLong(IHAVEOPT).putInt(OPT_EXPORT_NAME).putInt(name.length).flip();
    t.write(h, ByteBuffer.wrap(name));
    ByteBuffer b = ByteBuffer.allocate(10 + (noZeroes ? 0 : 124));
    try {
      t.readFully(b);
    } catch (EOFException e) {
      throw new NbdHandshakeException("the server closed the connection on EXPORT_NAME '" + export
          + "' (it has no such export, or refuses this client)", target, OPT_EXPORT_NAME, 0);
    }
    long size = b.getLong(0);
    int flags = Short.toUnsignedInt(b.getShort(8));
    return new ExportInfo(export, "", size, flags, 1, 4096, MAX_PAYLOAD);
  }

  /** Ends the handshake without entering transmission. */
  void abort() {
    try {
      send(OPT_ABORT, new byte[0]);
      reply(OPT_ABORT); // the server may close instead of answering
    } catch (IOException e) {
      // either way the connection is over
    }
  }

  boolean structured() {
    return structured;
  }

  /** One option reply. */
  private record Reply(int type, byte[] data) {}

  private void send(int option, byte[] data) throws IOException {
    ByteBuffer h = ByteBuffer.allocate(16);
    h.putLong(IHAVEOPT).putInt(option).putInt(data.length).flip();
    t.write(h, ByteBuffer.wrap(data));
  }

  private Reply single(int option, byte[] data) throws IOException {
    send(option, data);
    Reply r = reply(option);
    if (r.type != REP_ACK && r.type >= 0) {
      throw new NbdException("unexpected reply 0x" + Integer.toHexString(r.type) + " to option " + option, target);
    }
    return r;
  }

  private Reply reply(int option) throws IOException {
    ByteBuffer h = ByteBuffer.allocate(20);
    try {
      t.readFully(h);
    } catch (EOFException e) {
      throw new NbdHandshakeException("the server closed the connection instead of answering option " + optionName(option)
          + (tls ? " (after TLS: does it accept this client's certificate?)" : ""), target, option, 0);
    } catch (SSLException e) {
      throw new NbdHandshakeException("TLS failed while waiting for the answer to option " + optionName(option) + " ("
          + e.getMessage() + "; does the server accept this client's certificate?)", target, option, 0, e);
    }
    if (h.getLong(0) != OPTION_REPLY_MAGIC) {
      throw new NbdException("bad option reply magic 0x" + Long.toHexString(h.getLong(0)), target);
    }
    int opt = h.getInt(8);
    int type = h.getInt(12);
    long len = Integer.toUnsignedLong(h.getInt(16));
    if (opt != option) {
      throw new NbdException("reply to option " + opt + " while " + optionName(option) + " was asked", target);
    }
    if (len > MAX_OPTION) {
      throw new NbdException("option reply of " + len + " bytes", target);
    }
    ByteBuffer d = ByteBuffer.allocate((int) len);
    t.readFully(d);
    return new Reply(type, d.array());
  }

  private NbdHandshakeException refused(int option, Reply r, String what) {
    String msg = r.data.length > 0 ? ": " + new String(r.data, UTF_8) : "";
    String why;
    switch (r.type) {
      case REP_ERR_TLS_REQD: why = "the server requires TLS (use an nbds:// URI)"; break;
      case REP_ERR_UNKNOWN: why = "the server has no such export"; break;
      case REP_ERR_POLICY: why = "the server's policy forbids it"; break;
      case REP_ERR_UNSUP: why = "the server does not support " + optionName(option); break;
      case REP_ERR_INVALID: why = "the server calls the request invalid"; break;
      case REP_ERR_PLATFORM: why = "the server's platform cannot do it"; break;
      case REP_ERR_SHUTDOWN: why = "the server is shutting down"; break;
      case REP_ERR_BLOCK_SIZE_REQD: why = "the server requires block size negotiation"; break;
      case REP_ERR_TOO_BIG: why = "the request is too big for the server"; break;
      default: why = "reply 0x" + Integer.toHexString(r.type);
    }
    return new NbdHandshakeException(optionName(option) + " refused for " + what + ": " + why + msg, target, option, r.type);
  }

  private long readLong() throws IOException {
    small.clear().limit(8);
    readSmall();
    return small.getLong(0);
  }

  private int readShort() throws IOException {
    small.clear().limit(2);
    readSmall();
    return Short.toUnsignedInt(small.getShort(0));
  }

  private void readSmall() throws IOException {
    try {
      t.readFully(small);
    } catch (EOFException e) {
      throw new NbdHandshakeException("the server closed the connection during the greeting", target, -1, 0);
    }
  }
}
