package dev.shade.bench;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * Byte counts of the bench options as people write them: {@code 256M}, {@code 1G}, {@code 1GiB}
 * or plain bytes; every unit is a power of 1024 (as in the product's {@code --size}).
 *
 * <p>Thread-safe: stateless.
 */
final class ByteSize implements ITypeConverter<Long> {
  /**
   * A whole number and an optional unit: B, or K, M, G or T, each optionally followed by i or iB
   * (upper-cased first). "KB", "MB"... are refused rather than guessed, as the product does: dd and
   * others read them as powers of 1000.
   */
  private static final Pattern SIZE = Pattern.compile("(\\d{1,15})\\s*(?:([KMGT])(?:IB|I)?|B)?");

  @Override
  public Long convert(String value) {
    try {
      return parse(value);
    } catch (IllegalArgumentException e) {
      throw new TypeConversionException(e.getMessage());
    }
  }

  /** Parses {@code text} as a byte count; refuses decimals, negatives and units other than K, M, G, T. */
  static long parse(String text) {
    Matcher m = SIZE.matcher(text == null ? "" : text.strip().toUpperCase(Locale.ROOT));
    if (!m.matches()) {
      throw new IllegalArgumentException("invalid size '" + text
          + "': expected bytes or a whole number with K, M, G or T (powers of 1024), e.g. 256M");
    }
    long n = Long.parseLong(m.group(1));
    int power = m.group(2) == null ? 0 : "KMGT".indexOf(m.group(2)) + 1;
    if (n > (Long.MAX_VALUE >> (10 * power))) {
      throw new IllegalArgumentException("size too large: " + text);
    }
    return n << (10 * power);
  }

  /** {@code bytes} in the largest unit that divides it: {@code 1 GiB}, {@code 256 MiB}, {@code 4097 B}. */
  static String format(long bytes) {
    String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    long v = bytes;
    while (u < units.length - 1 && v != 0 && v % 1024 == 0) {
      v /= 1024;
      u++;
    }
    return v + " " + units[u];
  }
}
