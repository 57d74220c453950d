package dev.shade.nbd.client;

import dev.shade.nbd.protocol.ReadAhead;
import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;

/**
 * The client's byte stream to the server: a plain socket channel (TCP or Unix), or TLS over
 * one after STARTTLS.
 *
 * <p>Thread-safety: one reading thread at a time and one writing thread at a time (the caller
 * serialises writes); a read and a write may run at once.
 */
abstract class Transport implements Closeable {
  /** Reads exactly {@code dst.remaining()} bytes; EOFException if the server closed first. */
  abstract void readFully(ByteBuffer dst) throws IOException;

  /** Writes every remaining byte of {@code srcs}, in order. */
  abstract void write(ByteBuffer... srcs) throws IOException;

  /** Ends the sending side (after NBD_CMD_DISC); reading goes on. */
  abstract void shutdownOutput() throws IOException;

  /** Opens a blocking channel to the URI's server with big socket buffers. */
  static Plain open(NbdUri uri, int socketBuffer) throws IOException {
    SocketChannel ch = uri.isUnix() ? SocketChannel.open(StandardProtocolFamily.UNIX) : SocketChannel.open();
    return new Plain(ch, uri, socketBuffer);
  }

  /**
   * Plain channel. Reads go through a small read-ahead buffer: reply headers and short chunks
   * of several replies waiting in the socket come in with one system call; payloads larger than
   * the buffer are read straight into their destination. Gathering writes send a request
   * header and its payload with one call.
   */
  static final class Plain extends Transport {
    /**
     * Read-ahead size. Small on purpose: the bytes of a data payload that a header read pulls
     * in are copied once more out of this buffer; 8 KiB still takes in some 500 simple replies
     * with one call. With 64 KiB, a copy of 256 KiB reads ran some 10% slower.
     */
    static final int READ_AHEAD = 8 << 10;

    /** The channel, blocking. */
    final SocketChannel ch;
    private final NbdUri uri;
    private final int socketBuffer;
    /** Reads the socket; holds what was read and not yet consumed. */
    private final ReadAhead ahead;

    private Plain(SocketChannel ch, NbdUri uri, int socketBuffer) {
      this.ch = ch;
      this.ahead = new ReadAhead(ch, READ_AHEAD, "the server");
      this.uri = uri;
      this.socketBuffer = socketBuffer;
    }

    /** Connects; blocks until connected or the channel is closed by another thread. */
    void connect() throws IOException {
      ch.setOption(StandardSocketOptions.SO_RCVBUF, socketBuffer);
      ch.setOption(StandardSocketOptions.SO_SNDBUF, socketBuffer);
      if (uri.isUnix()) {
        ch.connect(UnixDomainSocketAddress.of(uri.socket().orElseThrow()));
      } else {
        ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
        ch.connect(new InetSocketAddress(uri.host().orElseThrow(), uri.port()));
      }
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
    void shutdownOutput() throws IOException {
      ch.shutdownOutput();
    }

    /** Runs the TLS handshake as a client after STARTTLS was acknowledged. */
    Transport startTls(SSLContext ctx, String hostname) throws IOException {
      if (ahead.buffered() > 0) {
        // bytes the server sent before the TLS handshake would be taken as if they had come
        // through TLS (the plaintext injection of CVE-2011-0411)
        throw new IOException("the server sent " + ahead.buffered() + " bytes after its STARTTLS reply");
      }
      SSLEngine engine = hostname == null ? ctx.createSSLEngine() : ctx.createSSLEngine(hostname, uri.port());
      engine.setUseClientMode(true);
      SSLParameters p = engine.getSSLParameters();
      if (hostname != null) {
        p.setEndpointIdentificationAlgorithm("HTTPS");
        if (!hostname.isEmpty() && !Character.isDigit(hostname.charAt(0)) && hostname.indexOf(':') < 0) {
          p.setServerNames(java.util.List.of(new SNIHostName(hostname)));
        }
      }
      engine.setSSLParameters(p);
      Tls t = new Tls(ch, engine);
      t.handshake();
      return t;
    }

    @Override
    public void close() throws IOException {
      ch.close();
    }
  }

  /**
   * TLS through an {@link SSLEngine} over the blocking channel, so it works over Unix sockets as
   * well as TCP. wrap and unwrap may run at once (SSLEngine allows it): the reading thread
   * unwraps, the writing thread wraps.
   */
  static final class Tls extends Transport {
    private static final ByteBuffer EMPTY = ByteBuffer.allocate(0);

    private final SocketChannel ch;
    private final SSLEngine engine;
    /** Ciphertext read and not yet unwrapped (read mode). Reading side only. */
    private ByteBuffer netIn;
    /** Plaintext unwrapped and not yet consumed (read mode). Reading side only. */
    private ByteBuffer appIn;
    /** Ciphertext to send. Guarded by writeLock. */
    private ByteBuffer netOut;
    /** Serialises wraps: the writing thread's and those the reading side needs (key updates). */
    private final Object writeLock = new Object();

    Tls(SocketChannel ch, SSLEngine engine) {
      this.ch = ch;
      this.engine = engine;
      int packet = engine.getSession().getPacketBufferSize();
      this.netIn = ByteBuffer.allocateDirect(Math.max(packet, 64 << 10)).flip();
      this.appIn = ByteBuffer.allocateDirect(Math.max(engine.getSession().getApplicationBufferSize(), 64 << 10)).flip();
      this.netOut = ByteBuffer.allocateDirect(Math.max(packet * 16, 256 << 10));
    }

