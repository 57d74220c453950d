package dev.shade.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.testing.Tools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code shade bench client} on a small export and one run: its output is under test, not the figures. */
class BenchClientCommandTest {
  @TempDir Path tmp;

  @BeforeEach
  void workInTmp() {
    System.setProperty("shade.bench.client.dir", tmp.toString());
  }

  @AfterEach
  void restore() {
    System.clearProperty("shade.bench.client.dir");
  }

  @Test
  @Timeout(value = 60, unit = TimeUnit.SECONDS)
  void client_smallRun_jsonHasBothSidesAndBothRatios() throws Exception {
    Tools.require("nbdkit", "nbdkit", "nbdcopy", "libnbd-bin");
    BenchCli.Result r = BenchCli.run("bench", "client", "--json", "--size", "8M", "--runs", "2", "--connections", "2").ok();

    JsonNode doc = r.json();
    for (String side : List.of("nbdcopy_mib_s", "shade_mib_s")) {
      JsonNode m = doc.path(side);
      assertEquals(2, m.path("runs").size(), side + ": " + r);
      assertTrue(m.path("min").asDouble() > 0 && m.path("min").asDouble() <= m.path("median").asDouble()
          && m.path("median").asDouble() <= m.path("max").asDouble(), side + ": " + r);
    }
    assertTrue(doc.path("ratio_paired_median").asDouble() > 0 && doc.path("ratio_of_medians").asDouble() > 0, r::toString);
    assertEquals(2, doc.path("ratio_per_pair").size(), r::toString);
    assertTrue(doc.path("target_met").isBoolean(), r::toString);
    assertEquals(8 << 20, doc.path("bytes").asLong(), r::toString);
    assertEquals(2, doc.path("connections").asInt(), r::toString);
    assertTrue(doc.path("nbdcopy_command").asText().startsWith("nbdcopy -C 2 --request-size=262144 -R 64 "), r::toString);
    // two warm-up lines and two run lines, at least
    assertTrue(r.errLines().stream().filter(l -> l.startsWith("bench: run ")).count() == 2, r::toString);
    assertTrue(r.errLines().stream().allMatch(l -> l.startsWith("bench: ")), r::toString);
    try (Stream<Path> left = Files.list(tmp)) {
      assertEquals(List.of(), left.toList(), "the work directory is deleted");
    }
  }

  @Test
  @Timeout(value = 60, unit = TimeUnit.SECONDS)
  void client_withoutJson_printsRows() {
    Tools.require("nbdkit", "nbdkit", "nbdcopy", "libnbd-bin");
    BenchCli.Result r = BenchCli.run("bench", "client", "--size", "4M", "--runs", "1", "--connections", "1").ok();
    assertTrue(r.out().lines().anyMatch(l -> l.matches("ratio_paired_median +\\d+\\.\\d+")), r::toString);
    assertTrue(r.out().lines().anyMatch(l -> l.matches("shade_mib_s\\.median +\\d+\\.\\d+")), r::toString);
    assertTrue(r.out().lines().anyMatch(l -> l.matches("target_met +(true|false)")), r::toString);
  }

  @Test
  void client_zeroRuns_isUsageError() {
    BenchCli.Result r = BenchCli.run("bench", "client", "--runs", "0");
    assertEquals(2, r.code(), r::toString);
    assertEquals(List.of("shade bench client: --runs must be from 1 to 1000: 0 (see 'shade bench client --help')"),
        r.errLines(), r::toString);
    assertEquals("", r.out());
  }

  @Test
  void client_sizeBelowOneMib_isUsageError() {
    BenchCli.Result r = BenchCli.run("bench", "client", "--size", "4K");
    assertEquals(2, r.code(), r::toString);
    assertTrue(r.err().contains("--size must be a whole number of MiB, at least 1M: 4096"), r::toString);
  }

  @Test
  void help_showsDefaultsAndExamples() {
    BenchCli.Result r = BenchCli.run("bench", "client", "--help").ok();
    assertTrue(r.out().contains("Default: 1G") && r.out().contains("Default: 5") && r.out().contains("Default: 4"), r::toString);
    assertTrue(r.out().contains("Exit codes:") && r.out().contains("Examples:\n  shade bench client\n"), r::toString);
  }

  @Test
  void byteSize_unitsArePowersOf1024() {
    assertEquals(1L << 30, ByteSize.parse("1G"));
    assertEquals(256L << 20, ByteSize.parse("256MiB"));
    assertEquals(64L << 10, ByteSize.parse("64k"));
    assertEquals(4096, ByteSize.parse("4096"));
    assertEquals("1 GiB", ByteSize.format(1L << 30));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ByteSize.parse("1.5G"));
    assertTrue(e.getMessage().contains("'1.5G'"), e::getMessage);
    assertThrows(IllegalArgumentException.class, () -> ByteSize.parse("-1M"));
    assertThrows(IllegalArgumentException.class, () -> ByteSize.parse("99999999999999T"));
  }
}
