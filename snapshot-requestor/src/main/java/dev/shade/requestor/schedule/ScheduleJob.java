package dev.shade.requestor.schedule;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One schedule's thread: waits for each slot, takes the snapshot, prunes.
 *
 * <p>Runs of one schedule never overlap: they run one after another on this one thread. Slots
 * that pass while a run is still going are skipped (and logged), not made up. The state read by
 * {@link #status()} is guarded by {@code this}.
 */
final class ScheduleJob implements Runnable {
  private static final Logger LOG = LoggerFactory.getLogger(ScheduleJob.class);

  /** What this job runs. */
  private final Schedule schedule;
  /** Takes, lists and deletes the snapshots. */
  private final SnapshotRunner runner;
  /** Where now comes from. */
  private final Clock clock;
  /** How the job waits for a slot. */
  private final Sleeper sleeper;
  /** Hears each run's result. */
  private final Scheduler.Events events;
  /** The schedule's volumes as command references. */
  private final List<String> volumes;

  /** The thread running this job; set once before it starts. */
  private Thread thread;
  /** Set once by stop; guarded by this. */
  private boolean stopped;
  /** True while a run is under way (it is then never interrupted); guarded by this. */
  private boolean running;
  /** The slot being waited for, or run; null before the first is known; guarded by this. */
  private Instant next;
  /** The last run, or null; guarded by this. */
  private RunResult last;
  /** The last failed run, or null; guarded by this. */
  private RunResult lastFailure;
  /** Runs so far; guarded by this. */
  private long runs;

  ScheduleJob(Schedule schedule, SnapshotRunner runner, Clock clock, Sleeper sleeper, Scheduler.Events events) {
    this.schedule = schedule;
    this.runner = runner;
    this.clock = clock;
    this.sleeper = sleeper;
    this.events = events;
    List<String> vs = new ArrayList<>();
    for (Path p : schedule.volumes()) {
      vs.add(p.toString());
    }
    this.volumes = List.copyOf(vs);
  }

  Schedule schedule() {
    return schedule;
  }

  void start() {
    Thread t = new Thread(this, "shade-schedule-" + schedule.name());
    t.setDaemon(true);
    synchronized (this) {
      thread = t;
    }
    t.start();
  }

  /** Stops waiting; a run under way is not interrupted and ends first. Returns the thread to join. */
  synchronized Thread stop() {
    stopped = true;
    if (thread != null && !running) {
      thread.interrupt(); // only ever while it waits, never during a run's I/O
    }
    return thread;
  }

  /** What schedule-show reports of this job's state. */
  synchronized Scheduler.Status status() {
    return new Scheduler.Status(running, next, last, lastFailure, runs);
  }

  @Override
  public void run() {
    try {
      Instant prev = catchUp();
      while (true) {
        Instant now = clock.instant();
        Instant slot = schedule.every().next(prev != null && prev.isAfter(now) ? prev : now, schedule.timeZone());
        synchronized (this) {
          if (stopped) {
            return; // stopped during the run that just ended; a stop from now on interrupts the sleep
          }
          next = slot;
        }
        sleeper.sleepUntil(clock, slot);
        // After a long sleep (a suspended host, a stepped clock) run once, for the latest slot due.
        Instant due = schedule.every().latest(clock.instant(), schedule.timeZone());
        if (due.isAfter(slot)) {
          LOG.info("schedule {}: woke at {} for slot {}; running once for slot {}", schedule.name(), clock.instant(), slot, due);
          slot = due;
        }
        if (!begin(slot)) {
          return;
        }
        runOnce(slot, false);
        prev = slot;
        Instant end = clock.instant();
        Instant following = schedule.every().next(slot, schedule.timeZone());
        if (!end.isBefore(following)) {
          LOG.warn("schedule {}: the run for {} ended at {}, after the next slot {}; slots until then are skipped",
              schedule.name(), slot, end, following);
        }
      }
    } catch (InterruptedException e) {
      // stopped while waiting
    } catch (RuntimeException e) {
      LOG.error("schedule {} stopped: {}", schedule.name(), e.toString(), e);
    }
  }

  /** At start: runs once for the latest missed slot if the policy says so; returns that slot or null. */
  private Instant catchUp() throws InterruptedException {
    if (schedule.catchUp() != CatchUp.ONE) {
      return null;
    }
    Instant lastRun;
    try {
      lastRun = Ownership.lastRun(schedule.name(), runner.snapshots(volumes.get(0)));
    } catch (Exception e) {
      LOG.warn("schedule {}: cannot list the snapshots of {} to see whether a slot was missed: {}", schedule.name(),
          volumes.get(0), e.getMessage());
      return null;
    }
    if (lastRun == null) {
      return null; // never ran: nothing was missed
    }
    Instant now = clock.instant();
    Instant missed = schedule.every().latest(now, schedule.timeZone());
    if (!missed.isAfter(lastRun)) {
      return null;
    }
    LOG.info("schedule {}: last run {}, missed slots up to {}: one catch-up snapshot now", schedule.name(), lastRun, missed);
    if (!begin(missed)) {
      throw new InterruptedException();
    }
    runOnce(missed, true);
    return missed;
  }

  /** Marks a run as under way; false if stopped. Clears an interrupt meant for the wait that just ended. */
  private synchronized boolean begin(Instant slot) {
    if (stopped) {
      return false;
    }
    Thread.interrupted();
    running = true;
    next = slot;
    return true;
  }

  private void runOnce(Instant slot, boolean catchUp) {
    Instant started = clock.instant();
    String name = Ownership.snapshotName(schedule.name(), slot);
    List<String> pruned = new ArrayList<>();
    String error = null;
    try {
      Map<String, String> attributes = new LinkedHashMap<>();
      attributes.put(Ownership.ATTRIBUTE, schedule.name());
      attributes.put(Ownership.SLOT_ATTRIBUTE, slot.toString());
      runner.snapshot(volumes, schedule.writers(), name, attributes, schedule.freezeTimeout());
    } catch (Exception e) {
      error = "snapshot " + name + " of " + volumes + ": " + message(e);
    }
    if (error == null && !schedule.keep().keepAll()) {
      try {
        prune(name, pruned);
      } catch (Exception e) {
        error = "prune after snapshot " + name + ": " + message(e);
      }
    }
    RunResult r = new RunResult(schedule.name(), slot, catchUp, started, clock.instant(), name, error, pruned);
    synchronized (this) {
      running = false;
      last = r;
      runs++;
      if (error != null) {
        lastFailure = r;
      }
    }
    if (error == null) {
      LOG.info("schedule {}: took snapshot {}{}", schedule.name(), name, pruned.isEmpty() ? "" : ", pruned " + pruned);
      events.event("SCHEDULE_RUN", r.toJson());
    } else {
      LOG.warn("schedule {} failed (retried at the next slot): {}", schedule.name(), error);
      events.event("SCHEDULE_FAILED", r.toJson());
    }
  }

  private void prune(String justTaken, List<String> pruned) throws Exception {
    for (String v : volumes) {
      PrunePlan plan = schedule.keep().plan(Ownership.candidates(schedule, runner.snapshots(v)), schedule.timeZone());
      for (Candidate c : plan.pruned()) {
        if (c.name().equals(justTaken)) {
          continue; // never the snapshot this run took, whatever the clocks say
        }
        runner.delete(v, c.name());
        pruned.add(Path.of(v).getFileName() + "/" + c.name());
      }
    }
  }

  private static String message(Exception e) {
    return e.getMessage() == null ? e.toString() : e.getMessage();
  }
}
