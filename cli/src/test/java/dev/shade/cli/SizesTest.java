package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class SizesTest {
  @ParameterizedTest
  @CsvSource({
    "0, 0",
    "4096, 4096",
    "512B, 512",
    "4K, 4096",
    "4k, 4096",
    "4KiB, 4096",
    "4kib, 4096",
    "4Ki, 4096",
    "64M, 67108864",
    "64 MiB, 67108864",
    "1.5G, 1610612736",
    "2T, 2199023255552",
    "0.5k, 512",
    "'  8M ', 8388608",
    "+1K, 1024"
  })
  void parse_acceptedForms(String text, long bytes) {
    assertEquals(bytes, Sizes.parse(text));
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
    "-5|must not be negative: -5",
    "-1G|must not be negative",
    "12Q|unknown unit 'Q'",
    "64MB|ambiguous unit in '64MB'",
    "1kb|ambiguous unit",
    "1.0001K|not a whole number of bytes",
    "99999999T|too large",
    "abc|invalid size 'abc'",
    "''|invalid size",
    "1 2|invalid size"
  })
  void parse_rejectedWithMessageNamingTheValue(String text, String message) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Sizes.parse(text));
    assertTrue(e.getMessage().contains(message), e.getMessage());
  }

  @ParameterizedTest
  @CsvSource({
    "0, 0 B",
    "1023, 1023 B",
    "1024, 1 KiB",
    "1536, 1.5 KiB",
    "67108864, 64 MiB",
    "6710886, 6.4 MiB",
    "157286400, 150 MiB",
    "1099511627776, 1 TiB",
    "9223372036854775807, 8388608 TiB"
  })
  void format_largestUnitAtLeastOne(long bytes, String text) {
    assertEquals(text, Sizes.format(bytes));
  }

  @ParameterizedTest
  @ValueSource(longs = {1, 4096, 65536, 67108864, 1L << 40})
  void format_powersOfTwoParseBack(long bytes) {
    assertEquals(bytes, Sizes.parse(Sizes.format(bytes).replace(" ", "")));
  }
}
