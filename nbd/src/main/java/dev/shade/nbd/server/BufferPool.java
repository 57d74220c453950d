package dev.shade.nbd.server;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Direct buffers for request and reply payloads, recycled by power-of-two size class so the
 * hot path allocates nothing. Thread-safe.
 */
final class BufferPool {
  private static final int MIN_SHIFT = 12;
  private static final int MAX_SHIFT = 25;
  /** Free buffers per size class. */
  @SuppressWarnings("unchecked")
  private final ConcurrentLinkedQueue<ByteBuffer>[] free = new ConcurrentLinkedQueue[MAX_SHIFT + 1];
  /** Bytes held in the free lists. */
  private final AtomicLong retained = new AtomicLong();
  private final long maxRetained;

  BufferPool(long maxRetained) {
    this.maxRetained = maxRetained;
    for (int i = MIN_SHIFT; i <= MAX_SHIFT; i++) {
      free[i] = new ConcurrentLinkedQueue<>();
    }
  }

  /** A buffer with position 0 and limit {@code size}; give it back with {@link #give}. */
  ByteBuffer take(int size) {
    int shift = Math.max(MIN_SHIFT, 32 - Integer.numberOfLeadingZeros(Math.max(1, size) - 1));
    if (shift > MAX_SHIFT) {
      throw new IllegalArgumentException("buffer too large: " + size);
    }
    ByteBuffer b = free[shift].poll();
    if (b == null) {
      b = ByteBuffer.allocateDirect(1 << shift);
    } else {
      retained.addAndGet(-b.capacity());
    }
    b.clear().limit(size);
    return b;
  }

  void give(ByteBuffer b) {
    if (b == null) {
      return;
    }
    int shift = Integer.numberOfTrailingZeros(b.capacity());
    if (retained.addAndGet(b.capacity()) > maxRetained) {
      retained.addAndGet(-b.capacity());
      return; // let the GC have it
    }
    free[shift].offer(b);
  }
}
