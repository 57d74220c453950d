package dev.shade.cli;

import java.time.Duration;
import java.time.Instant;

/**
 * Maps wall-clock instants (a snapshot's {@code created}, recorded by the agent, another process
 * on the same host) onto this JVM's {@link System#nanoTime}, the clock the live fixtures' ack
 * logs use.
 *
 * @param nanos {@link System#nanoTime} at {@code wall}
 * @param wall the wall-clock instant read together with {@code nanos}
 */
record NanoClock(long nanos, Instant wall) {
  /** Reads both clocks now; the pair read fastest of a few tries, so they are within a few microseconds. */
  static NanoClock now() {
    NanoClock best = null;
    long bestSpread = Long.MAX_VALUE;
    for (int i = 0; i < 20; i++) {
      long before = System.nanoTime();
      Instant wall = Instant.now();
      long after = System.nanoTime();
      if (after - before < bestSpread) {
        bestSpread = after - before;
        best = new NanoClock(before + (after - before) / 2, wall);
      }
    }
    return best;
  }

  /** {@link System#nanoTime} at the wall-clock {@code instant}. */
  long toNanos(Instant instant) {
    return nanos + Duration.between(wall, instant).toNanos();
  }
}
