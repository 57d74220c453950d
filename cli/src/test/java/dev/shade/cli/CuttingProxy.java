package dev.shade.cli;

import java.io.Closeable;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A Unix-socket proxy in front of an NBD server's socket that can cut its connections: once the
 * server has sent {@code cutAfter} bytes to the client in one connection, both sides of that
 * connection are closed, as a network that fails mid-transfer does; it can also hold the
 * server-to-client direction of all its connections together to {@code bytesPerSecond}, so a
 * reader takes a known time however many connections it opens.
 *
 * <p>Thread-safe: one acceptor thread and two copier threads per connection.
 */
final class CuttingProxy implements Closeable {
  /** The socket clients connect to. */
  private final Path listen;
  /** The server's socket. */
  private final Path target;
  /** Server-to-client bytes after which a connection is cut; Long.MAX_VALUE: never. */
  private final long cutAfter;
  /** Connections that may still be cut; the others pass whole. */
  private final AtomicLong cutsLeft;
  /** Server-to-client rate limit; 0: none. */
  private final long bytesPerSecond;
  /** The listening channel. */
  private final ServerSocketChannel server;
  /** Every channel opened, to close them all. */
  private final List<SocketChannel> channels = new CopyOnWriteArrayList<>();
  /** Connections cut so far. */
  private final AtomicLong cuts = new AtomicLong();
  /** Server-to-client bytes of all connections, for the rate limit. */
  private final AtomicLong sentToClients = new AtomicLong();
  /** When the rate limit's clock started. */
  private final long startNanos = System.nanoTime();
  /** The acceptor. */
  private final Thread acceptor;

  private CuttingProxy(Path listen, Path target, long cutAfter, long maxCuts, long bytesPerSecond) throws IOException {
    this.listen = listen;
    this.target = target;
    this.cutAfter = cutAfter;
    this.cutsLeft = new AtomicLong(maxCuts);
    this.bytesPerSecond = bytesPerSecond;
    Files.deleteIfExists(listen);
    server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    server.bind(UnixDomainSocketAddress.of(listen));
    acceptor = new Thread(this::accept, "proxy " + listen);
    acceptor.setDaemon(true);
    acceptor.start();
  }

  /** A proxy on {@code listen} to {@code target} that cuts each connection after {@code cutAfter} bytes from the server. */
  static CuttingProxy cutting(Path listen, Path target, long cutAfter) throws IOException {
    return new CuttingProxy(listen, target, cutAfter, Long.MAX_VALUE, 0);
  }

  /** A proxy that cuts the first connection to carry {@code cutAfter} bytes from the server, and no other. */
  static CuttingProxy cuttingOnce(Path listen, Path target, long cutAfter) throws IOException {
    return new CuttingProxy(listen, target, cutAfter, 1, 0);
  }

  /** A proxy on {@code listen} to {@code target} that never cuts, sending at most {@code bytesPerSecond} to clients. */
  static CuttingProxy throttled(Path listen, Path target, long bytesPerSecond) throws IOException {
    return new CuttingProxy(listen, target, Long.MAX_VALUE, 0, bytesPerSecond);
  }

  /** Bytes sent to clients so far, over every connection (counted where a rate limit is set). */
  long sentToClients() {
    return sentToClients.get();
  }

  /** The connections cut so far. */
  long cuts() {
    return cuts.get();
  }

  private void accept() {
    while (server.isOpen()) {
      SocketChannel client;
      try {
        client = server.accept();
      } catch (IOException e) {
        return; // closed
      }
      try {
        SocketChannel upstream;
        try {
          upstream = SocketChannel.open(UnixDomainSocketAddress.of(target));
        } catch (IOException e) {
          closeQuietly(client); // the server is gone: as it would, refuse the client
          continue;
        }
        channels.add(client);
        channels.add(upstream);
        start(() -> copy(client, upstream, Long.MAX_VALUE, 0, null), client, upstream);
        start(() -> copy(upstream, client, cutAfter, bytesPerSecond, sentToClients), client, upstream);
      } catch (RuntimeException e) {
        closeQuietly(client);
      }
    }
  }

  private void start(Copy copy, SocketChannel a, SocketChannel b) {
    Thread t = new Thread(() -> {
      try {
        if (copy.run()) {
          cuts.incrementAndGet();
        }
      } catch (IOException e) {
        // the other side went away
      } finally {
        closeQuietly(a);
        closeQuietly(b);
      }
    }, "proxy copier " + listen);
    t.setDaemon(true);
    t.start();
  }

  /**
   * Copies until EOF (false) or until {@code limit} bytes went across (true: cut), at most
   * {@code rate} bytes a second counted over every connection in {@code shared}.
   */
  private boolean copy(SocketChannel from, SocketChannel to, long limit, long rate, AtomicLong shared)
      throws IOException {
    ByteBuffer b = ByteBuffer.allocate(64 * 1024);
    long sent = 0;
    while (true) {
      b.clear();
      if (limit - sent < b.capacity()) {
        b.limit((int) (limit - sent));
      }
      if (b.remaining() == 0) {
        if (cutsLeft.getAndDecrement() > 0) {
          return true;
        }
        limit = Long.MAX_VALUE; // cut enough: this one passes whole
        continue;
      }
      if (from.read(b) < 0) {
        return false;
      }
      b.flip();
      long n = 0;
      while (b.hasRemaining()) {
        n += to.write(b);
      }
      sent += n;
      if (rate > 0) {
        long due = startNanos + (long) (shared.addAndGet(n) * 1e9 / rate);
        long wait = due - System.nanoTime();
        if (wait > 0) {
          try {
            Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
          }
        }
      }
    }
  }

  private static void closeQuietly(SocketChannel c) {
    try {
      c.close();
    } catch (IOException e) {
      // closing anyway
    }
  }

  @Override
  public void close() throws IOException {
    server.close();
    channels.forEach(CuttingProxy::closeQuietly);
    Files.deleteIfExists(listen);
  }

  @Override
  public String toString() {
    return "proxy " + listen + " -> " + target;
  }

  /** One direction's copy loop. */
  private interface Copy {
    boolean run() throws IOException;
  }
}
