package dev.shade.cli;

import dev.shade.requestor.agent.ConfigSyntax;
import java.time.Duration;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** Positive time spans as people write them ({@code 90s}, {@code 10m}, {@code 1h}) or ISO-8601 ({@code PT10M}). */
final class Durations implements ITypeConverter<Duration> {
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
    return ConfigSyntax.duration(text);
  }
}
