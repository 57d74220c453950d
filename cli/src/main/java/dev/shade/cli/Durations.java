package dev.shade.cli;

import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** Positive time spans as people write them ({@code 90s}, {@code 10m}, {@code 1h}) or ISO-8601 ({@code PT10M}). */
final class Durations implements ITypeConverter<Duration> {
  private static final Pattern SPAN = Pattern.compile("(\\d+)\\s*(ms|s|m|h|d)?", Pattern.CASE_INSENSITIVE);

  @Override
  public Duration convert(String value) {
    try {
      return parse(value);
    } catch (IllegalArgumentException e) {
      throw new TypeConversionException(e.getMessage());
    }
  }

  /** Parses a positive duration: a whole number with ms, s, m, h or d (seconds if none), or ISO-8601. */
  static Duration parse(String text) {
    String s = text == null ? "" : text.strip();
    Duration d;
    Matcher m = SPAN.matcher(s);
    if (m.matches()) {
      long n;
      try {
        n = Long.parseLong(m.group(1));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("duration too large: " + text);
      }
      String unit = m.group(2) == null ? "s" : m.group(2).toLowerCase(Locale.ROOT);
      try {
        d = switch (unit) {
          case "ms" -> Duration.ofMillis(n);
          case "s" -> Duration.ofSeconds(n);
          case "m" -> Duration.ofMinutes(n);
          case "h" -> Duration.ofHours(n);
          default -> Duration.ofDays(n);
        };
      } catch (ArithmeticException e) {
        throw new IllegalArgumentException("duration too large: " + text);
      }
    } else if (s.toUpperCase(Locale.ROOT).startsWith("P")) {
      try {
        d = Duration.parse(s);
      } catch (DateTimeParseException e) {
        throw new IllegalArgumentException("invalid ISO-8601 duration '" + text + "', e.g. PT10M");
      }
    } else {
      throw new IllegalArgumentException("invalid duration '" + text
          + "': expected a whole number with ms, s, m, h or d (e.g. 90s, 10m), or ISO-8601 (PT10M)");
    }
    if (d.isNegative() || d.isZero()) {
      throw new IllegalArgumentException("duration must be positive: " + text);
    }
    return d;
  }
}
