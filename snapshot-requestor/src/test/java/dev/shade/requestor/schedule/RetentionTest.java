package dev.shade.requestor.schedule;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link Retention}: the PBS rules, in their order, over calendar periods of a time zone: month
 * ends, a leap day, both DST changes in Europe/Berlin and America/New_York, ISO week 53 across
 * the year boundary, periods without snapshots, snapshots made by hand.
 */
class RetentionTest {
  private static final ZoneId BERLIN = ZoneId.of("Europe/Berlin");
  private static final ZoneId NEW_YORK = ZoneId.of("America/New_York");
  private static final ZoneId UTC = ZoneId.of("UTC");

  /** Scheduled snapshots every {@code step} from {@code from} (inclusive) to {@code to} (inclusive), ids in order. */
  static List<Candidate> series(String from, String to, Duration step) {
    List<Candidate> out = new ArrayList<>();
    long id = 1;
    for (Instant t = Instant.parse(from); !t.isAfter(Instant.parse(to)); t = t.plus(step)) {
      out.add(new Candidate(id++, "s-" + t, t, true));
    }
    return out;
  }

  static Candidate at(long id, String t) {
    return new Candidate(id, "s-" + t, Instant.parse(t), true);
  }

  /** The creation times of what {@code plan} keeps, newest first, as ISO strings. */
  static List<String> kept(PrunePlan plan) {
    return plan.kept().stream().map(c -> c.created().toString()).toList();
  }

  /** The reason {@code plan} gives for the snapshot created at {@code t}. */
  static String reason(PrunePlan plan, String t) {
    return plan.entries().stream().filter(e -> e.snapshot().created().equals(Instant.parse(t))).findFirst().orElseThrow()
        .reason();
  }

  static Retention keep(Integer last, Integer hourly, Integer daily, Integer weekly, Integer monthly, Integer yearly) {
    return new Retention(last, hourly, daily, weekly, monthly, yearly);
  }

  @Test
  void keepLast_keepsTheNewestAndPrunesTheRest() {
    PrunePlan plan = keep(3, null, null, null, null, null).plan(series("2026-11-30T00:00:00Z", "2026-11-30T05:00:00Z",
        Duration.ofHours(1)), UTC);
    assertEquals(List.of("2026-11-30T05:00:00Z", "2026-11-30T04:00:00Z", "2026-11-30T03:00:00Z"), kept(plan));
    assertEquals(3, plan.pruned().size());
    assertEquals("keep-last (1 of 3)", plan.entries().get(0).reason());
    assertEquals("not kept by any rule", plan.entries().get(5).reason());
  }

  @Test
  void keepDaily_daysAreLocalDays_notUtcDays() {
    // hourly over the end of November; Berlin is UTC+1, so its 30 November ends at 22:59:59Z
    List<Candidate> hourly = series("2026-11-29T00:00:00Z", "2026-12-01T22:00:00Z", Duration.ofHours(1));
    assertEquals(List.of("2026-12-01T22:00:00Z", "2026-11-30T22:00:00Z", "2026-11-29T22:00:00Z"),
        kept(keep(null, null, 3, null, null, null).plan(hourly, BERLIN)));
    assertEquals(List.of("2026-12-01T22:00:00Z", "2026-11-30T23:00:00Z", "2026-11-29T23:00:00Z"),
        kept(keep(null, null, 3, null, null, null).plan(hourly, UTC)));
    PrunePlan plan = keep(null, null, 3, null, null, null).plan(hourly, BERLIN);
    assertEquals("keep-daily 2026-11-30 (2 of 3)", reason(plan, "2026-11-30T22:00:00Z"));
    assertEquals("keep-daily 2026-12-01 keeps the newer s-2026-12-01T22:00:00Z", reason(plan, "2026-11-30T23:00:00Z"),
        "2026-11-30T23:00Z is 00:00 on 1 December in Berlin");
  }

  @Test
  void keepMonthly_acrossMonthEnds_keepsTheLastSnapshotOfEachLocalMonth() {
    List<Candidate> daily = series("2026-10-15T23:30:00Z", "2027-01-10T23:30:00Z", Duration.ofDays(1));
    // 23:30Z is 00:30 the next day in Berlin: the last of November locally is the one at 2026-11-29T23:30Z
    assertEquals(List.of("2027-01-10T23:30:00Z", "2026-12-30T23:30:00Z", "2026-11-29T23:30:00Z", "2026-10-30T23:30:00Z"),
        kept(keep(null, null, null, null, 4, null).plan(daily, BERLIN)));
    assertEquals(List.of("2027-01-10T23:30:00Z", "2026-12-31T23:30:00Z", "2026-11-30T23:30:00Z", "2026-10-31T23:30:00Z"),
        kept(keep(null, null, null, null, 4, null).plan(daily, UTC)));
  }

