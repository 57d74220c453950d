package dev.shade.requestor.schedule;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Which snapshots a schedule made, and the names it gives them.
 *
 * <p>A snapshot is a schedule's when its {@code shade.schedule} attribute is the schedule's name
 * (set in the same durable record as the snapshot); its name does not decide, so a snapshot made
 * by hand under a schedule-like name is still hand-made. A snapshot is made by hand when no
 * schedule made it; a schedule prunes those only with {@code "pruneManual": true}, and never the
 * snapshots of another schedule.
 */
final class Ownership {
  /** The attribute naming the schedule that made a snapshot. */
  static final String ATTRIBUTE = "shade.schedule";
  /** The attribute holding the slot (UTC, ISO-8601) a snapshot was taken for. */
  static final String SLOT_ATTRIBUTE = "shade.slot";

  private static final DateTimeFormatter SUFFIX = DateTimeFormatter.ofPattern("uuuuMMdd'T'HHmmss'Z'", Locale.ROOT)
      .withZone(ZoneOffset.UTC);

  private Ownership() {}

  /** The name of {@code schedule}'s snapshot for {@code slot}: NAME-yyyyMMddTHHmmssZ, in UTC. */
  static String snapshotName(String schedule, Instant slot) {
    return schedule + "-" + SUFFIX.format(slot);
  }

  /** True if {@code schedule} made {@code s}. */
  static boolean ours(String schedule, SnapshotRunner.Snapshot s) {
    return s.attributes() != null && schedule.equals(s.attributes().get(ATTRIBUTE));
  }

  /** True if some schedule made {@code s}. */
  static boolean scheduled(SnapshotRunner.Snapshot s) {
    return s.attributes() != null && s.attributes().containsKey(ATTRIBUTE);
  }

  /** {@code snapshots} as retention of {@code schedule} sees them. */
  static List<Candidate> candidates(Schedule schedule, List<SnapshotRunner.Snapshot> snapshots) {
    List<Candidate> out = new ArrayList<>();
    for (SnapshotRunner.Snapshot s : snapshots) {
      boolean prunable = ours(schedule.name(), s) || (schedule.pruneManual() && !scheduled(s));
      out.add(new Candidate(s.id(), s.name(), s.created(), prunable));
    }
    return out;
  }

  /** When {@code schedule} last took a snapshot of {@code snapshots}' volume, or null. */
  static Instant lastRun(String schedule, List<SnapshotRunner.Snapshot> snapshots) {
    Instant last = null;
    for (SnapshotRunner.Snapshot s : snapshots) {
      if (ours(schedule, s) && (last == null || s.created().isAfter(last))) {
        last = s.created();
      }
    }
    return last;
  }
}
