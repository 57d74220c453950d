package dev.shade.provider;

import dev.shade.nativeio.AlreadyClosedException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The I/O locks of one volume: the hold, and the stripes that order a block's copy before its
 * overwrite. The order in which these and every other lock of the package may be taken is the
 * table in {@code package-info.java}.
 *
 * <p>Thread-safe.
 */
final class Locks {
  /** Stripes per volume; block b uses stripe b mod STRIPES. */
  static final int STRIPES = 1024;

  /**
   * Read-held by every read, write and flush; write-held by snapshot create, delete, revert,
   * room making, close. Fair, so a waiting snapshot is not starved by a stream of writes.
   */
  final ReentrantReadWriteLock hold = new ReentrantReadWriteLock(true);
  /** Per-block-group locks: write-held by writers and the committer, read-held by readers. */
  private final ReentrantReadWriteLock[] stripes = new ReentrantReadWriteLock[STRIPES];
  private final Geometry geometry;
  /** Set once, by close with the hold write-held; read without locks. */
  private volatile boolean closed;
  /**
   * Block ranges whose origin bytes a zero-copy snapshot send reads, plus one entry {-1, -1} per
   * send that reads the diff area; guarded by its own monitor (a leaf: nothing is taken under it
   * but the holders' non-blocking {@link Pin#onWanted} callbacks).
   */
  private final List<Pin> pins = new ArrayList<>();
  /** Size of {@link #pins}, for the writers' lock-free fast path; written under the pins monitor. */
  private volatile int pinCount;

  Locks(Geometry geometry) {
    this.geometry = geometry;
    for (int i = 0; i < STRIPES; i++) {
      stripes[i] = new ReentrantReadWriteLock();
    }
  }

  /** Throws {@link AlreadyClosedException} once the volume is closed. */
  void ensureOpen() {
    if (closed) {
      throw new AlreadyClosedException("volume is closed: " + geometry);
    }
  }

  boolean isClosed() {
    return closed;
  }

  /** Marks the volume closed; caller holds the hold exclusively. */
  void markClosed() {
    closed = true;
  }

  ReentrantReadWriteLock stripe(long block) {
    return stripes[(int) (block & (STRIPES - 1))];
  }

  /**
   * Write-locks the stripes of blocks [first, last] in ascending stripe order (one global order:
   * no deadlock between writers); returns what to pass to {@link #unlockStripes}.
   */
  int[] lockStripes(long first, long last) {
    int[] idx;
    if (last - first + 1 >= STRIPES) {
      idx = new int[STRIPES];
      for (int i = 0; i < STRIPES; i++) {
        idx[i] = i;
      }
    } else {
      idx = new int[(int) (last - first + 1)];
      for (int i = 0; i < idx.length; i++) {
        idx[i] = (int) ((first + i) & (STRIPES - 1));
      }
      Arrays.sort(idx);
    }
    for (int i : idx) {
      stripes[i].writeLock().lock();
    }
    return idx;
  }

  void unlockStripes(int[] idx) {
    for (int i = idx.length - 1; i >= 0; i--) {
      stripes[idx[i]].writeLock().unlock();
    }
  }

  /*
   * Pins keep a snapshot's bytes as they are while the NBD server sends views of them without
   * a copy (the kernel reads the mapped pages during the socket write, after the read call
   * has returned). A block that a snapshot reads from the origin is pinned under its stripe's
   * read lock, so no writer is between its copy and its overwrite then; a writer that must
   * change a pinned block's origin bytes waits, holding the stripe, until the send released
   * the pin (copying the old contents out may go ahead: that reads the origin). Changes that
   * free diff slots (delete, revert) and close wait until no pin is left; they hold the hold
   * exclusively, so no new pin can be taken meanwhile. Pins are released by whichever thread
   * finished the send, never under a provider lock, so a waiting writer cannot deadlock with
   * the send it waits for.
   *
   * A waiter does not wait for the send to end by itself (that takes as long as the client takes
   * to read, and a client may stop reading): it first marks each pin it waits for as wanted,
   * which calls the holder's callback (PinnedBytes.whenWanted). The holder then copies what it
   * has not sent yet and releases; the NBD server does so between two slices of its socket
   * write, and disconnects a client that does not take the slice in flight within its patience.
   */

  /** One pin: origin blocks [first, last], or {-1, -1} for a send's diff-area bytes; fields under the pins monitor. */
  static final class Pin {
    final long first;
    long last;
    /** Set once a waiter needs the pinned bytes to change. */
    boolean wanted;
    /** The holder's callback for {@link #wanted}, or null until it registers one. */
    Runnable onWanted;

    Pin(long first, long last) {
      this.first = first;
      this.last = last;
    }

    /** Whether the pin covers a block of [from, to]. */
    boolean meets(long from, long to) {
      return first <= to && last >= from;
    }
  }