  @Test
  void leapDay_isADayOfItsOwn_andTheLastOfFebruary() {
    List<Candidate> daily = series("2028-02-26T12:00:00Z", "2028-03-02T12:00:00Z", Duration.ofDays(1));
    assertEquals(List.of("2028-03-02T12:00:00Z", "2028-03-01T12:00:00Z", "2028-02-29T12:00:00Z", "2028-02-28T12:00:00Z"),
        kept(keep(null, null, 4, null, null, null).plan(daily, BERLIN)));
    PrunePlan plan = keep(1, null, null, null, 2, null).plan(daily, BERLIN);
    assertEquals(List.of("2028-03-02T12:00:00Z", "2028-02-29T12:00:00Z"), kept(plan));
    assertEquals("keep-monthly 2028-02 (1 of 2)", reason(plan, "2028-02-29T12:00:00Z"));
    assertEquals("keep-monthly 2028-02 keeps the newer s-2028-02-29T12:00:00Z", reason(plan, "2028-02-28T12:00:00Z"));
  }

  @Test
  void springForward_berlin_dayOf23Hours_hoursNeverSkippedOrMerged() {
    // 2026-03-29 01:00Z: 02:00 CET becomes 03:00 CEST; the local day runs from 28T23:00Z to 29T22:00Z
    List<Candidate> hourly = series("2026-03-28T20:00:00Z", "2026-03-30T02:00:00Z", Duration.ofHours(1));
    PrunePlan plan = keep(null, 100, null, null, null, null).plan(hourly, BERLIN);
    assertEquals(hourly.size(), plan.kept().size(), "every UTC hour is a local hour of its own");
    assertEquals(List.of("2026-03-30T02:00:00Z", "2026-03-29T21:00:00Z", "2026-03-28T22:00:00Z"),
        kept(keep(null, null, 3, null, null, null).plan(hourly, BERLIN)));
    long onThe29th = hourly.stream().filter(c -> Period.DAILY.key(c.created(), c.id(), BERLIN).equals("2026-03-29")).count();
    assertEquals(23, onThe29th);
    assertEquals("2026-03-29T03+02:00", Period.HOURLY.key(Instant.parse("2026-03-29T01:00:00Z"), 0, BERLIN));
    assertEquals("2026-03-29T01+01:00", Period.HOURLY.key(Instant.parse("2026-03-29T00:59:59Z"), 0, BERLIN));
  }

  @Test
  void fallBack_berlin_repeatedHourIsTwoPeriods_dayOf25Hours() {
    // 2026-10-25 01:00Z: 03:00 CEST becomes 02:00 CET; 02:xx local happens at 00:xxZ and 01:xxZ
    List<Candidate> hourly = series("2026-10-24T21:00:00Z", "2026-10-25T23:00:00Z", Duration.ofHours(1));
    assertEquals("2026-10-25T02+02:00", Period.HOURLY.key(Instant.parse("2026-10-25T00:30:00Z"), 0, BERLIN));
    assertEquals("2026-10-25T02+01:00", Period.HOURLY.key(Instant.parse("2026-10-25T01:30:00Z"), 0, BERLIN));
    PrunePlan plan = keep(null, 3, null, null, null, null).plan(series("2026-10-24T23:00:00Z", "2026-10-25T01:00:00Z",
        Duration.ofHours(1)), BERLIN);
    assertEquals(3, plan.kept().size(), "01:00 CEST, 02:00 CEST and 02:00 CET: three hours, three snapshots kept");
    long onThe25th = hourly.stream().filter(c -> Period.DAILY.key(c.created(), c.id(), BERLIN).equals("2026-10-25")).count();
    assertEquals(25, onThe25th);
    assertEquals(List.of("2026-10-25T23:00:00Z", "2026-10-25T22:00:00Z", "2026-10-24T21:00:00Z"),
        kept(keep(1, null, 2, null, null, null).plan(hourly, BERLIN)));
  }

