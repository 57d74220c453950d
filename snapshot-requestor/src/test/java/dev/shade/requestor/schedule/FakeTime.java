package dev.shade.requestor.schedule;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.concurrent.CountDownLatch;

/**
 * A simulated clock and the sleeper that moves it: sleeping to a deadline sets the clock there
 * at once. A sleep past {@link #end} counts {@link #done} down and waits to be interrupted (the
 * scheduler's stop), so a test runs the schedule up to {@code end} and no further.
 */
final class FakeTime extends Clock implements Sleeper {
  /** The simulated now. */
  private volatile Instant now;
  /** Where the simulation stops. */
  final Instant end;
  /** Counted down when a schedule would sleep past {@link #end}. */
  final CountDownLatch done = new CountDownLatch(1);

  FakeTime(Instant start, Instant end) {
    this.now = start;
    this.end = end;
  }

  /** Moves the clock on (a run that takes time). */
  synchronized void advance(java.time.Duration d) {
    now = now.plus(d);
  }

  @Override
  public void sleepUntil(Clock clock, Instant deadline) throws InterruptedException {
    if (deadline.isAfter(end)) {
      done.countDown();
      Thread.sleep(Long.MAX_VALUE);
    }
    synchronized (this) {
      if (deadline.isAfter(now)) {
        now = deadline;
      }
    }
  }

  @Override
  public Instant instant() {
    return now;
  }

  @Override
  public ZoneId getZone() {
    return ZoneOffset.UTC;
  }

  @Override
  public Clock withZone(ZoneId zone) {
    throw new UnsupportedOperationException();
  }
}
