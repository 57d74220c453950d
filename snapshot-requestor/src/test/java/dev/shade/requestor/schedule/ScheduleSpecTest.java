package dev.shade.requestor.schedule;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** {@link ScheduleSpec}: the forms, and the slots they give across both DST changes. */
class ScheduleSpecTest {
  private static final ZoneId BERLIN = ZoneId.of("Europe/Berlin");
  private static final ZoneId NEW_YORK = ZoneId.of("America/New_York");
  private static final ZoneId UTC = ZoneId.of("UTC");

  /** The slots of {@code spec} strictly after {@code from} up to {@code to} (inclusive). */
  static List<String> slots(ScheduleSpec spec, String from, String to, ZoneId zone) {
    List<String> out = new ArrayList<>();
    for (Instant t = spec.next(Instant.parse(from), zone); !t.isAfter(Instant.parse(to)); t = spec.next(t, zone)) {
      out.add(t.toString());
    }
    return out;
  }

  /** How many slots of {@code spec} fall on local day {@code day} of {@code zone}. */
  static int slotsOn(ScheduleSpec spec, String day, ZoneId zone) {
    LocalDate d = LocalDate.parse(day);
    Instant start = d.atStartOfDay(zone).toInstant();
    Instant end = d.plusDays(1).atStartOfDay(zone).toInstant();
    int n = 0;
    for (Instant t = spec.next(start.minusNanos(1), zone); t.isBefore(end); t = spec.next(t, zone)) {
      n++;
    }
    return n;
  }

  @Test
  void hourly_fallBack_runsTheRepeatedHourTwice() {
    ScheduleSpec hourly = ScheduleSpec.parse("hourly");
    assertEquals(List.of("2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"),
        slots(hourly, "2026-10-24T23:30:00Z", "2026-10-25T02:00:00Z", BERLIN), "02:00 CEST, 02:00 CET, 03:00 CET");
    assertEquals(25, slotsOn(hourly, "2026-10-25", BERLIN));
    assertEquals(25, slotsOn(hourly, "2026-11-01", NEW_YORK));
  }

  @Test
  void hourly_springForward_hasNoSlotInTheGap() {
    ScheduleSpec hourly = ScheduleSpec.parse("hourly");
    assertEquals(List.of("2026-03-29T01:00:00Z"), slots(hourly, "2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z", BERLIN),
        "01:00Z is 03:00 CEST, straight after 01:00 CET");
    assertEquals(23, slotsOn(hourly, "2026-03-29", BERLIN));
    assertEquals(23, slotsOn(hourly, "2026-03-08", NEW_YORK));
    assertEquals(24, slotsOn(hourly, "2026-03-30", BERLIN));
  }

  @Test
  void hourlyAt_minuteOfTheLocalHour_inAHalfHourZone() {
    ZoneId kolkata = ZoneId.of("Asia/Kolkata"); // UTC+05:30
    assertEquals(Instant.parse("2026-12-01T10:00:00Z"), ScheduleSpec.parse("hourly at :30").next(Instant.parse("2026-12-01T09:10:00Z"), kolkata));
    assertEquals(Instant.parse("2026-12-01T09:30:00Z"), ScheduleSpec.parse("hourly").next(Instant.parse("2026-12-01T09:10:00Z"), kolkata));
    assertEquals(Instant.parse("2026-12-01T09:45:00Z"), ScheduleSpec.parse("Hourly at :45").next(Instant.parse("2026-12-01T09:10:00Z"), UTC));
  }

  @Test
  void daily_inTheSpringGap_runsTheGapsLengthLater() {
    ScheduleSpec d = ScheduleSpec.parse("daily at 02:30");
    assertEquals(List.of("2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"),
        slots(d, "2026-03-27T12:00:00Z", "2026-03-30T12:00:00Z", BERLIN), "02:30 CET; 03:30 CEST (no 02:30 that day); 02:30 CEST");
    assertEquals(Instant.parse("2026-03-08T07:30:00Z"), d.next(Instant.parse("2026-03-08T00:00:00Z"), NEW_YORK),
        "03:30 EDT");
  }

