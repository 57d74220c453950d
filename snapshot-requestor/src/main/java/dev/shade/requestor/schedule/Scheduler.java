package dev.shade.requestor.schedule;

import java.io.Closeable;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs the agent's schedules: takes each schedule's snapshots at its slots and prunes them by its
 * retention (docs/schedule.md).
 *
 * <p>Each schedule has a thread of its own, so a slow run of one never delays another, and the
 * runs of one schedule never overlap. Time comes from an injected {@link Clock} and waiting from
 * a {@link Sleeper}, so tests run a simulated week in seconds. Thread-safe.
 */
public final class Scheduler implements Closeable {
  /*
   * A job (ScheduleJob) at start looks at its newest snapshot: when a slot passed since (the agent
   * was down), catch-up "one" runs once at once for the latest missed slot and "skip" does not.
   * Then: next slot, sleep, run, prune, repeat. A failed run is logged, kept as the job's last
   * failure and announced (SCHEDULE_FAILED); the next slot is the retry. Stopping wakes a waiting
   * job by interrupting it, but never interrupts a run (an interrupt during file I/O would close
   * the volume's channels): close waits for a run under way to end.
   */
  private static final Logger LOG = LoggerFactory.getLogger(Scheduler.class);

  /** How long close waits for a run under way. */
  static final Duration STOP_WAIT = Duration.ofSeconds(120);

  /** Hears what the schedules do: SCHEDULE_RUN and SCHEDULE_FAILED with a {@link RunResult#toJson()}. */
  public interface Events {
    Events NONE = (name, data) -> {};

    void event(String name, Map<String, Object> data);
  }

  /**
   * A schedule's state now.
   *
   * @param running true while a run is under way
   * @param next the slot waited for (or run), or null before it is known
   * @param last the last run, or null
   * @param lastFailure the last failed run, or null
   * @param runs runs since start
   */
  public record Status(boolean running, Instant next, RunResult last, RunResult lastFailure, long runs) {}

  /** One per schedule, in config order. */
  private final List<ScheduleJob> jobs;
  /** Lists snapshots for {@link #show()}. */
  private final SnapshotRunner runner;
  /** Where now comes from. */
  private final Clock clock;

  private Scheduler(List<ScheduleJob> jobs, SnapshotRunner runner, Clock clock) {
    this.jobs = jobs;
    this.runner = runner;
    this.clock = clock;
  }

  /** Starts one thread per schedule. */
  public static Scheduler start(List<Schedule> schedules, SnapshotRunner runner, Clock clock, Sleeper sleeper,
      Events events) {
    List<ScheduleJob> jobs = new ArrayList<>();
    for (Schedule s : schedules) {
      jobs.add(new ScheduleJob(s, runner, clock, sleeper, events));
    }
    Scheduler sch = new Scheduler(List.copyOf(jobs), runner, clock);
    for (ScheduleJob j : jobs) {
      j.start();
      LOG.info("schedule {}: {} in {}, volumes {}", j.schedule().name(), j.schedule().every(), j.schedule().timeZone(),
          j.schedule().volumes());
    }
    return sch;
  }

  /** The state of the schedule named {@code name}, or null if there is none. */
  public Status status(String name) {
    for (ScheduleJob j : jobs) {
      if (j.schedule().name().equals(name)) {
        return j.status();
      }
    }
    return null;
  }

  /** The schedule-show document: next runs, last results and prune plans of every schedule. */
  public Map<String, Object> show() {
    List<Schedule> schedules = new ArrayList<>();
    Map<String, Status> statuses = new LinkedHashMap<>();
    for (ScheduleJob j : jobs) {
      schedules.add(j.schedule());
      statuses.put(j.schedule().name(), j.status());
    }
    return report(schedules, statuses, runner, clock.instant());
  }

