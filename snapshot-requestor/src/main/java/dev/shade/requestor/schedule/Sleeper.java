package dev.shade.requestor.schedule;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;

/**
 * How the scheduler waits for a slot: the system's sleep in the agent, a step of a simulated
 * clock in tests (so a week of hourly runs takes seconds). Called on a schedule's own thread.
 */
public interface Sleeper {
  /** Longest single sleep of {@link #SYSTEM}: how late a step of the wall clock (NTP, suspend) is noticed. */
  Duration MAX_STEP = Duration.ofSeconds(30);

  /** Sleeps on the real clock, a step of at most {@link #MAX_STEP} at a time, re-reading {@code clock} after each. */
  Sleeper SYSTEM = (clock, deadline) -> {
    while (true) {
      long nanos = Duration.between(clock.instant(), deadline).toNanos();
      if (nanos <= 0) {
        return;
      }
      long millis = (Math.min(nanos, MAX_STEP.toNanos()) + 999_999) / 1_000_000; // round up: never wake early
      Thread.sleep(millis);
    }
  };

  /**
   * Returns once {@code clock} reads {@code deadline} or later.
   *
   * @throws InterruptedException when the scheduler stops while this waits
   */
  void sleepUntil(Clock clock, Instant deadline) throws InterruptedException;
}