  @Test
  void daily_onTheFallBackDay_runsOnce_atTheFirstOccurrence() {
    ScheduleSpec d = ScheduleSpec.parse("daily at 02:30");
    assertEquals(List.of("2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"),
        slots(d, "2026-10-23T12:00:00Z", "2026-10-26T12:00:00Z", BERLIN), "02:30 CEST on the 25th, not again at 02:30 CET");
    assertEquals(1, slotsOn(ScheduleSpec.parse("daily at 01:30"), "2026-11-01", NEW_YORK));
    assertEquals(Instant.parse("2026-11-01T05:30:00Z"), ScheduleSpec.parse("daily at 01:30").next(Instant.parse("2026-11-01T00:00:00Z"), NEW_YORK));
  }

  @Test
  void daily_default_isLocalMidnight() {
    ScheduleSpec d = ScheduleSpec.parse("daily");
    assertEquals("daily at 00:00", d.toString());
    assertEquals(Instant.parse("2026-11-30T23:00:00Z"), d.next(Instant.parse("2026-11-30T12:00:00Z"), BERLIN));
    assertEquals(Instant.parse("2026-11-30T23:00:00Z"), d.latest(Instant.parse("2026-12-01T22:59:59Z"), BERLIN));
    assertEquals(Instant.parse("2028-02-29T23:00:00Z"), d.next(Instant.parse("2028-02-29T22:00:00Z"), BERLIN));
  }

  @Test
  void every_isAlignedToTheEpoch_andIgnoresDst() {
    ScheduleSpec q = ScheduleSpec.parse("every 15m");
    assertEquals(Instant.parse("2026-12-01T10:15:00Z"), q.next(Instant.parse("2026-12-01T10:07:13Z"), BERLIN));
    assertEquals(Instant.parse("2026-12-01T10:30:00Z"), q.next(Instant.parse("2026-12-01T10:15:00Z"), BERLIN), "strictly after");
    assertEquals(Instant.parse("2026-12-01T10:15:00Z"), q.latest(Instant.parse("2026-12-01T10:15:00Z"), BERLIN));
    ScheduleSpec two = ScheduleSpec.parse("every 2h");
    assertEquals(List.of("2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T04:00:00Z"),
        slots(two, "2026-10-24T23:00:00Z", "2026-10-25T04:00:00Z", BERLIN));
    assertEquals(Instant.parse("2026-12-01T10:00:01Z"), ScheduleSpec.parse("every 1s").next(Instant.parse("2026-12-01T10:00:00.5Z"), UTC));
  }

  @CsvSource({
      "hourly, 2026-10-25T01:59:00Z, 2026-10-25T01:00:00Z",
      "hourly, 2026-10-25T01:00:00Z, 2026-10-25T01:00:00Z",
      "hourly at :30, 2026-03-29T01:10:00Z, 2026-03-29T00:30:00Z",
      "daily at 02:30, 2026-03-29T05:00:00Z, 2026-03-29T01:30:00Z",
      "daily at 02:30, 2026-10-25T05:00:00Z, 2026-10-25T00:30:00Z",
      "every 1h, 2026-10-25T01:59:59Z, 2026-10-25T01:00:00Z"})
  @ParameterizedTest
  void latest_isTheLastSlotAtOrBefore(String spec, String notAfter, String expected) {
    assertEquals(Instant.parse(expected), ScheduleSpec.parse(spec).latest(Instant.parse(notAfter), BERLIN));
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "weekly", "hourly at 30", "hourly at :60", "daily at 24:00", "daily at 7", "every 0s",
      "every 500ms", "every soon"})
  void parse_refusesWhatItDoesNotKnow(String text) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ScheduleSpec.parse(text));
    assertTrue(e.getMessage().contains("'" + text + "'"), e.getMessage());
  }

  @Test
  void parse_normalises() {
    assertEquals("hourly", ScheduleSpec.parse(" HOURLY ").toString());
    assertEquals("hourly", ScheduleSpec.parse("hourly at :00").toString());
    assertEquals("hourly at :05", ScheduleSpec.parse("hourly at :5").toString());
    assertEquals("daily at 07:05", ScheduleSpec.parse("daily at 7:05").toString());
    assertEquals("every 15m", ScheduleSpec.parse("every  15m").toString());
    assertEquals(ScheduleSpec.DEFAULT, ScheduleSpec.parse("hourly"));
  }
}
