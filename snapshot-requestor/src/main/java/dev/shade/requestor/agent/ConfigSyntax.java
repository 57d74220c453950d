package dev.shade.requestor.agent;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The values operators write in the agent's config file and on the command line alike: TCP
 * addresses and time spans, parsed one way in both places. Failures are
 * {@link IllegalArgumentException}s whose message names the text and what was expected.
 */
public final class ConfigSyntax {
  /*
   * A bare IPv6 literal such as ::1:10809 is refused: the port cannot be told from the last
   * group of the address, so it must be written [::1]:10809 as in URIs.
   */
  private static final Pattern BRACKETED = Pattern.compile("\\[([0-9A-Fa-f:.%\\w]+)]:(\\S*)");
  private static final Pattern PLAIN = Pattern.compile("([^:\\s\\[\\]]+):(\\S*)");
  private static final Pattern SPAN = Pattern.compile("(\\d+)\\s*(ms|s|m|h|d)?", Pattern.CASE_INSENSITIVE);

  private ConfigSyntax() {}

  /** Parses and resolves {@code HOST:PORT} or {@code [IPv6]:PORT}; port 0 means any free port. */
  public static InetSocketAddress hostPort(String text) {
    String s = text == null ? "" : text.strip();
    Matcher m = BRACKETED.matcher(s);
    if (!m.matches()) {
      m = PLAIN.matcher(s);
    }
    if (!m.matches()) {
      throw new IllegalArgumentException("invalid address '" + text
          + "': expected HOST:PORT, e.g. 127.0.0.1:10809 or [::1]:10809");
    }
    String host = m.group(1);
    String digits = m.group(2);
    if (!digits.matches("\\d{1,5}") || Integer.parseInt(digits) > 65535) {
      throw new IllegalArgumentException("invalid port '" + digits + "' in address '" + text
          + "': expected 0 to 65535 (0 picks a free port)");
    }
    try {
      return new InetSocketAddress(InetAddress.getByName(host), Integer.parseInt(digits));
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException("cannot resolve host '" + host + "' of address '" + text + "'");
    }
  }

  /** Parses a positive duration: a whole number with ms, s, m, h or d (seconds if none), or ISO-8601. */
  public static Duration duration(String text) {
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
