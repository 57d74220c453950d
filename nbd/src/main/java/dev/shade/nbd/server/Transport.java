package dev.shade.nbd.server;

import dev.shade.nbd.protocol.ReadAhead;
import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;

/**
 * A connection's byte stream: a plain socket channel (TCP or Unix), or TLS over a TCP one
 * after STARTTLS.
 *
 * <p>Thread-safety: one reader thread; writers serialise on the connection's reply lock.
 */
abstract class Transport implements Closeable {
  /** Reads exactly {@code dst.remaining()} bytes; EOFException if the peer closed first. */
  abstract void readFully(ByteBuffer dst) throws IOException;

  /** Writes every remaining byte of {@code srcs}, in order. */
  abstract void write(ByteBuffer... srcs) throws IOException;

  /** Stops reading: a blocked read returns end of stream. Replies can still be written. */
  abstract void shutdownInput() throws IOException;

  abstract boolean isTls();

  static Transport plain(SocketChannel ch) {
    return new Plain(ch);
  }

  /** Upgrades to TLS as the server, requiring a client certificate. */
  Transport startTls(SSLContext ctx) throws IOException {
    throw new IOException("TLS is only available over TCP");
  }

  /**
   * Plain channel. Reads go through a small read-ahead buffer: a client with requests in
   * flight has several headers and small payloads waiting in the socket, and one read takes
   * them all instead of two system calls per request. Payloads larger than the buffer are
   * read straight into their destination. Gathering writes go straight from the buffers.
   */
  static final class Plain extends Transport {
    /** Read-ahead size: a few 4 KiB writes with their headers. */
    static final int READ_AHEAD = 64 << 10;

    private final SocketChannel ch;
    /** Reads the socket; holds what was read and not yet consumed. */
    private final ReadAhead ahead;

    Plain(SocketChannel ch) {
      this.ch = ch;
      this.ahead = new ReadAhead(ch, READ_AHEAD, "peer");
    }

    @Override
    void readFully(ByteBuffer dst) throws IOException {
      ahead.readFully(dst);
    }

    @Override
    void write(ByteBuffer... srcs) throws IOException {
      ReadAhead.writeFully(ch, srcs);
    }

    @Override
    void shutdownInput() throws IOException {
      ch.shutdownInput();
    }

    @Override
    boolean isTls() {
      return false;
    }

    @Override
    Transport startTls(SSLContext ctx) throws IOException {
      if (ahead.buffered() > 0) {
        // bytes sent after STARTTLS but before its reply would be read as if they had come
        // through TLS (the plaintext injection of CVE-2011-0411): refuse the connection
        throw new IOException("the client sent " + ahead.buffered() + " bytes after STARTTLS before the server's reply");
      }
      SocketAddress remote = ch.getRemoteAddress();
      if (!(remote instanceof InetSocketAddress)) {
        throw new IOException("TLS is only available over TCP");
      }
      InetSocketAddress peer = (InetSocketAddress) remote;
      SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(ch.socket(), peer.getHostString(), peer.getPort(), true);
      s.setUseClientMode(false);
      s.setNeedClientAuth(true);
      s.startHandshake();
      return new Tls(ch, s);
    }

    @Override
    public void close() throws IOException {
      ch.close();
    }
  }

  /** TLS through the JDK's SSLSocket layered on the channel's socket. */
  static final class Tls extends Transport {
    private final SocketChannel ch;
    private final SSLSocket socket;
    private final InputStream in;
    private final OutputStream out;
    /** Staging for direct buffers, which streams cannot read or write. */
    private final byte[] staging = new byte[256 << 10];
    private final byte[] readStaging = new byte[256 << 10];

    Tls(SocketChannel ch, SSLSocket socket) throws IOException {
      this.ch = ch;
      this.socket = socket;
      this.in = socket.getInputStream();
      this.out = socket.getOutputStream();
    }

    @Override
    void readFully(ByteBuffer dst) throws IOException {
      while (dst.hasRemaining()) {
        int n;
        if (dst.hasArray()) {
          n = in.read(dst.array(), dst.arrayOffset() + dst.position(), dst.remaining());
          if (n > 0) {
            dst.position(dst.position() + n);
          }
        } else {
          n = in.read(readStaging, 0, Math.min(readStaging.length, dst.remaining()));
          if (n > 0) {
            dst.put(readStaging, 0, n);
          }
        }
        if (n < 0) {
          throw new EOFException("peer closed the TLS connection");
        }
      }
    }

    @Override
    void write(ByteBuffer... srcs) throws IOException {
      for (ByteBuffer b : srcs) {
        if (b.hasArray()) {
          out.write(b.array(), b.arrayOffset() + b.position(), b.remaining());
          b.position(b.limit());
        } else {
          while (b.hasRemaining()) {
            int n = Math.min(staging.length, b.remaining());
            b.get(staging, 0, n);
            out.write(staging, 0, n);
          }
        }
      }
      out.flush();
    }

    @Override
    void shutdownInput() throws IOException {
      ch.shutdownInput();
    }

    @Override
    boolean isTls() {
      return true;
    }

    @Override
    public void close() throws IOException {
      try {
        socket.close();
      } finally {
        ch.close();
      }
    }
  }
}
