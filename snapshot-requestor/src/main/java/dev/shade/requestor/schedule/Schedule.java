package dev.shade.requestor.schedule;

import java.nio.file.Path;
import java.time.Duration;
import java.time.ZoneId;
import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * One schedule of the agent's config file: which volumes it snapshots as one set, with which
 * writers, when, and what it keeps (docs/schedule.md).
 *
 * @param name the schedule's name: the prefix of its snapshots' names and the value of their
 *     {@code shade.schedule} attribute
 * @param volumes volume directories, snapshotted together as one set
 * @param writers writer specs passed to snapshot-create ("fs:/mnt/x", "postgres:...")
 * @param every when it runs
 * @param timeZone the zone of its local times and of its retention periods
 * @param keep what it keeps
 * @param catchUp what it does about slots missed while the agent was down
 * @param pruneManual whether its retention also prunes snapshots made by hand
 * @param freezeTimeout the longest the writers may hold the volumes frozen
 */
public record Schedule(String name, List<Path> volumes, List<String> writers, ScheduleSpec every, ZoneId timeZone,
    Retention keep, CatchUp catchUp, boolean pruneManual, Duration freezeTimeout) {
  /** Schedule names: snapshot-name characters, short enough for the time suffix. */
  static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._+-]{0,63}");
  /** The writers' freeze limit when the config gives none. */
  public static final Duration DEFAULT_FREEZE_TIMEOUT = Duration.ofSeconds(5);

  public Schedule {
    Objects.requireNonNull(name, "name");
    if (!NAME.matcher(name).matches()) {
      throw new IllegalArgumentException("invalid schedule name '" + name
          + "': use 1-64 letters, digits and . _ + - (starting with a letter or digit)");
    }
    volumes = List.copyOf(volumes);
    if (volumes.isEmpty()) {
      throw new IllegalArgumentException("schedule '" + name + "' names no volumes");
    }
    writers = List.copyOf(writers);
    Objects.requireNonNull(every, "every");
    Objects.requireNonNull(timeZone, "timeZone");
    Objects.requireNonNull(keep, "keep");
    Objects.requireNonNull(catchUp, "catchUp");
    Objects.requireNonNull(freezeTimeout, "freezeTimeout");
  }
}