    void handshake() throws IOException {
      engine.beginHandshake();
      SSLEngineResult.HandshakeStatus hs = engine.getHandshakeStatus();
      while (hs != SSLEngineResult.HandshakeStatus.FINISHED && hs != SSLEngineResult.HandshakeStatus.NOT_HANDSHAKING) {
        switch (hs) {
          case NEED_WRAP:
            hs = wrap(EMPTY).getHandshakeStatus();
            break;
          case NEED_UNWRAP:
          case NEED_UNWRAP_AGAIN:
            hs = unwrap().getHandshakeStatus();
            break;
          case NEED_TASK:
            runTasks();
            hs = engine.getHandshakeStatus();
            break;
          default:
            throw new SSLException("unexpected TLS handshake state " + hs);
        }
      }
    }

    private void runTasks() {
      Runnable task;
      while ((task = engine.getDelegatedTask()) != null) {
        task.run();
      }
    }

    /** Unwraps one record into appIn, reading from the socket as needed. */
    private SSLEngineResult unwrap() throws IOException {
      while (true) {
        appIn.compact();
        SSLEngineResult r;
        try {
          r = engine.unwrap(netIn, appIn);
        } finally {
          appIn.flip();
        }
        switch (r.getStatus()) {
          case OK:
            afterEngine(r);
            return r;
          case BUFFER_UNDERFLOW:
            if (netIn.limit() == netIn.capacity() && netIn.position() == 0) {
              netIn = grow(netIn, engine.getSession().getPacketBufferSize());
            }
            netIn.compact();
            int n;
            try {
              n = ch.read(netIn);
            } finally {
              netIn.flip();
            }
            if (n < 0) {
              throw new EOFException("the server closed the TLS connection");
            }
            break;
          case BUFFER_OVERFLOW:
            appIn = grow(appIn, engine.getSession().getApplicationBufferSize());
            break;
          case CLOSED:
          default:
            throw new EOFException("the server closed the TLS session");
        }
      }
    }

    /** Runs what the engine asks for after a step outside the handshake loop (key updates, tickets). */
    private void afterEngine(SSLEngineResult r) throws IOException {
      SSLEngineResult.HandshakeStatus hs = r.getHandshakeStatus();
      if (hs == SSLEngineResult.HandshakeStatus.NEED_TASK) {
        runTasks();
        hs = engine.getHandshakeStatus();
      }
      if (hs == SSLEngineResult.HandshakeStatus.NEED_WRAP && !inHandshake) {
        wrap(EMPTY);
      }
    }

    /** True while {@link #handshake()} drives the engine itself. */
    private volatile boolean inHandshake = true;

    private static ByteBuffer grow(ByteBuffer b, int atLeast) {
      ByteBuffer n = ByteBuffer.allocateDirect(Math.max(b.capacity() * 2, atLeast));
      n.put(b);
      n.flip();
      return n;
    }

    /** Wraps all of {@code srcs} and sends the records. */
    private SSLEngineResult wrap(ByteBuffer... srcs) throws IOException {
      synchronized (writeLock) {
        SSLEngineResult last = null;
        int packet = engine.getSession().getPacketBufferSize();
        do {
          netOut.clear();
          // fill netOut with as many records as fit, then send them with one write
          while (true) {
            if (netOut.remaining() < packet) {
              break;
            }
            last = engine.wrap(srcs, netOut);
            if (last.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) {
              if (netOut.position() == 0) {
                netOut = ByteBuffer.allocateDirect(netOut.capacity() * 2);
                continue;
              }
              break;
            }
            if (last.getStatus() == SSLEngineResult.Status.CLOSED) {
              throw new EOFException("the TLS session is closed");
            }
            if (last.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_TASK) {
              runTasks();
            }
            if (!hasRemaining(srcs) && (last.getHandshakeStatus() != SSLEngineResult.HandshakeStatus.NEED_WRAP || !inHandshake)) {
              break;
            }
            if (last.bytesProduced() == 0 && last.bytesConsumed() == 0) {
              break;
            }
          }
          netOut.flip();
          while (netOut.hasRemaining()) {
            ch.write(netOut);
          }
        } while (hasRemaining(srcs));
        return last;
      }
    }

    private static boolean hasRemaining(ByteBuffer[] srcs) {
      for (ByteBuffer b : srcs) {
        if (b.hasRemaining()) {
          return true;
        }
      }
      return false;
    }

    @Override
    void readFully(ByteBuffer dst) throws IOException {
      inHandshake = false;
      while (dst.hasRemaining()) {
        if (appIn.hasRemaining()) {
          int n = Math.min(appIn.remaining(), dst.remaining());
          dst.put(dst.position(), appIn, appIn.position(), n);
          dst.position(dst.position() + n);
          appIn.position(appIn.position() + n);
        } else {
          unwrap();
        }
      }
    }

    @Override
    void write(ByteBuffer... srcs) throws IOException {
      inHandshake = false;
      wrap(srcs);
    }

    @Override
    void shutdownOutput() throws IOException {
      synchronized (writeLock) {
        engine.closeOutbound();
        try {
          netOut.clear();
          engine.wrap(EMPTY, netOut);
          netOut.flip();
          while (netOut.hasRemaining()) {
            ch.write(netOut);
          }
        } catch (IOException e) {
          // the close_notify is a courtesy; the socket's shutdown below is what counts
        }
      }
      ch.shutdownOutput();
    }

    @Override
    public void close() throws IOException {
      ch.close();
    }
  }
}