  /**
   * Pins blocks [first, last] of the origin; the caller holds each block's stripe read lock
   * when it decided the block is read from the origin. Returns what to pass to {@link #unpin}.
   */
  Pin pin(long first, long last) {
    Pin p = new Pin(first, last);
    synchronized (pins) {
      pins.add(p);
      pinCount = pins.size();
    }
    return p;
  }

  /**
   * Extends {@code p} (an origin pin ending at {@code block - 1}) to {@code block}; the caller
   * holds that block's stripe read lock.
   */
  void extendPin(Pin p, long block) {
    synchronized (pins) {
      p.last = block;
    }
  }

  /** Records a send of diff-area bytes, so nothing frees their slots until it is released. */
  Pin pinSlots() {
    return pin(-1, -1);
  }

  /**
   * Registers the holder's callback for when a waiter wants {@code p}'s bytes to change: run at
   * once (on this thread) when one already does, else by the first waiter, under the pins
   * monitor, so it must not block or take locks (it may copy the bytes and release).
   */
  void whenWanted(Pin p, Runnable callback) {
    synchronized (pins) {
      p.onWanted = callback;
      if (p.wanted) {
        callback.run();
      }
    }
  }

  /** Releases a pin from {@link #pin} or {@link #pinSlots}; each exactly once, from any thread. */
  void unpin(Pin p) {
    synchronized (pins) {
      for (int i = pins.size() - 1; i >= 0; i--) {
        if (pins.get(i) == p) {
          pins.remove(i);
          break;
        }
      }
      pinCount = pins.size();
      pins.notifyAll();
    }
  }

  /**
   * Waits until no pin covers a block of [first, last], asking their holders to let go; the
   * caller holds those blocks' stripe write locks (so no new pin of them can be taken) and is
   * about to change their origin bytes.
   */
  void awaitUnpinned(long first, long last) throws java.io.InterruptedIOException {
    if (pinCount == 0) { // fast path: no zero-copy send in flight
      return;
    }
    synchronized (pins) {
      while (wantOverlapping(first, last)) {
        waitPins("a change of blocks " + first + ".." + last);
      }
    }
  }

  /** Waits until no pin is left, asking every holder to let go; the caller holds the hold exclusively (so none is added). */
  void awaitNoPins() throws java.io.InterruptedIOException {
    if (pinCount == 0) {
      return;
    }
    synchronized (pins) {
      while (wantOverlapping(Long.MIN_VALUE, Long.MAX_VALUE)) {
        waitPins("freeing diff slots or closing");
      }
    }
  }

  /**
   * Marks the pins meeting [first, last] wanted and calls their holders (once each: a holder may
   * release at once, which removes its pins); whether any such pin is left. Caller holds the pins
   * monitor.
   */
  private boolean wantOverlapping(long first, long last) {
    List<Runnable> tell = null;
    for (Pin p : pins) {
      if (p.meets(first, last) && !p.wanted) {
        p.wanted = true;
        if (p.onWanted != null) {
          if (tell == null) {
            tell = new ArrayList<>(2);
          }
          tell.add(p.onWanted);
        }
      }
    }
    if (tell != null) {
      tell.forEach(Runnable::run); // not while iterating: a release removes pins
    }
    for (Pin p : pins) {
      if (p.meets(first, last)) {
        return true;
      }
    }
    return false;
  }

  /** One wait on the pins monitor (which the caller holds); interruption becomes an I/O error. */
  private void waitPins(String what) throws java.io.InterruptedIOException {
    try {
      pins.wait(100);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException("interrupted waiting for zero-copy sends to finish before " + what + ": " + geometry);
    }
  }

  /** Reads one block's piece of a range. */
  @FunctionalInterface
  interface BlockRead {
    /** Fills {@code piece} with the bytes at {@code at}, which lie {@code within} bytes into block {@code b}. */
    void read(long b, int within, long at, ByteBuffer piece) throws IOException;
  }

  /**
   * Reads [offset, offset + dst.remaining()) block by block, each piece under its block's
   * stripe read lock, so a reader never sees a block between a copy and the overwrite (or a
   * held block half applied).
   */
  void readByBlock(long offset, ByteBuffer dst, BlockRead read) throws IOException {
    int shift = geometry.blockShift; // locals: this loop runs once per block of every snapshot read
    int mask = geometry.blockSize - 1;
    while (dst.hasRemaining()) {
      long b = offset >>> shift;
      int within = (int) (offset & mask);
      int n = Math.min(dst.remaining(), geometry.blockLength(b) - within);
      ReentrantReadWriteLock stripe = stripe(b);
      stripe.readLock().lock();
      try {
        read.read(b, within, offset, dst.slice(dst.position(), n));
      } finally {
        stripe.readLock().unlock();
      }
      dst.position(dst.position() + n);
      offset += n;
    }
  }
}
