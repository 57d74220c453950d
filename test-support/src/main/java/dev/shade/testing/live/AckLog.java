package dev.shade.testing.live;

import java.util.Arrays;

/**
 * When each numbered write of a background writer was issued and when it was acknowledged
 * (its commit returned): the record a test checks a snapshot against. Numbers run 1, 2, 3, ...,
 * each issued after the previous one was acknowledged, so both times grow with the number.
 *
 * <p>A snapshot whose creation began at {@code t0} and returned at {@code t1} must hold every
 * number up to {@code lastAckedBefore(t0)}, and (when it is exact) none above
 * {@code lastIssuedBefore(t1)}.
 *
 * <p>Thread-safe: one writer thread records, any thread asks; guarded by this.
 */
public final class AckLog {
  /** {@link System#nanoTime} when number i + 1 was issued; guarded by this. */
  private long[] issued = new long[1024];
  /** {@link System#nanoTime} when number i + 1 was acknowledged; guarded by this. */
  private long[] acked = new long[1024];
  /** Numbers issued so far (the highest issued); guarded by this. */
  private int issuedCount;
  /** Numbers acknowledged so far (the highest acknowledged); guarded by this. */
  private int ackedCount;

  /** Records that number {@code n} is being written now; {@code n} must be one more than the last issued. */
  public synchronized void issued(long n) {
    if (n != issuedCount + 1 || ackedCount != issuedCount) {
      throw new IllegalStateException("issued " + n + " after issuing " + issuedCount + " and acknowledging "
          + ackedCount + ": numbers are issued in order, each after the previous one's acknowledgement");
    }
    if (issuedCount == issued.length) {
      issued = Arrays.copyOf(issued, issued.length * 2);
      acked = Arrays.copyOf(acked, acked.length * 2);
    }
    issued[issuedCount++] = System.nanoTime();
  }

  /** Records that number {@code n}, the last issued, was acknowledged now. */
  public synchronized void acked(long n) {
    if (n != issuedCount || ackedCount != issuedCount - 1) {
      throw new IllegalStateException("acknowledged " + n + " with " + issuedCount + " issued and " + ackedCount
          + " acknowledged: only the last number issued can be acknowledged");
    }
    acked[ackedCount++] = System.nanoTime();
  }

  /** The highest number acknowledged, 0 before the first. */
  public synchronized long lastAcked() {
    return ackedCount;
  }

  /** {@link System#nanoTime} when number {@code n} (1 to the highest issued) was issued. */
  public synchronized long issuedAt(long n) {
    if (n < 1 || n > issuedCount) {
      throw new IllegalArgumentException("number " + n + " was not issued (" + issuedCount + " were)");
    }
    return issued[(int) n - 1];
  }

  /** {@link System#nanoTime} when number {@code n} (1 to the highest acknowledged) was acknowledged. */
  public synchronized long ackedAt(long n) {
    if (n < 1 || n > ackedCount) {
      throw new IllegalArgumentException("number " + n + " was not acknowledged (" + ackedCount + " were)");
    }
    return acked[(int) n - 1];
  }

  /** The highest number acknowledged before {@code nanoTime} ({@link System#nanoTime}), 0 if none. */
  public synchronized long lastAckedBefore(long nanoTime) {
    return countBefore(acked, ackedCount, nanoTime);
  }

  /** The highest number issued before {@code nanoTime} ({@link System#nanoTime}), 0 if none. */
  public synchronized long lastIssuedBefore(long nanoTime) {
    return countBefore(issued, issuedCount, nanoTime);
  }

  /**
   * The longest time in nanoseconds between consecutive acknowledgements where the later one is
   * at or after {@code fromNanos} and the earlier one at or before {@code toNanos} (both
   * {@link System#nanoTime}): how long the writer stalled around that interval. An interval with
   * no acknowledgement after it yet counts up to now. 0 when there are fewer than two.
   */
  public synchronized long longestAckGap(long fromNanos, long toNanos) {
    long longest = 0;
    int first = Math.max(1, countBefore(acked, ackedCount, fromNanos));
    for (int i = first; i < ackedCount && acked[i - 1] - toNanos <= 0; i++) {
      longest = Math.max(longest, acked[i] - acked[i - 1]);
    }
    if (ackedCount > 0 && acked[ackedCount - 1] - toNanos <= 0) {
      longest = Math.max(longest, System.nanoTime() - acked[ackedCount - 1]);
    }
    return longest;
  }

  /** {@link System#nanoTime} of the first acknowledgement after {@code nanoTime}, or -1 if none yet. */
  public synchronized long firstAckAfter(long nanoTime) {
    int i = countBefore(acked, ackedCount, nanoTime + 1);
    return i < ackedCount ? acked[i] : -1;
  }

  /** {@link System#nanoTime} of the last acknowledgement at or before {@code nanoTime}, or -1 if none. */
  public synchronized long lastAckAtOrBefore(long nanoTime) {
    int i = countBefore(acked, ackedCount, nanoTime + 1);
    return i > 0 ? acked[i - 1] : -1;
  }

  /**
   * How long the write issued last has been waiting for its acknowledgement, in nanoseconds;
   * 0 when none is waiting.
   */
  public synchronized long waitingNanos() {
    return issuedCount > ackedCount ? System.nanoTime() - issued[issuedCount - 1] : 0;
  }

  /** How many of the first {@code count} times (ascending) are before {@code t}. */
  private static int countBefore(long[] times, int count, long t) {
    int lo = 0;
    int hi = count; // answer in [lo, hi]
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (times[mid] - t < 0) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  @Override
  public synchronized String toString() {
    return "writes: " + issuedCount + " issued, " + ackedCount + " acknowledged";
  }
}
