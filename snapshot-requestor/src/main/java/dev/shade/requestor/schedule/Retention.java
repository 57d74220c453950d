package dev.shade.requestor.schedule;

import java.time.ZoneId;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Which snapshots of a schedule to keep: the keep-last, keep-hourly, keep-daily, keep-weekly,
 * keep-monthly and keep-yearly rules of Proxmox Backup Server's prune, with its semantics
 * (docs/schedule.md defines them with worked examples).
 *
 * <p>Each count is null when the rule is not used; a used count is at least 1. When no rule is
 * used every snapshot is kept ({@link #keepAll()}). Immutable.
 *
 * @param last keep the newest this many snapshots
 * @param hourly keep the newest snapshot of each of this many clock hours
 * @param daily ... of each of this many days
 * @param weekly ... of each of this many ISO weeks (Monday to Sunday)
 * @param monthly ... of each of this many months
 * @param yearly ... of each of this many years
 */
public record Retention(Integer last, Integer hourly, Integer daily, Integer weekly, Integer monthly, Integer yearly) {
  /*
   * The algorithm (PBS pbs-datastore/src/prune.rs, mark_selections). Snapshots are sorted newest
   * first. The rules run in the order last, hourly, daily, weekly, monthly, yearly; each rule R
   * with count n:
   *
   *   1. collects the periods (of R) of the snapshots earlier rules kept: those periods are
   *      covered already and R neither keeps nor counts another snapshot in them;
   *   2. walks the snapshots not yet decided, newest first: a snapshot in a covered period is
   *      passed over; the first one of a new period keeps it and counts it, until n periods are
   *      counted, where R stops; a later one of a period R counted is marked for deletion (a
   *      newer snapshot keeps that period).
   *
   * Whatever no rule kept is deleted. Periods without a snapshot are never counted, so
   * keep-daily 7 over a week with two days off keeps 7 days that have snapshots, reaching back
   * nine days. This differs from restic's forget, where each rule counts on its own and one
   * snapshot may be kept by several rules at once: there keep-last 3 keep-daily 3 over hourly
   * snapshots keeps the newest three and the last of three days, the newest of which is also
   * one of the three; here the newest day is covered by keep-last, and keep-daily keeps three
   * more days.
   *
   * Snapshots that are not the schedule's (Candidate.scheduled false) are kept, and take no part:
   * they neither cover a period nor count.
   */

  /** The reason given for a snapshot that is not the schedule's ({@link Candidate#scheduled()} false). */
  public static final String NOT_OURS = "not this schedule's snapshot: kept, and not counted";

  /** Keeps every snapshot: no rule used. */
  public static final Retention KEEP_ALL = new Retention(null, null, null, null, null, null);

  public Retention {
    check("last", last);
    check("hourly", hourly);
    check("daily", daily);
    check("weekly", weekly);
    check("monthly", monthly);
    check("yearly", yearly);
  }

  private static void check(String rule, Integer n) {
    if (n != null && n < 1) {
      throw new IllegalArgumentException("keep-" + rule + " must be at least 1 (leave it out to not use it): " + n);
    }
  }

  /** True when no rule is used, so nothing is ever pruned. */
  public boolean keepAll() {
    return last == null && hourly == null && daily == null && weekly == null && monthly == null && yearly == null;
  }

  /** The count of {@code p}'s rule, or null. */
  Integer count(Period p) {
    return switch (p) {
      case LAST -> last;
      case HOURLY -> hourly;
      case DAILY -> daily;
      case WEEKLY -> weekly;
      case MONTHLY -> monthly;
      case YEARLY -> yearly;
    };
  }

  /**
   * Decides, for every snapshot of one volume, whether this retention keeps it, with periods
   * taken in {@code zone}.
   *
   * @param snapshots the volume's snapshots, in any order
   * @return the plan, newest first (by creation time, then id)
   */
  public PrunePlan plan(List<Candidate> snapshots, ZoneId zone) {
    List<Candidate> sorted = new ArrayList<>(snapshots);
    sorted.sort(Comparator.comparing(Candidate::created).thenComparingLong(Candidate::id).reversed());
    Map<Candidate, PrunePlan.Entry> marks = new HashMap<>();
    for (Candidate c : sorted) {
      if (!c.scheduled()) {
        marks.put(c, new PrunePlan.Entry(c, true, null, NOT_OURS));
      } else if (keepAll()) {
        marks.put(c, new PrunePlan.Entry(c, true, null, "no keep rule set: every snapshot is kept"));
      }
    }
    for (Period p : Period.values()) {
      Integer n = count(p);
      if (n != null) {
        mark(p, n, sorted, marks, zone);
      }
    }
    List<PrunePlan.Entry> out = new ArrayList<>();
    for (Candidate c : sorted) {
      PrunePlan.Entry e = marks.get(c);
      out.add(e != null ? e : new PrunePlan.Entry(c, false, null, "not kept by any rule"));
    }
    return new PrunePlan(out);
  }

  private static void mark(Period p, int n, List<Candidate> sorted, Map<Candidate, PrunePlan.Entry> marks, ZoneId zone) {
    Set<String> covered = new HashSet<>();
    for (Candidate c : sorted) {
      PrunePlan.Entry e = marks.get(c);
      if (e != null && e.keep() && c.scheduled()) {
        covered.add(p.key(c.created(), c.id(), zone));
      }
    }
    Map<String, Candidate> counted = new LinkedHashMap<>();
    for (Candidate c : sorted) {
      if (marks.containsKey(c)) {
        continue;
      }
      String key = p.key(c.created(), c.id(), zone);
      if (covered.contains(key)) {
        continue;
      }
      Candidate newer = counted.get(key);
      if (newer == null) {
        if (counted.size() >= n) {
          break;
        }
        counted.put(key, c);
        String what = p == Period.LAST ? p.rule() : p.rule() + " " + key;
        marks.put(c, new PrunePlan.Entry(c, true, p.rule(), what + " (" + counted.size() + " of " + n + ")"));
      } else {
        marks.put(c, new PrunePlan.Entry(c, false, p.rule(), p.rule() + " " + key + " keeps the newer " + newer.name()));
      }
    }
  }
}