  @Test
  void bothChanges_newYork() {
    // spring: 2026-03-08 07:00Z, 02:00 EST becomes 03:00 EDT; fall: 2026-11-01 06:00Z, 02:00 EDT becomes 01:00 EST
    assertEquals("2026-03-08T01-05:00", Period.HOURLY.key(Instant.parse("2026-03-08T06:59:00Z"), 0, NEW_YORK));
    assertEquals("2026-03-08T03-04:00", Period.HOURLY.key(Instant.parse("2026-03-08T07:00:00Z"), 0, NEW_YORK));
    assertEquals("2026-11-01T01-04:00", Period.HOURLY.key(Instant.parse("2026-11-01T05:30:00Z"), 0, NEW_YORK));
    assertEquals("2026-11-01T01-05:00", Period.HOURLY.key(Instant.parse("2026-11-01T06:30:00Z"), 0, NEW_YORK));
    List<Candidate> spring = series("2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z", Duration.ofHours(1));
    // New York days end at 05:00Z before the change and 04:00Z after it
    assertEquals(List.of("2026-03-10T00:00:00Z", "2026-03-09T03:00:00Z", "2026-03-08T04:00:00Z", "2026-03-07T04:00:00Z"),
        kept(keep(null, null, 4, null, null, null).plan(spring, NEW_YORK)));
    assertEquals(23, spring.stream().filter(c -> Period.DAILY.key(c.created(), c.id(), NEW_YORK).equals("2026-03-08")).count());
    List<Candidate> fall = series("2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z", Duration.ofHours(1));
    assertEquals(List.of("2026-11-03T00:00:00Z", "2026-11-02T04:00:00Z", "2026-11-01T03:00:00Z", "2026-10-31T03:00:00Z"),
        kept(keep(null, null, 4, null, null, null).plan(fall, NEW_YORK)));
    assertEquals(25, fall.stream().filter(c -> Period.DAILY.key(c.created(), c.id(), NEW_YORK).equals("2026-11-01")).count());
    PrunePlan hours = keep(null, 4, null, null, null, null).plan(series("2026-11-01T04:00:00Z", "2026-11-01T07:00:00Z",
        Duration.ofHours(1)), NEW_YORK);
    assertEquals(4, hours.kept().size(), "00:00 EDT, 01:00 EDT, 01:00 EST, 02:00 EST");
  }

  @Test
  void keepWeekly_isoWeek53_spansTheYearBoundary() {
    // 2026 has 53 ISO weeks: W53 is Monday 28 December 2026 to Sunday 3 January 2027
    assertEquals("2026-W53", Period.WEEKLY.key(Instant.parse("2027-01-03T12:00:00Z"), 0, BERLIN));
    assertEquals("2026-W53", Period.WEEKLY.key(Instant.parse("2026-12-28T12:00:00Z"), 0, BERLIN));
    assertEquals("2027-W01", Period.WEEKLY.key(Instant.parse("2027-01-03T23:30:00Z"), 0, BERLIN), "00:30 Monday in Berlin");
    assertEquals("2026-W53", Period.WEEKLY.key(Instant.parse("2027-01-03T23:30:00Z"), 0, UTC));
    List<Candidate> daily = series("2026-12-20T12:00:00Z", "2027-01-06T12:00:00Z", Duration.ofDays(1));
    assertEquals(List.of("2027-01-06T12:00:00Z", "2027-01-03T12:00:00Z", "2026-12-27T12:00:00Z"),
        kept(keep(null, null, null, 3, null, null).plan(daily, BERLIN)));
    assertEquals(List.of("2027-01-06T12:00:00Z", "2026-12-31T12:00:00Z"),
        kept(keep(null, null, null, null, null, 2).plan(daily, BERLIN)), "years are calendar years, not ISO years");
  }

  @Test
  void periodsWithoutSnapshots_areNotCounted() {
    List<Candidate> days = List.of(at(1, "2026-11-01T12:00:00Z"), at(2, "2026-11-02T12:00:00Z"), at(3, "2026-11-05T12:00:00Z"),
        at(4, "2026-11-09T12:00:00Z"));
    assertEquals(List.of("2026-11-09T12:00:00Z", "2026-11-05T12:00:00Z", "2026-11-02T12:00:00Z"),
        kept(keep(null, null, 3, null, null, null).plan(days, BERLIN)));
  }

