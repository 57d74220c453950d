package dev.shade.provider;

import dev.shade.nativeio.AlreadyClosedException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
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
