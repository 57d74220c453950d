package dev.shade.requestor.schedule;

import dev.shade.requestor.agent.ConfigSyntax;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalTime;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.time.temporal.ChronoUnit;
import java.util.Locale;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * When a schedule runs: its slots, the instants at which it takes a snapshot. Three forms
 * (docs/schedule.md):
 *
 * <ul>
 *   <li>{@code hourly} or {@code hourly at :MM}: every hour of the zone at minute MM (0 unless
 *       given); at a fall-back change the repeated hour runs twice, once per offset, as the clock
 *       reads MM twice;
 *   <li>{@code daily} or {@code daily at HH:MM}: once a day at that local time (00:00 unless
 *       given); on a spring-forward day a time in the gap runs the gap's length later (02:30 in
 *       Europe/Berlin runs at 03:30), and on a fall-back day a time that occurs twice runs at the
 *       first (the earlier offset), so every local day has exactly one run;
 *   <li>{@code every DURATION} ({@code every 15m}, {@code every 2h}, {@code every 1s}; whole
 *       seconds, at least one): slots at whole multiples of the duration since the Unix epoch,
 *       which no time zone or offset change moves.
 * </ul>
 *
 * <p>Immutable.
 */
public final class ScheduleSpec {
  private static final Pattern HOURLY = Pattern.compile("hourly(?:\\s+at\\s+:(\\d{1,2}))?");
  private static final Pattern DAILY = Pattern.compile("daily(?:\\s+at\\s+(\\d{1,2}):(\\d{2}))?");
  private static final Pattern EVERY = Pattern.compile("every\\s+(.+)");

  /** The schedule operators get when they write none: every hour at minute 0. */
  public static final ScheduleSpec DEFAULT = new ScheduleSpec(Kind.HOURLY, 0, null, null, "hourly");

  private enum Kind { HOURLY, DAILY, EVERY }

  private final Kind kind;
  /** The minute of the hour, for HOURLY. */
  private final int minute;
  /** The local time, for DAILY. */
  private final LocalTime time;
  /** The period, for EVERY. */
  private final Duration every;
  /** The text it was parsed from, normalised. */
  private final String text;

  private ScheduleSpec(Kind kind, int minute, LocalTime time, Duration every, String text) {
    this.kind = kind;
    this.minute = minute;
    this.time = time;
    this.every = every;
    this.text = text;
  }

  /**
   * Parses one of the forms in the class comment.
   *
   * @throws IllegalArgumentException naming the text and the forms expected
   */
  public static ScheduleSpec parse(String text) {
    String s = text == null ? "" : text.strip().toLowerCase(Locale.ROOT);
    Matcher m = HOURLY.matcher(s);
    if (m.matches()) {
      int mm = m.group(1) == null ? 0 : Integer.parseInt(m.group(1));
      if (mm > 59) {
        throw new IllegalArgumentException("invalid schedule '" + text + "': the minute must be 00 to 59");
      }
      return new ScheduleSpec(Kind.HOURLY, mm, null, null, mm == 0 ? "hourly" : String.format(Locale.ROOT, "hourly at :%02d", mm));
    }
    m = DAILY.matcher(s);
    if (m.matches()) {
      int hh = m.group(1) == null ? 0 : Integer.parseInt(m.group(1));
      int mm = m.group(2) == null ? 0 : Integer.parseInt(m.group(2));
      if (hh > 23 || mm > 59) {
        throw new IllegalArgumentException("invalid schedule '" + text + "': the time must be 00:00 to 23:59");
      }
      LocalTime t = LocalTime.of(hh, mm);
      return new ScheduleSpec(Kind.DAILY, 0, t, null, "daily at " + t);
    }
    m = EVERY.matcher(s);
    if (m.matches()) {
      Duration d;
      try {
        d = ConfigSyntax.duration(m.group(1));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("invalid schedule '" + text + "': " + e.getMessage());
      }
      if (d.getNano() != 0) {
        throw new IllegalArgumentException("invalid schedule '" + text + "': the period must be whole seconds");
      }
      return new ScheduleSpec(Kind.EVERY, 0, null, d, "every " + m.group(1).strip());
    }
    throw new IllegalArgumentException("invalid schedule '" + text
        + "': expected hourly, hourly at :MM, daily, daily at HH:MM, or every DURATION (e.g. every 15m)");
  }

  /** The first slot strictly after {@code after}, with local times taken in {@code zone}. */
  public Instant next(Instant after, ZoneId zone) {
    switch (kind) {
      case EVERY: {
        long p = every.getSeconds();
        long s = Math.floorDiv(after.getEpochSecond(), p) * p + p; // a slot at `after` itself is not after it
        return Instant.ofEpochSecond(s);
      }
      case HOURLY: {
        // Whole UTC minutes, one at a time: the first whose local minute is ours. Offsets are whole
        // minutes in every zone in use today, so this meets each local hh:MM, twice in a repeated hour.
        Instant t = after.truncatedTo(ChronoUnit.MINUTES).plus(1, ChronoUnit.MINUTES);
        for (int i = 0; i < 24 * 60; i++, t = t.plus(1, ChronoUnit.MINUTES)) {
          if (t.atZone(zone).getMinute() == minute) {
            return t;
          }
        }
        throw new IllegalStateException("no hourly slot within a day after " + after + " in " + zone);
      }
      default: {
        LocalDate d = after.atZone(zone).toLocalDate().minusDays(1);
        for (int i = 0; i < 4; i++, d = d.plusDays(1)) {
          Instant t = slotOn(d, zone);
          if (t.isAfter(after)) {
            return t;
          }
        }
        throw new IllegalStateException("no daily slot within two days after " + after + " in " + zone);
      }
    }
  }

  /** The last slot at or before {@code notAfter}. */
  public Instant latest(Instant notAfter, ZoneId zone) {
    switch (kind) {
      case EVERY: {
        long p = every.getSeconds();
        return Instant.ofEpochSecond(Math.floorDiv(notAfter.getEpochSecond(), p) * p);
      }
      case HOURLY: {
        Instant t = notAfter.truncatedTo(ChronoUnit.MINUTES);
        for (int i = 0; i < 24 * 60; i++, t = t.minus(1, ChronoUnit.MINUTES)) {
          if (t.atZone(zone).getMinute() == minute) {
            return t;
          }
        }
        throw new IllegalStateException("no hourly slot within a day before " + notAfter + " in " + zone);
      }
      default: {
        LocalDate d = notAfter.atZone(zone).toLocalDate().plusDays(1);
        for (int i = 0; i < 4; i++, d = d.minusDays(1)) {
          Instant t = slotOn(d, zone);
          if (!t.isAfter(notAfter)) {
            return t;
          }
        }
        throw new IllegalStateException("no daily slot within two days before " + notAfter + " in " + zone);
      }
    }
  }

  /** The daily slot of local day {@code d}: a time in a gap moves on by the gap, a repeated one takes the earlier offset. */
  private Instant slotOn(LocalDate d, ZoneId zone) {
    return ZonedDateTime.of(d, time, zone).toInstant(); // ZonedDateTime.of resolves gaps and overlaps so
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ScheduleSpec s && s.kind == kind && s.minute == minute && Objects.equals(s.time, time)
        && Objects.equals(s.every, every);
  }

  @Override
  public int hashCode() {
    return Objects.hash(kind, minute, time, every);
  }

  /** The normalised form, e.g. "hourly", "daily at 02:30", "every 15m". */
  @Override
  public String toString() {
    return text;
  }
}
