package dev.shade.testing.live;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.locks.LockSupport;

/**
 * A background thread that writes a small numbered block to a file on a filesystem and reads it
 * back, every {@code intervalMillis}, with plain {@code pwrite(2)} and {@code pread(2)} and
 * never an fsync: it shows when the filesystem stops accepting writes (frozen: the write
 * blocks) and when it takes them again, also while the device under it is gone (a write into
 * the page cache still returns and reads back). Each round is a number in an {@link AckLog}:
 * issued before the write, acknowledged after the read returned what was written.
 *
 * <p>Thread-safe: the probe thread owns the file; {@link #stop} and {@link #acks} may come from
 * any thread.
 */
public final class WriteProbe implements AutoCloseable {
  /** Bytes written each round. */
  private static final int BLOCK = 4096;

  /** What was issued and acknowledged. */
  private final AckLog acks = new AckLog();
  /** The file written. */
  private final Path file;
  /** The open file, used by the probe thread only. */
  private final FileChannel channel;
  /** Pause between rounds in nanoseconds. */
  private final long intervalNanos;
  /** The probe thread. */
  private final Thread thread;
  /** Set to end the probe after the round under way. */
  private volatile boolean stop;
  /** Why the probe ended early, or null. */
  private volatile Throwable failure;

  private WriteProbe(Path file, FileChannel channel, long intervalNanos) {
    this.file = file;
    this.channel = channel;
    this.intervalNanos = intervalNanos;
    this.thread = new Thread(this::run, "write probe " + file);
    thread.setDaemon(true);
  }

  /** Creates (or truncates) {@code file} and starts probing it every {@code intervalMillis}. */
  public static WriteProbe start(Path file, long intervalMillis) throws IOException {
    FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.READ, StandardOpenOption.TRUNCATE_EXISTING);
    WriteProbe p = new WriteProbe(file, ch, intervalMillis * 1_000_000);
    p.thread.start();
    return p;
  }

  /** When each round was issued and acknowledged. */
  public AckLog acks() {
    return acks;
  }

  /** Why the probe ended before it was stopped, or null. */
  public Throwable failure() {
    return failure;
  }

  /**
   * Stops after the round under way (waiting up to {@code waitMillis} for it: a round on a
   * frozen filesystem waits for the thaw) and fails if the probe had failed. The file stays
   * open when the round does not end in time (the thread is a daemon).
   */
  public void stop(long waitMillis) throws InterruptedException {
    stop = true;
    thread.join(waitMillis);
    if (thread.isAlive()) {
      throw new IllegalStateException("the write probe on " + file + " did not stop within " + waitMillis + " ms ("
          + acks + ")");
    }
    if (failure != null) {
      throw new AssertionError("the write probe on " + file + " failed (" + acks + "): " + failure, failure);
    }
  }

  /** {@link #stop(long)} with 30 s. */
  @Override
  public void close() throws InterruptedException {
    stop(30_000);
  }

  private void run() {
    ByteBuffer out = ByteBuffer.allocateDirect(BLOCK);
    ByteBuffer in = ByteBuffer.allocateDirect(BLOCK);
    try (FileChannel ch = channel) {
      for (long n = 1; !stop; n++) {
        out.clear();
        while (out.hasRemaining()) {
          out.putLong(n);
        }
        out.flip();
        acks.issued(n);
        while (out.hasRemaining()) {
          ch.write(out, out.position());
        }
        in.clear();
        while (in.hasRemaining() && ch.read(in, in.position()) >= 0) {
          // until the block is read back
        }
        if (in.position() != BLOCK || in.getLong(0) != n || in.getLong(BLOCK - 8) != n) {
          throw new IOException("read back of round " + n + " of " + file + " did not return what was written");
        }
        acks.acked(n);
        LockSupport.parkNanos(intervalNanos);
      }
    } catch (IOException | RuntimeException e) {
      failure = e;
    }
  }

  @Override
  public String toString() {
    return "write probe on " + file + " (" + acks + ")";
  }
}
