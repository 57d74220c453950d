package dev.shade.nbd.client;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The slots of one connection's reads in flight during a copy: the issuing thread takes them,
 * completions on the reader thread give them back.
 *
 * <p>Thread-safety: one taking thread; any number of giving threads.
 */
final class Window {
  /*
   * A Semaphore wakes its waiter on every release, even when the waiter wants more permits
   * than are free: with a window of 64 reads that was two futex calls per read (strace: 10,000
   * a GiB). Here the issuer, once it finds no free slot, sleeps until a quarter of the window is
   * free, and a completion wakes it only when the free count reaches that mark (or the whole
   * window, which drain() waits for). No wake-up is lost: the issuer publishes itself in
   * `waiter` before it re-reads `free`, and a completion updates `free` before it reads
   * `waiter` (both volatile, so one of the two sees the other).
   */

  private final int size;
  /** Free slots the issuer waits for once it found none. */
  private final int wakeAt;
  /** Slots free now. */
  private final AtomicInteger free;
  /** The issuer while it sleeps, else null. */
  private volatile Thread waiter;

  Window(int size) {
    this.size = size;
    this.wakeAt = Math.max(1, size / 4);
    this.free = new AtomicInteger(size);
  }

  /** Takes one slot, sleeping when none is free. Issuing thread only. */
  void take() throws InterruptedException {
    while (true) {
      int f = free.get();
      if (f > 0) {
        if (free.compareAndSet(f, f - 1)) {
          return;
        }
      } else {
        await(wakeAt, true);
      }
    }
  }

  /** Gives one slot back. Any thread. */
  void give() {
    int f = free.incrementAndGet();
    if (f == wakeAt || f == size) {
      Thread w = waiter;
      if (w != null) {
        LockSupport.unpark(w);
      }
    }
  }

  /** Waits until every slot is free: no read is in flight. Issuing thread only. */
  void drain() throws InterruptedException {
    await(size, true);
  }

  /** Like {@link #drain()}, but an interrupt does not end the wait (it is kept for the caller). */
  void drainUninterruptibly() {
    try {
      await(size, false);
    } catch (InterruptedException e) {
      throw new AssertionError(e); // not thrown when not interruptible
    }
  }

  private void await(int atLeast, boolean interruptible) throws InterruptedException {
    waiter = Thread.currentThread(); // publish before re-reading free
    boolean interrupted = false;
    try {
      while (free.get() < atLeast) {
        LockSupport.park(this);
        if (Thread.interrupted()) {
          if (interruptible) {
            throw new InterruptedException();
          }
          interrupted = true;
        }
      }
    } finally {
      waiter = null;
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
