package dev.shade.requestor.schedule;

import java.time.Instant;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.temporal.IsoFields;
import java.util.Locale;

/**
 * The calendar periods of the retention rules, and the key that says which period of a time
 * zone an instant falls in: two instants are in the same period exactly when their keys are
 * equal.
 */
enum Period {
  /** Every snapshot is a period of its own (keep-last). */
  LAST("last"),
  /**
   * A clock hour of the zone, told apart by the zone's offset: at a fall-back change the
   * repeated local hour (02:00 to 03:00 in Europe/Berlin) is two periods, one per offset.
   */
  HOURLY("hourly"),
  /** A calendar day of the zone (23, 24 or 25 hours long). */
  DAILY("daily"),
  /** An ISO-8601 week of the zone: Monday to Sunday, numbered within its week-based year. */
  WEEKLY("weekly"),
  /** A calendar month of the zone. */
  MONTHLY("monthly"),
  /** A calendar year of the zone. */
  YEARLY("yearly");

  private static final DateTimeFormatter HOUR = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HHxxx", Locale.ROOT);

  /** The word after "keep-" in the config and in reasons. */
  final String word;

  Period(String word) {
    this.word = word;
  }

  /** The rule's name as operators write it: keep-daily. */
  String rule() {
    return "keep-" + word;
  }

  /** Which period of {@code zone} the snapshot {@code id} made at {@code t} falls in. */
  String key(Instant t, long id, ZoneId zone) {
    ZonedDateTime z = t.atZone(zone);
    return switch (this) {
      case LAST -> "#" + id;
      case HOURLY -> HOUR.format(z);
      case DAILY -> z.toLocalDate().toString();
      case WEEKLY -> String.format(Locale.ROOT, "%d-W%02d", z.get(IsoFields.WEEK_BASED_YEAR),
          z.get(IsoFields.WEEK_OF_WEEK_BASED_YEAR));
      case MONTHLY -> String.format(Locale.ROOT, "%04d-%02d", z.getYear(), z.getMonthValue());
      case YEARLY -> String.format(Locale.ROOT, "%04d", z.getYear());
    };
  }
}
