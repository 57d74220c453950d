package dev.shade.offhost.backup;

import dev.shade.nativeio.FileHandle;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.Path;

/**
 * Starts the disk writes of a restored file while the restore goes on: after every
 * {@link #STEP_BYTES} written, a background thread starts the writeback of the file's dirty
 * pages ({@code sync_file_range} WRITE, through a handle of its own on the file), so the final
 * {@code force(true)} finds little left to write.
 *
 * <p>Thread-safe: {@link #written} is called from the restore's worker threads; {@link #finish}
 * once, after the last write; {@link #close} ends the thread and closes the handle whatever
 * happened.
 */
final class WriteBehind implements AutoCloseable {
  /*
   * Why: Linux starts writing dirty pages in the background only past
   * vm.dirty_background_ratio of memory (10 % of 23 GiB on the benchmark's server), so a
   * restore of a 2 GiB image left all of it dirty and its final fsync wrote 1.6 GiB while
   * nothing else ran (0.75-1.0 s measured for 1.6 GiB written from a heap buffer, see
   * docs/performance.md, "Restore speed"). Started every STEP_BYTES, the writeback runs while
   * the tape is still being read.
   *
   * sync_file_range WRITE starts writeback without waiting for it, without a cache flush of
   * the device and without a journal commit, so it does not hold up the workers' writes as a
   * background fdatasync could (a commit in progress makes new writes wait for the journal).
   * It makes nothing durable: the restore's force(true) at its end does. It may block while
   * the device's queue is full, hence its own thread, so the workers never wait for it.
   *
   * The thread is not interrupted to stop: it waits on this object's monitor and ends when
   * finish() or close() say so.
   */

  /** Bytes written between two starts of writeback. */
  static final long STEP_BYTES = 64L << 20;

  /** The restored file, for messages. */
  private final Path path;
  /** A handle of this object's own on the restored file, for sync_file_range. */
  private final FileHandle handle;
  /** Bytes written so far; guarded by this. */
  private long written;
  /** {@link #written} when the last writeback started; guarded by this. */
  private long started;
  /** True once {@link #finish} or {@link #close} was called; guarded by this. */
  private boolean finished;
  /** The first failure of a writeback start, or null; guarded by this. */
  private IOException failure;
  /** The background thread, started with the first step; guarded by this. */
  private Thread thread;

  /** Write-behind for the existing file {@code path}, which the restore writes through a handle of its own. */
  WriteBehind(Path path) throws IOException {
    this.path = path;
    this.handle = FileHandle.openReadWrite(path);
  }

  /** Counts {@code bytes} more written; wakes the background thread every {@link #STEP_BYTES}. */
  synchronized void written(long bytes) {
    written += bytes;
    if (written - started >= STEP_BYTES && !finished) {
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
        while (!finished && written - started < STEP_BYTES) {
          try {
            wait();
          } catch (InterruptedException e) {
            return; // nobody interrupts it; finish() stops waiting for it
          }
        }
        if (finished) {
          return;
        }
        started = written;
      }
      try {
        handle.startWriteBack(0, 0); // the whole file; outside the lock, the workers keep writing
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
   * Stops the background thread, waiting for a writeback start it is in; throws its failure,
   * if any. Makes nothing durable: the caller forces the file next.
   */
  void finish() throws IOException {
    stop();
    synchronized (this) {
      if (failure != null) {
        throw new IOException("starting the writeback of " + path + " failed: " + failure.getMessage(), failure);
      }
    }
  }

  /** Stops the background thread and closes the handle; a failure of the thread is left to the file's force. */
  @Override
  public void close() throws IOException {
    try {
      stop();
    } finally {
      handle.close();
    }
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
        throw new InterruptedIOException("interrupted while the writeback of " + path + " was started");
      }
    }
  }
}
