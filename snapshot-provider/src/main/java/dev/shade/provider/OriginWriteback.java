package dev.shade.provider;

import dev.shade.nativeio.FileHandle;
import java.io.Closeable;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps the origin's dirty page cache small: a background thread starts writeback of the
 * origin ({@link FileHandle#startWriteBack}) once {@code bytes} were written to it since the
 * last start, or {@code delayMs} after the first write since then, whichever comes first.
 *
 * <p>Why: a snapshot makes every origin write acknowledged before it durable before its
 * record (invariant 2), with an fdatasync of the origin. Under a write load that never
 * flushes, that fdatasync had to write back everything the load dirtied since the previous
 * snapshot (tens of MiB of scattered 4 KiB pages, 50-250 ms here). Started early, that
 * writeback is done or under way when the snapshot comes, and its fdatasync waits only for the
 * last few milliseconds of writes. The same holds for an NBD FLUSH.
 *
 * <p>Crash safety is untouched: this only writes back pages earlier than the kernel would on
 * its own (which it may do at any instant anyway), after the copy-on-write path has made each
 * block's old contents durable; durability is still given only by fdatasync. The cost: a
 * workload that rewrites the same pages between two flushes writes them to the disk more
 * often.
 *
 * <p>Thread-safe: {@link #wrote} may be called by any number of writers at once.
 */
final class OriginWriteback implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(OriginWriteback.class);

  private final FileHandle origin;
  private final long bytes;
  private final long delayNanos;
  /** Bytes written since the last start of writeback. */
  private final AtomicLong pending = new AtomicLong();
  /** How many times writeback was started; for tests and logs. */
  private final AtomicLong starts = new AtomicLong();
  private final Thread thread;
  private volatile boolean closed;
  /** Whether the last start failed (logged once per run of failures). */
  private boolean failing;

  /**
   * A writeback thread for {@code origin}, or none when {@code bytes} or {@code delayMs} is 0
   * (then {@link #wrote} does nothing).
   */
  OriginWriteback(String name, FileHandle origin, long bytes, long delayMs) {
    this.origin = origin;
    this.bytes = bytes;
    this.delayNanos = delayMs * 1_000_000L;
    if (bytes <= 0 || delayMs <= 0) {
      this.thread = null;
      return;
    }
    this.thread = new Thread(this::run, "volume-writeback " + name);
    thread.setDaemon(true);
    thread.start();
  }

  /** Counts {@code n} bytes just written to the origin. */
  void wrote(long n) {
    if (thread == null || n <= 0) {
      return;
    }
    long before = pending.getAndAdd(n);
    if (before == 0 || before < bytes && before + n >= bytes) {
      LockSupport.unpark(thread); // the first write of a round starts the delay; the threshold ends it
    }
  }

  /** How many times writeback was started so far. */
  long starts() {
    return starts.get();
  }

  private void run() {
    while (!closed) {
      if (pending.get() == 0) {
        LockSupport.park(this);
        continue;
      }
      long until = System.nanoTime() + delayNanos;
      long left;
      while (!closed && pending.get() < bytes && (left = until - System.nanoTime()) > 0) {
        LockSupport.parkNanos(this, left);
      }
      if (closed) {
        return;
      }
      pending.set(0); // writes from now on start the next round
      try {
        origin.startWriteBack(0, 0);
        starts.incrementAndGet();
        failing = false;
      } catch (IOException | RuntimeException e) {
        if (!failing) {
          LOG.warn("starting writeback of {} failed (the next flush reports any write error): {}", origin.path(),
              e.toString());
        }
        failing = true;
      }
    }
  }

  /** Stops the thread and waits for it; the caller closes the origin afterwards. */
  @Override
  public void close() {
    if (thread == null || closed) {
      return;
    }
    closed = true;
    LockSupport.unpark(thread);
    boolean interrupted = false;
    while (thread.isAlive()) {
      try {
        thread.join();
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }
}