  /**
   * The schedule-show document for {@code schedules}, with state from {@code statuses} (empty
   * when no scheduler runs them) and snapshots listed through {@code runner}, at {@code now}.
   */
  public static Map<String, Object> report(List<Schedule> schedules, Map<String, Status> statuses,
      SnapshotRunner runner, Instant now) {
    List<Object> out = new ArrayList<>();
    for (Schedule s : schedules) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("name", s.name());
      m.put("every", s.every().toString());
      m.put("timeZone", s.timeZone().getId());
      m.put("volumes", s.volumes().stream().map(Path::toString).toList());
      m.put("writers", s.writers());
      m.put("keep", keep(s.keep()));
      m.put("catchUp", s.catchUp().word());
      m.put("pruneManual", s.pruneManual());
      Status st = statuses.get(s.name());
      m.put("running", st != null && st.running());
      List<Object> next = new ArrayList<>();
      Instant t = now;
      for (int i = 0; i < 3; i++) {
        t = s.every().next(t, s.timeZone());
        next.add(slot(t, s.timeZone()));
      }
      m.put("next", next);
      m.put("lastRun", st == null || st.last() == null ? null : st.last().toJson());
      m.put("lastFailure", st == null || st.lastFailure() == null ? null : st.lastFailure().toJson());
      List<Object> plans = new ArrayList<>();
      for (Path v : s.volumes()) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("volume", v.toString());
        try {
          List<SnapshotRunner.Snapshot> snaps = runner.snapshots(v.toString());
          List<Map<String, Object>> plan = s.keep().plan(Ownership.candidates(s, snaps), s.timeZone()).toJson();
          for (Map<String, Object> e : plan) {
            if (!(Boolean) e.get("scheduled")) {
              e.put("reason", notOurs(s, find(snaps, (Long) e.get("id"))));
            }
            e.put("local", ZonedDateTime.ofInstant(Instant.parse((String) e.get("created")), s.timeZone()).toOffsetDateTime().toString());
          }
          p.put("snapshots", plan);
          p.put("error", null);
        } catch (Exception e) {
          p.put("snapshots", List.of());
          p.put("error", e.getMessage() == null ? e.toString() : e.getMessage());
        }
        plans.add(p);
      }
      m.put("plans", plans);
      out.add(m);
    }
    Map<String, Object> doc = new LinkedHashMap<>();
    doc.put("now", now.toString());
    doc.put("schedules", out);
    return doc;
  }

  private static SnapshotRunner.Snapshot find(List<SnapshotRunner.Snapshot> snaps, long id) {
    for (SnapshotRunner.Snapshot s : snaps) {
      if (s.id() == id) {
        return s;
      }
    }
    throw new IllegalStateException("snapshot id " + id + " not listed");
  }

  private static String notOurs(Schedule s, SnapshotRunner.Snapshot snap) {
    if (!Ownership.scheduled(snap)) {
      return "made by hand: kept (this schedule prunes such snapshots only with \"pruneManual\": true)";
    }
    String owner = snap.attributes() == null ? "another schedule" : "schedule " + snap.attributes().get(Ownership.ATTRIBUTE);
    return "made by " + owner + ": only that schedule prunes it";
  }

  private static Map<String, Object> slot(Instant t, ZoneId zone) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("utc", t.toString());
    m.put("local", t.atZone(zone).toOffsetDateTime().toString());
    return m;
  }

  private static Map<String, Object> keep(Retention r) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("last", r.last());
    m.put("hourly", r.hourly());
    m.put("daily", r.daily());
    m.put("weekly", r.weekly());
    m.put("monthly", r.monthly());
    m.put("yearly", r.yearly());
    return m;
  }

  /** Stops every schedule: waiting ones at once, one under way once its run ends (up to {@link #STOP_WAIT}). */
  @Override
  public void close() {
    List<Thread> threads = new ArrayList<>();
    for (ScheduleJob j : jobs) {
      threads.add(j.stop());
    }
    long deadline = System.nanoTime() + STOP_WAIT.toNanos();
    for (int i = 0; i < threads.size(); i++) {
      Thread t = threads.get(i);
      if (t == null) {
        continue;
      }
      try {
        t.join(Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
      if (t.isAlive()) {
        LOG.warn("schedule {}: its run did not end within {}; abandoned", jobs.get(i).schedule().name(), STOP_WAIT);
      }
    }
  }
}
