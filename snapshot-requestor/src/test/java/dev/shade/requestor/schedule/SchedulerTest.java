package dev.shade.requestor.schedule;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link Scheduler} on a simulated clock: a week of hourly runs in seconds, one catch-up after
 * downtime (or none), a failure retried at the next slot, runs longer than the interval, pruning
 * that spares snapshots made by hand and by other schedules, and a stop that waits for a run.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SchedulerTest {
  private static final ZoneId BERLIN = ZoneId.of("Europe/Berlin");
  private static final String DB = "/v/db";
  private static final String WAL = "/v/wal";

  static Schedule schedule(String name, String every, Retention keep, CatchUp catchUp, boolean pruneManual, String... vols) {
    List<Path> ps = new ArrayList<>();
    for (String v : vols) {
      ps.add(Path.of(v));
    }
    return new Schedule(name, ps, List.of(), ScheduleSpec.parse(every), BERLIN, keep, catchUp, pruneManual,
        Schedule.DEFAULT_FREEZE_TIMEOUT);
  }

  /** Events as heard, in order. */
  static final class Heard implements Scheduler.Events {
    final List<String> names = Collections.synchronizedList(new ArrayList<>());
    final List<Map<String, Object>> data = Collections.synchronizedList(new ArrayList<>());

    @Override
    public void event(String name, Map<String, Object> d) {
      names.add(name);
      data.add(d);
    }
  }

  /** Runs {@code s} on {@code time} until it would sleep past its end, then stops it. */
  static Scheduler runToEnd(Schedule s, MemoryRunner runner, FakeTime time, Heard heard) throws InterruptedException {
    Scheduler sch = Scheduler.start(List.of(s), runner, time, time, heard);
    assertTrue(time.done.await(50, TimeUnit.SECONDS), "the simulation reached its end");
    sch.close();
    return sch;
  }

  @Test
  void simulatedWeek_hourly_168Runs_prunedToTheRetention() throws Exception {
    // a week over the fall-back change in Berlin (25 October 2026), starting just after a slot
    FakeTime time = new FakeTime(Instant.parse("2026-10-20T00:00:30Z"), Instant.parse("2026-10-27T00:00:30Z"));
    MemoryRunner runner = new MemoryRunner(time, true, DB, WAL);
    runner.add(DB, "by-hand", Instant.parse("2026-10-01T00:00:00Z"), Map.of());
    runner.add(DB, "other-20261001T000000Z", Instant.parse("2026-10-01T00:00:00Z"), MemoryRunner.by("other"));
    Retention keep = new Retention(3, 24, 7, 4, null, null);
    Heard heard = new Heard();
    long t0 = System.nanoTime();
    Schedule hourly = schedule("hourly", "hourly", keep, CatchUp.ONE, false, DB, WAL);
    Scheduler sch = runToEnd(hourly, runner, time, heard);
    double seconds = (System.nanoTime() - t0) / 1e9;

    assertEquals(168, runner.taken.size(), "one run per hour of the week");
    assertEquals(168, new HashSet<>(runner.taken).size(), "names are unique, also across the repeated hour");
    assertEquals("hourly-20261020T010000Z", runner.taken.get(0));
    assertEquals("hourly-20261027T000000Z", runner.taken.get(167));
    assertTrue(runner.taken.contains("hourly-20261025T000000Z") && runner.taken.contains("hourly-20261025T010000Z"),
        "02:00 CEST and 02:00 CET both run");
    assertEquals(1, runner.maxActive.get());
    assertEquals(168, heard.names.stream().filter("SCHEDULE_RUN"::equals).count());
    assertEquals(168, sch.status("hourly").runs());
    assertNull(sch.status("hourly").lastFailure());

    // what is left: the retention of the whole week, applied at once, prunes nothing more
    for (String v : List.of(DB, WAL)) {
      List<SnapshotRunner.Snapshot> left = runner.snapshots(v);
      PrunePlan plan = keep.plan(Ownership.candidates(hourly, left), BERLIN);
      assertEquals(List.of(), plan.pruned(), "pruned after every run already");
    }
    List<String> db = runner.names(DB);
    assertTrue(db.contains("by-hand") && db.contains("other-20261001T000000Z"), "not this schedule's: never pruned");
    // keep-last: 00:00Z, 23:00Z, 22:00Z (local 27th 01:00 and 00:00, 26th 23:00); keep-hourly: the 24 before, back to
    // 25th 22:00Z (23:00 CET, so the 25th is covered too); keep-daily: the 5 local days left, 20th to 24th; keep-weekly:
    // none, as both ISO weeks touched (W43, Tuesday 20th to Sunday 25th, and W44) are covered already
    long scheduledLeft = db.stream().filter(n -> n.startsWith("hourly-")).count();
    assertEquals(3 + 24 + 5, scheduledLeft, db.toString());
    System.out.printf("simulated week: %d runs, %d snapshots left per volume, %.2f s%n", runner.taken.size(), db.size(), seconds);
    assertTrue(seconds < 30, "a simulated week takes seconds: " + seconds);
  }

  @Test
  void catchUpOne_afterTenHoursDown_runsOnceAtStart_thenOnSchedule() throws Exception {
    FakeTime time = new FakeTime(Instant.parse("2026-12-01T10:20:00Z"), Instant.parse("2026-12-01T12:30:00Z"));
    MemoryRunner runner = new MemoryRunner(time, true, DB);
    runner.add(DB, "hourly-20261201T000000Z", Instant.parse("2026-12-01T00:00:00.013Z"), MemoryRunner.by("hourly"));
    Heard heard = new Heard();
    runToEnd(schedule("hourly", "hourly", Retention.KEEP_ALL, CatchUp.ONE, false, DB), runner, time, heard);
    assertEquals(List.of("hourly-20261201T100000Z", "hourly-20261201T110000Z", "hourly-20261201T120000Z"), runner.taken,
        "one snapshot for the ten missed slots, named for the latest of them");
    assertEquals(true, heard.data.get(0).get("catchUp"));
    assertEquals(false, heard.data.get(1).get("catchUp"));
  }

  @Test
  void catchUpSkip_afterDowntime_waitsForTheNextSlot() throws Exception {
    FakeTime time = new FakeTime(Instant.parse("2026-12-01T10:20:00Z"), Instant.parse("2026-12-01T12:30:00Z"));
    MemoryRunner runner = new MemoryRunner(time, true, DB);
    runner.add(DB, "hourly-20261201T000000Z", Instant.parse("2026-12-01T00:00:00Z"), MemoryRunner.by("hourly"));
    runToEnd(schedule("hourly", "hourly", Retention.KEEP_ALL, CatchUp.SKIP, false, DB), runner, time, new Heard());
    assertEquals(List.of("hourly-20261201T110000Z", "hourly-20261201T120000Z"), runner.taken);
  }

  @Test
  void catchUp_noSlotMissed_orNeverRan_runsNothingAtStart() throws Exception {
    FakeTime time = new FakeTime(Instant.parse("2026-12-01T10:20:00Z"), Instant.parse("2026-12-01T11:30:00Z"));
    MemoryRunner runner = new MemoryRunner(time, true, DB, WAL);
    runner.add(DB, "hourly-20261201T100000Z", Instant.parse("2026-12-01T10:00:00Z"), MemoryRunner.by("hourly"));
    runToEnd(schedule("hourly", "hourly", Retention.KEEP_ALL, CatchUp.ONE, false, DB), runner, time, new Heard());
    assertEquals(List.of("hourly-20261201T110000Z"), runner.taken, "the 10:00 slot was taken before the restart");

    FakeTime fresh = new FakeTime(Instant.parse("2026-12-01T10:20:00Z"), Instant.parse("2026-12-01T11:30:00Z"));
    MemoryRunner none = new MemoryRunner(fresh, true, WAL);
    runToEnd(schedule("hourly", "hourly", Retention.KEEP_ALL, CatchUp.ONE, false, WAL), none, fresh, new Heard());
    assertEquals(List.of("hourly-20261201T110000Z"), none.taken, "a schedule that never ran missed nothing");
  }

  @Test
  void failure_isReported_andRetriedAtTheNextSlot() throws Exception {
    FakeTime time = new FakeTime(Instant.parse("2026-12-01T09:30:00Z"), Instant.parse("2026-12-01T11:30:00Z"));
    MemoryRunner runner = new MemoryRunner(time, true, DB);
    runner.failNext.set(1);
    Heard heard = new Heard();
    Scheduler sch = runToEnd(schedule("hourly", "hourly", new Retention(2, null, null, null, null, null), CatchUp.ONE,
        false, DB), runner, time, heard);
    assertEquals(List.of("SCHEDULE_FAILED", "SCHEDULE_RUN"), heard.names);
    assertEquals(List.of("hourly-20261201T110000Z"), runner.taken, "10:00 failed; retried at 11:00, not before");
    Scheduler.Status st = sch.status("hourly");
    assertTrue(st.last().ok());
    assertNotNull(st.lastFailure());
    assertEquals(Instant.parse("2026-12-01T10:00:00Z"), st.lastFailure().slot());
    assertTrue(st.lastFailure().error().contains("diff area full (simulated)"), st.lastFailure().error());
    assertTrue(st.lastFailure().error().contains("hourly-20261201T100000Z"), st.lastFailure().error());
    assertEquals(false, heard.data.get(0).get("ok"));
  }

  @Test
  void runLongerThanTheInterval_neverOverlaps_slotsDuringItAreSkipped() throws Exception {
    FakeTime time = new FakeTime(Instant.parse("2026-12-01T00:30:00Z"), Instant.parse("2026-12-01T08:30:00Z"));
    MemoryRunner runner = new MemoryRunner(time, true, DB);
    runner.runTime = Duration.ofMinutes(150);
    runToEnd(schedule("hourly", "hourly", Retention.KEEP_ALL, CatchUp.ONE, false, DB), runner, time, new Heard());
    assertEquals(1, runner.maxActive.get());
    // 01:00 runs until 03:30; 04:00 until 06:30; 07:00 until 09:30
    assertEquals(List.of("hourly-20261201T010000Z", "hourly-20261201T040000Z", "hourly-20261201T070000Z"), runner.taken);
  }

  @Test
  void pruneManual_prunesHandMadeSnapshots_butNeverAnotherSchedules() throws Exception {
    FakeTime time = new FakeTime(Instant.parse("2026-12-01T09:30:00Z"), Instant.parse("2026-12-01T10:30:00Z"));
    MemoryRunner runner = new MemoryRunner(time, true, DB);
    runner.add(DB, "by-hand", Instant.parse("2026-11-01T00:00:00Z"), Map.of());
    runner.add(DB, "daily-20261101T000000Z", Instant.parse("2026-11-01T00:00:00Z"), MemoryRunner.by("daily"));
    runToEnd(schedule("hourly", "hourly", new Retention(1, null, null, null, null, null), CatchUp.ONE, true, DB), runner,
        time, new Heard());
    assertEquals(List.of("daily-20261101T000000Z", "hourly-20261201T100000Z"), runner.names(DB));
    assertEquals(List.of("/v/db/by-hand"), runner.deleted);
  }

  @Test
  void aSnapshotMadeByHandUnderAScheduleLikeNameIsNeverPruned() throws Exception {
    FakeTime time = new FakeTime(Instant.parse("2026-12-01T09:30:00Z"), Instant.parse("2026-12-01T11:30:00Z"));
    MemoryRunner runner = new MemoryRunner(time, true, DB);
    runner.add(DB, "hourly-20261130T000000Z", Instant.parse("2026-11-30T00:00:00Z"), Map.of());
    runToEnd(schedule("hourly", "hourly", new Retention(1, null, null, null, null, null), CatchUp.SKIP, false, DB), runner,
        time, new Heard());
    assertEquals(List.of("hourly-20261130T000000Z", "hourly-20261201T110000Z"), runner.names(DB));
  }

  @Test
  void show_listsNextRuns_lastResult_andThePlan() throws Exception {
    FakeTime time = new FakeTime(Instant.parse("2026-12-01T09:30:00Z"), Instant.parse("2026-12-01T11:30:00Z"));
    MemoryRunner runner = new MemoryRunner(time, true, DB);
    runner.add(DB, "by-hand", Instant.parse("2026-11-01T00:00:00Z"), Map.of());
    Scheduler sch = runToEnd(schedule("hourly", "hourly", new Retention(1, null, null, null, null, null), CatchUp.ONE,
        false, DB), runner, time, new Heard());
    runner.add(DB, "hourly-20261201T113000Z", Instant.parse("2026-12-01T11:29:00Z"), MemoryRunner.by("hourly"));
    Map<String, Object> doc = sch.show();
    @SuppressWarnings("unchecked")
    Map<String, Object> s = ((List<Map<String, Object>>) doc.get("schedules")).get(0);
    assertEquals("hourly", s.get("every"));
    assertEquals("Europe/Berlin", s.get("timeZone"));
    assertEquals(List.of(Map.of("utc", "2026-12-01T12:00:00Z", "local", "2026-12-01T13:00+01:00"),
        Map.of("utc", "2026-12-01T13:00:00Z", "local", "2026-12-01T14:00+01:00"),
        Map.of("utc", "2026-12-01T14:00:00Z", "local", "2026-12-01T15:00+01:00")), s.get("next"));
    @SuppressWarnings("unchecked")
    Map<String, Object> last = (Map<String, Object>) s.get("lastRun");
    assertEquals("hourly-20261201T110000Z", last.get("snapshot"));
    assertEquals(List.of("db/hourly-20261201T100000Z"), last.get("pruned"));
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> plan = (List<Map<String, Object>>) ((List<Map<String, Object>>) s.get("plans")).get(0).get("snapshots");
    assertEquals(3, plan.size());
    assertEquals("keep", plan.get(0).get("action"));
    assertEquals("keep-last (1 of 1)", plan.get(0).get("reason"));
    assertEquals("prune", plan.get(1).get("action"));
    assertEquals("hourly-20261201T110000Z", plan.get(1).get("name"));
    assertEquals("not kept by any rule", plan.get(1).get("reason"));
    assertEquals("by-hand", plan.get(2).get("name"));
    assertTrue(((String) plan.get(2).get("reason")).startsWith("made by hand"), plan.get(2).toString());
    assertFalse((Boolean) s.get("running"));
  }

  @Test
  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  void close_waitsForTheRunUnderWay_withoutInterruptingIt() throws Exception {
    CountDownLatch inRun = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    boolean[] interrupted = {false};
    SnapshotRunner blocking = new SnapshotRunner() {
      @Override
      public void snapshot(List<String> volumes, List<String> writers, String name, Map<String, String> attributes,
          Duration freezeTimeout) {
        inRun.countDown();
        while (true) {
          try {
            if (release.await(10, TimeUnit.SECONDS)) {
              break;
            }
          } catch (InterruptedException e) {
            interrupted[0] = true;
          }
        }
      }

      @Override
      public List<Snapshot> snapshots(String volume) {
        return List.of();
      }

      @Override
      public void delete(String volume, String name) {}
    };
    Scheduler sch = Scheduler.start(List.of(schedule("fast", "every 1s", Retention.KEEP_ALL, CatchUp.ONE, false, DB)),
        blocking, Clock.systemUTC(), Sleeper.SYSTEM, Scheduler.Events.NONE);
    assertTrue(inRun.await(5, TimeUnit.SECONDS));
    Thread closer = new Thread(sch::close);
    closer.start();
    closer.join(300);
    assertTrue(closer.isAlive(), "close waits for the run");
    release.countDown();
    closer.join(5000);
    assertFalse(closer.isAlive());
    assertFalse(interrupted[0], "a run is never interrupted");
    assertTrue(sch.status("fast").last().ok());
  }

  @Test
  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  void twoSchedules_aSlowRunOfOneNeverDelaysTheOther() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    List<String> taken = Collections.synchronizedList(new ArrayList<>());
    SnapshotRunner runner = new SnapshotRunner() {
      @Override
      public void snapshot(List<String> volumes, List<String> writers, String name, Map<String, String> attributes,
          Duration freezeTimeout) throws java.io.IOException {
        if (name.startsWith("slow-")) {
          try {
            release.await(15, TimeUnit.SECONDS);
          } catch (InterruptedException e) {
            throw new java.io.IOException("interrupted");
          }
        }
        taken.add(name);
      }

      @Override
      public List<Snapshot> snapshots(String volume) {
        return List.of();
      }

      @Override
      public void delete(String volume, String name) {}
    };
    Scheduler sch = Scheduler.start(List.of(schedule("slow", "every 1s", Retention.KEEP_ALL, CatchUp.ONE, false, DB),
        schedule("quick", "every 1s", Retention.KEEP_ALL, CatchUp.ONE, false, WAL)), runner, Clock.systemUTC(),
        Sleeper.SYSTEM, Scheduler.Events.NONE);
    try {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (taken.stream().filter(n -> n.startsWith("quick-")).count() < 3 && System.nanoTime() < deadline) {
        Thread.sleep(50);
      }
      assertTrue(taken.stream().filter(n -> n.startsWith("quick-")).count() >= 3, taken.toString());
      assertTrue(taken.stream().noneMatch(n -> n.startsWith("slow-")), "the slow run is still under way: " + taken);
      assertTrue(sch.status("slow").running());
    } finally {
      release.countDown();
      sch.close();
    }
  }
}
