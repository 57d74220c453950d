package dev.shade.offhost.backup;

import dev.shade.nbd.client.ExportInfo;
import dev.shade.nbd.client.NbdClient;
import dev.shade.nbd.client.NbdClientConfig;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * A restore into a writable NBD export, through shade's own client (nbd://, nbds:// with client
 * certificates, nbd+unix://): chunks written with NBD_CMD_WRITE, the image's zero ranges with
 * NBD_CMD_WRITE_ZEROES, one NBD_CMD_FLUSH at the end.
 *
 * <p>Not thread-safe (see {@link RestoreSink}); the completions of its writes run on the
 * connections' reader threads and touch only the concurrent fields.
 */
final class NbdRestoreSink implements RestoreSink {
  /*
   * How it works. start() connects (several connections only when the server advertises
   * CAN_MULTI_CONN, whose flush then covers the writes of all of them) and checks the export:
   * writable, at least the image's size. write() copies the chunk into a buffer of its own (the
   * caller reuses its array) and sends it without waiting, round-robin over the connections; at
   * most DEPTH writes are in flight (the permits), so the restore's tape reading and the
   * network overlap while memory stays bounded at DEPTH chunks. A failed write is kept (the
   * first one sticks) and thrown by the next call. zero() uses WRITE_ZEROES without NO_HOLE, so
   * the server may punch a hole but must read back zeros; a server without WRITE_ZEROES gets
   * written zero buffers. TRIM is never used: the protocol lets a trimmed range read back
   * anything. The target was not created by the restore, so abort() only disconnects.
   */

  /** Writes in flight at most (each holds a copy of its chunk). */
  static final int DEPTH = 8;
  /** Bytes per write of zeros to a server without WRITE_ZEROES. */
  private static final int ZERO_PIECE = 1 << 20;

  private final NbdClientConfig config;
  /** Connections wanted (1 unless the server allows several). */
  private final int connections;
  /** The connections, once started. */
  private final List<NbdClient> clients = new ArrayList<>();
  /** One permit per write that may be in flight. */
  private final Semaphore permits = new Semaphore(DEPTH);
  /** Buffers of finished writes, for the next ones. */
  private final ConcurrentLinkedQueue<ByteBuffer> free = new ConcurrentLinkedQueue<>();
  /** The first failed write; set by a reader thread, thrown by the restore's thread. */
  private final AtomicReference<IOException> failure = new AtomicReference<>();
  /** The export as the server described it, once started. */
  private ExportInfo info;
  /** The image's size, once started. */
  private long size = -1;
  /** Next connection to write on (round-robin). */
  private int next;
  /** Where notes go, from start. */
  private Consumer<String> notes = n -> { };
  /** A buffer of zeros for servers without WRITE_ZEROES; made on first use. */
  private ByteBuffer zeros;

  NbdRestoreSink(NbdClientConfig config, int connections) {
    if (connections < 1) {
      throw new IllegalArgumentException("connections must be at least 1: " + connections);
    }
    this.config = config;
    this.connections = connections;
  }

  @Override
  public void start(long size, Consumer<String> notes) throws IOException {
    this.notes = notes;
    clients.addAll(NbdClient.connectMultiConn(config, connections));
    info = clients.get(0).info();
    if (info.readOnly()) {
      throw new BackupException(this + " is read-only; a restore needs a writable export");
    }
    if (info.size() < size) {
      throw new BackupException(this + " holds " + info.size() + " bytes, less than the image's " + size + " bytes");
    }
    if (info.size() > size) {
      notes.accept(this + " holds " + info.size() + " bytes, more than the image's " + size
          + ": the image goes at offset 0 and the last " + (info.size() - size) + " bytes are left as they are");
    }
    this.size = size;
  }

  @Override
  public void write(ByteBuffer src, long offset) throws IOException {
    check(offset, src.remaining());
    int len = src.remaining();
    acquire(1);
    ByteBuffer b = buffer(len);
    b.put(src.duplicate()).flip();
    NbdClient c = clients.get(next);
    next = (next + 1) % clients.size();
    try {
      c.writeAsync(offset, b, false).whenComplete((v, e) -> {
        if (e != null) {
          failure.compareAndSet(null, failed("writing " + len + " bytes at offset " + offset, e));
        }
        free.offer(b);
        permits.release();
      });
    } catch (IOException | RuntimeException e) {
      permits.release();
      throw failed("writing " + len + " bytes at offset " + offset, e);
    }
  }

  @Override
  public void zero(long offset, long length) throws IOException {
    check(offset, length);
    if (length == 0) {
      return;
    }
    if (info.canWriteZeroes()) {
      try {
        clients.get(0).writeZeroes(offset, length, false, false);
      } catch (IOException | RuntimeException e) {
        throw failed("zeroing " + length + " bytes at offset " + offset, e);
      }
      return;
    }
    if (zeros == null) {
      zeros = ByteBuffer.allocate((int) Math.min(ZERO_PIECE, Math.max(length, 1)));
    }
    for (long done = 0; done < length; ) {
      int n = (int) Math.min(zeros.capacity(), length - done);
      write(zeros.duplicate().limit(n), offset + done);
      done += n;
    }
  }

  @Override
  public void finish() throws IOException {
    acquire(DEPTH); // every write answered
    permits.release(DEPTH);
    throwFailure();
    if (!info.canFlush()) {
      notes.accept(this + " cannot flush (no NBD_FLAG_SEND_FLUSH): the image is as durable as its server keeps it");
      return;
    }
    try {
      clients.get(0).flush(); // several connections only with CAN_MULTI_CONN: one flush covers them all
    } catch (IOException | RuntimeException e) {
      throw failed("flushing", e);
    }
  }

  @Override
  public void abort() {
    close();
  }

  @Override
  public void close() {
    for (NbdClient c : clients) {
      c.close();
    }
    clients.clear();
  }

  @Override
  public String toString() {
    return "NBD export " + config.uri();
  }

  /** Fails on an earlier write's failure, or a range outside the image. */
  private void check(long offset, long length) throws IOException {
    throwFailure();
    if (info == null) {
      throw new IllegalStateException("not started: " + this);
    }
    if (offset < 0 || length < 0 || offset + length > size) {
      throw new IllegalArgumentException("range [" + offset + ", +" + length + ") outside the image of " + size
          + " bytes: " + this);
    }
  }

  private void throwFailure() throws IOException {
    IOException e = failure.get();
    if (e != null) {
      throw new BackupException(e.getMessage(), e);
    }
  }

  /** A free buffer of at least {@code len} bytes, cleared and limited to {@code len}. */
  private ByteBuffer buffer(int len) {
    ByteBuffer b = free.poll();
    if (b == null || b.capacity() < len) {
      b = ByteBuffer.allocateDirect(Math.max(len, b == null ? 0 : b.capacity()));
    }
    b.clear().limit(len);
    return b;
  }

  private void acquire(int n) throws IOException {
    try {
      permits.acquire(n);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted waiting for writes to " + this);
    }
  }

  private BackupException failed(String what, Throwable e) {
    Throwable cause = e instanceof java.util.concurrent.CompletionException && e.getCause() != null ? e.getCause() : e;
    return new BackupException(what + " of " + this + " failed: " + cause.getMessage(), cause);
  }
}
