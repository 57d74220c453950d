package dev.shade.offhost.backup;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.channels.FileChannel;

/**
 * Writes a restored file's data to its disk while the restore goes on: after every
 * {@link #STEP_BYTES} written, a background thread makes what was written so far durable
 * ({@link FileChannel#force force(false)}), so the final {@code force(true)} finds little left
 * to do.
 *
 * <p>Thread-safe: {@link #written} is called from the restore's worker threads; {@link #finish}
 * once, after the last write; {@link #close} ends the thread whatever happened, before the file
 * is closed.
 */
final class WriteBehind implements AutoCloseable {
  /*
   * Why: Linux starts writing dirty pages in the background only past
   * vm.dirty_background_ratio of memory (10 % of 23 GiB on the benchmark's server), so a
   * restore of a 2 GiB image left all of it dirty and its final fsync wrote 1.6 GiB while
   * nothing else ran: 0.5-0.9 s of a 2.3 s restore. Started every STEP_BYTES from its own
   * thread, the writeback runs while the tape is still being read, on a device that was idle.
   *
   * The thread is never interrupted: an interrupt during force() closes the FileChannel
   * (ClosedByInterruptException) under the restore's feet. It waits on this object's monitor
   * and ends when finish() says so. A failure of a background force() is kept and thrown by
   * finish(), though the final force(true) would report it too.
   */

  /** Bytes written between two background flushes. */
  static final long STEP_BYTES = 128L << 20;

  /** The restored file. */
  private final FileChannel out;
  /** What the file is, for messages. */
  private final String what;
  /** Bytes written so far; guarded by this. */
  private long written;
  /** {@link #written} when the last background flush started; guarded by this. */
  private long flushed;
  /** True once {@link #finish} was called; guarded by this. */
  private boolean finished;
  /** The first failure of a background flush, or null; guarded by this. */
  private IOException failure;
  /** The background thread, started with the first step. */
  private Thread thread;

  WriteBehind(FileChannel out, String what) {
    this.out = out;
    this.what = what;
  }

  /** Counts {@code bytes} more written; wakes the background thread every {@link #STEP_BYTES}. */
  synchronized void written(long bytes) {
    written += bytes;
    if (written - flushed >= STEP_BYTES && !finished) {
      if (thread == null) {
        thread = new Thread(this::run, "shade-restore-write-behind");
        thread.setDaemon(true);
        thread.start();
      }
      notifyAll();
    }
  }

  private void run() {
    while (true) {
      synchronized (this) {
        while (!finished && written - flushed < STEP_BYTES) {
          try {
            wait();
          } catch (InterruptedException e) {
            return; // nobody interrupts it; finish() stops waiting for it
          }
        }
        if (finished) {
          return;
        }
        flushed = written;
      }
      try {
        out.force(false); // outside the lock: the workers keep writing meanwhile
      } catch (IOException e) {
        synchronized (this) {
          if (failure == null) {
            failure = e;
          }
          finished = true;
        }
        return;
      }
    }
  }

  /**
   * Stops the background thread, waiting for a flush it is in; throws its failure, if any.
   * Makes nothing durable by itself: the caller forces the file next.
   */
  void finish() throws IOException {
    stop();
    synchronized (this) {
      if (failure != null) {
        throw new IOException("flushing " + what + " to its disk failed: "
            + (failure.getMessage() != null ? failure.getMessage() : failure.getClass().getSimpleName()), failure);
      }
    }
  }

  /** Stops the background thread, waiting for a flush it is in; a failure of it is left to the file's next force. */
  @Override
  public void close() throws InterruptedIOException {
    stop();
  }

  private void stop() throws InterruptedIOException {
    Thread t;
    synchronized (this) {
      finished = true;
      notifyAll();
      t = thread;
    }
    if (t != null) {
      try {
        t.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted while the writes of " + what + " were flushed");
      }
    }
  }
}
