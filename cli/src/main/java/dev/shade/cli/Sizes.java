package dev.shade.cli;

import java.math.BigDecimal;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** Byte counts as people write them ({@code 64M}, {@code 1.5GiB}) and as shade prints them. */
final class Sizes implements ITypeConverter<Long> {
  /*
   * Every unit is a power of 1024, whatever its spelling: K, Ki, KiB (any case). "KB", "MB"...
   * are refused rather than guessed, because dd and others read them as powers of 1000 and a
   * volume that is 5% smaller than intended is worse than an error message.
   */

  private static final Pattern SIZE =
      Pattern.compile("([+-]?)(\\d+(?:\\.\\d+)?|\\.\\d+)\\s*([a-z]*)", Pattern.CASE_INSENSITIVE);
  private static final String UNITS = "KMGT";
  private static final String[] NAMES = {"B", "KiB", "MiB", "GiB", "TiB"};

  @Override
  public Long convert(String value) {
    try {
      return parse(value);
    } catch (IllegalArgumentException e) {
      throw new TypeConversionException(e.getMessage());
    }
  }

  /** Parses a non-negative byte count: plain bytes, or a number with a K/M/G/T unit. */
  static long parse(String text) {
    String s = text == null ? "" : text.strip();
    Matcher m = SIZE.matcher(s);
    if (!m.matches()) {
      throw new IllegalArgumentException("invalid size '" + text
          + "': expected bytes or a number with K, M, G or T (powers of 1024), e.g. 64M");
    }
    if (m.group(1).equals("-")) {
      throw new IllegalArgumentException("size must not be negative: " + text);
    }
    int power = unitPower(m.group(3), text);
    BigDecimal bytes = new BigDecimal(m.group(2)).multiply(BigDecimal.valueOf(1024).pow(power));
    try {
      return bytes.longValueExact();
    } catch (ArithmeticException e) {
      throw new IllegalArgumentException(bytes.signum() > 0 && bytes.stripTrailingZeros().scale() <= 0
          ? "size too large: " + text
          : "size is not a whole number of bytes: " + text);
    }
  }

  private static int unitPower(String unit, String text) {
    String u = unit.toUpperCase(Locale.ROOT);
    if (u.isEmpty() || u.equals("B")) {
      return 0;
    }
    int power = UNITS.indexOf(u.charAt(0)) + 1;
    String rest = u.substring(1);
    if (power > 0 && (rest.isEmpty() || rest.equals("I") || rest.equals("IB"))) {
      return power;
    }
    if (power > 0 && rest.equals("B")) {
      throw new IllegalArgumentException("ambiguous unit in '" + text + "': write " + u.charAt(0)
          + " or " + u.charAt(0) + "iB (shade sizes are powers of 1024)");
    }
    throw new IllegalArgumentException("unknown unit '" + unit + "' in size '" + text
        + "': use K, M, G or T (powers of 1024), e.g. 64M");
  }

  /** {@code bytes} in the largest binary unit that keeps it at least 1, e.g. {@code 6.4 MiB}. */
  static String format(long bytes) {
    if (bytes < 1024) {
      return bytes + " B";
    }
    int unit = Math.min(NAMES.length - 1, (63 - Long.numberOfLeadingZeros(bytes)) / 10);
    double value = bytes / (double) (1L << (10 * unit));
    String number = value == Math.rint(value) || value >= 100
        ? String.format(Locale.ROOT, "%.0f", value)
        : String.format(Locale.ROOT, "%.1f", value);
    return number + " " + NAMES[unit];
  }
}
