package dev.shade.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.testing.Tools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code shade bench agent} on the smallest volume and shortest phases: its output is under test, not the figures. */
class BenchAgentCommandTest {
  @TempDir Path tmp;

  @BeforeEach
  void workInTmp() {
    System.setProperty("shade.bench.dir", tmp.toString());
  }

  @AfterEach
  void restore() {
    System.clearProperty("shade.bench.dir");
  }

  @Test
  @Timeout(value = 60, unit = TimeUnit.SECONDS)
  void agent_smallRun_timesEverySnapshotIdleAndUnderLoadAndCleansUp() throws Exception {
    Tools.require("fio", "fio");
    BenchCli.Result r = BenchCli.run("bench", "agent", "--json", "--size", "16M", "--snapshots", "3", "--seconds", "2").ok();

    JsonNode doc = r.json();
    for (String phase : List.of("create_under_load_ms", "create_idle_ms")) {
      JsonNode h = doc.path(phase);
      assertEquals(3, h.path("count").asInt(), phase + ": " + r);
      for (String key : List.of("p50", "p90", "p99", "max")) {
        assertTrue(h.path(key).asDouble() > 0, phase + "." + key + ": " + r);
      }
      assertTrue(h.path("p50").asDouble() <= h.path("p99").asDouble() && h.path("p99").asDouble() <= h.path("max").asDouble(),
          phase + ": " + r);
    }
    JsonNode iops = doc.path("fio_write_iops");
    for (String key : List.of("without_snapshots_before", "with_snapshots", "without_snapshots_after", "with_vs_without")) {
      assertTrue(iops.path(key).asDouble() > 0, key + ": " + r);
    }
    assertTrue(doc.path("target_met").isBoolean(), r::toString);
    assertEquals(false, doc.path("create_under_load_truncated").asBoolean(true), r::toString);
    // 10 warm-up + 3 idle + 3 under load, all deleted: the oldest beyond 8 as it goes, the rest before each fio alone
    assertEquals(AgentBench.WARMUP + 6, doc.path("snapshots_deleted").asInt(), r::toString);
    assertEquals(0, doc.path("fio_fsync_every").asInt(-1), r::toString);
    assertTrue(doc.path("agent").asText().contains("dev.shade.cli.Shade agent "), r::toString);
    assertTrue(r.errLines().stream().allMatch(l -> l.startsWith("bench: ")), r::toString);
    assertTrue(r.errLines().stream().anyMatch(l -> l.startsWith("bench: fio with snapshots: ")), r::toString);
    try (Stream<Path> left = Files.list(tmp)) {
      assertEquals(List.of(), left.toList(), "the work directory is deleted");
    }
  }

  @Test
  void table_showsEveryPhase() {
    Map<String, Object> h = new LinkedHashMap<>();
    h.put("p50", 1.0);
    h.put("p90", 2.0);
    h.put("p99", 3.0);
    h.put("max", 4.0);
    h.put("count", 5);
    Map<String, Object> f = new LinkedHashMap<>();
    f.put("without_snapshots_before", 100);
    f.put("with_snapshots", 90);
    f.put("without_snapshots_after", 110);
    f.put("with_vs_without", 0.857);
    Map<String, Object> r = new LinkedHashMap<>();
    for (String k : List.of("create_under_load_ms", "create_idle_ms", "delete_under_load_ms")) {
      r.put(k, h);
    }
    for (String k : List.of("fio_write_iops", "fio_write_p50_ms", "fio_write_p99_ms", "fio_write_max_ms")) {
      r.put(k, f);
    }
    r.put("target_met", true);
    List<String> lines = AgentBench.table(r);
    assertTrue(lines.stream().anyMatch(l -> l.matches("under load +1\\.0 +2\\.0 +3\\.0 +4\\.0 +5")), lines::toString);
    assertTrue(lines.stream().anyMatch(l -> l.matches("IOPS +100 +90 +110")), lines::toString);
    assertTrue(lines.contains("target_met: true") && lines.contains("fio_write_iops.with_vs_without: 0.857"), lines::toString);
  }

  @Test
  void agent_noSnapshots_isUsageError() {
    BenchCli.Result r = BenchCli.run("bench", "agent", "--snapshots", "0");
    assertEquals(2, r.code(), r::toString);
    assertEquals(List.of("shade bench agent: --snapshots must be from 1 to 100000: 0 (see 'shade bench agent --help')"),
        r.errLines(), r::toString);
    assertEquals("", r.out());
  }

  @Test
  void agent_sizeNotWholeMib_isUsageError() {
    BenchCli.Result r = BenchCli.run("bench", "agent", "--size", "20000K");
    assertEquals(2, r.code(), r::toString);
    assertTrue(r.err().contains("--size must be a whole number of MiB, at least 16M: 20480000"), r::toString);
  }

  @Test
  void agent_sizeWithDecimalUnit_isUsageErrorNamingTheUnits() {
    BenchCli.Result r = BenchCli.run("bench", "agent", "--size", "256MB");
    assertEquals(2, r.code(), r::toString);
    assertTrue(r.err().contains("invalid size '256MB'") && r.err().contains("powers of 1024"), r::toString);
  }

  @Test
  void help_showsDefaultsAndExamples() {
    BenchCli.Result r = BenchCli.run("bench", "agent", "--help").ok();
    assertTrue(r.out().contains("Default: 100") && r.out().contains("Default: 256M") && r.out().contains("Default: 20"), r::toString);
    assertTrue(r.out().contains("Exit codes:") && r.out().contains("Examples:\n  shade bench agent\n"), r::toString);
  }
}