  @Test
  void rulesInOrder_aPeriodKeptByAnEarlierRuleIsNotCountedAgain() {
    // five days of hourly snapshots; keep-last 3 keeps three of the last day, so keep-daily 3 keeps three more days
    List<Candidate> hourly = series("2026-11-26T00:00:00Z", "2026-11-30T23:00:00Z", Duration.ofHours(1));
    PrunePlan plan = keep(3, null, 3, null, null, null).plan(hourly, UTC);
    assertEquals(List.of("2026-11-30T23:00:00Z", "2026-11-30T22:00:00Z", "2026-11-30T21:00:00Z", "2026-11-29T23:00:00Z",
        "2026-11-28T23:00:00Z", "2026-11-27T23:00:00Z"), kept(plan));
    assertEquals("keep-daily 2026-11-29 (1 of 3)", reason(plan, "2026-11-29T23:00:00Z"));
    // the older snapshots of the last day: not kept by keep-daily either, its day being covered
    assertEquals("not kept by any rule", reason(plan, "2026-11-30T20:00:00Z"));
  }

  @Test
  void allRules_overTwoYearsOfHourlySnapshots_keepTheExpectedSet() {
    List<Candidate> hourly = series("2024-06-01T00:00:00Z", "2026-12-01T10:00:00Z", Duration.ofHours(1));
    PrunePlan plan = keep(3, 24, 7, 4, 12, 2).plan(hourly, BERLIN);
    // 3 last, 24 more hours, 7 more days (the newest day is covered), 4 weeks, 12 months, 2 years, minus overlaps
    List<PrunePlan.Entry> kept = plan.entries().stream().filter(PrunePlan.Entry::keep).toList();
    assertEquals(3, kept.stream().filter(e -> "keep-last".equals(e.rule())).count());
    assertEquals(24, kept.stream().filter(e -> "keep-hourly".equals(e.rule())).count());
    assertEquals(7, kept.stream().filter(e -> "keep-daily".equals(e.rule())).count());
    assertEquals(4, kept.stream().filter(e -> "keep-weekly".equals(e.rule())).count());
    assertEquals(12, kept.stream().filter(e -> "keep-monthly".equals(e.rule())).count());
    assertEquals(1, kept.stream().filter(e -> "keep-yearly".equals(e.rule())).count(),
        "2026 and 2025 are covered by the newer rules (December 2025 by keep-monthly); 2024 is the one year left");
    assertEquals("keep-yearly 2024 (1 of 2)", kept.get(kept.size() - 1).reason());
    assertEquals("2024-12-31T22:00:00Z", kept.get(kept.size() - 1).snapshot().created().toString(),
        "the last snapshot of 2024 in Berlin is at 22:00Z on 31 December (23:00 CET)");
  }

  @Test
  void manualSnapshots_areKeptAndNotCounted() {
    List<Candidate> all = new ArrayList<>(series("2026-11-30T00:00:00Z", "2026-11-30T04:00:00Z", Duration.ofHours(1)));
    all.add(new Candidate(100, "by-hand", Instant.parse("2026-11-30T05:00:00Z"), false));
    all.add(new Candidate(101, "old-by-hand", Instant.parse("2020-01-01T00:00:00Z"), false));
    PrunePlan plan = keep(2, null, null, null, null, null).plan(all, UTC);
    assertEquals(List.of("2026-11-30T05:00:00Z", "2026-11-30T04:00:00Z", "2026-11-30T03:00:00Z", "2020-01-01T00:00:00Z"),
        kept(plan));
    assertEquals(Retention.NOT_OURS, plan.entries().get(0).reason());
    assertTrue(plan.pruned().stream().allMatch(Candidate::scheduled));
  }

  @Test
  void noRule_keepsEverything() {
    assertTrue(Retention.KEEP_ALL.keepAll());
    PrunePlan plan = Retention.KEEP_ALL.plan(series("2026-11-30T00:00:00Z", "2026-11-30T04:00:00Z", Duration.ofHours(1)), UTC);
    assertEquals(5, plan.kept().size());
    assertFalse(keep(1, null, null, null, null, null).keepAll());
  }

  static Stream<Arguments> zeroCounts() {
    return Stream.of(Arguments.of(0, "keep-last"), Arguments.of(-1, "keep-last"));
  }

  @ParameterizedTest
  @MethodSource("zeroCounts")
  void countBelowOne_isRefused(int n, String rule) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> keep(n, null, null, null, null, null));
    assertTrue(e.getMessage().contains(rule) && e.getMessage().contains(String.valueOf(n)), e.getMessage());
  }

  @Test
  void sameInstant_newerIdIsNewer() {
    Instant t = Instant.parse("2026-11-30T00:00:00Z");
    PrunePlan plan = keep(1, null, null, null, null, null).plan(List.of(new Candidate(1, "a", t, true),
        new Candidate(2, "b", t, true)), UTC);
    assertEquals("b", plan.kept().get(0).name());
  }
}
