package dev.shade.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.testing.Tools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code shade bench backup} end to end on a small volume: a real agent, nbdcopy, nbdkit, tar and
 * zstd; its output is under test, not the figures.
 */
class BenchBackupCommandTest {
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
  @Timeout(value = 300, unit = TimeUnit.SECONDS)
  void backup_smallRun_reportsEveryRatioWithItsTwoFiguresAndCleansUp() throws Exception {
    Tools.require("nbdcopy", "libnbd-bin");
    Tools.require("nbdkit", "nbdkit");
    Tools.require("zstd", "zstd");
    Tools.require("tar", "tar");
    BenchCli.Result r = BenchCli.run("bench", "backup", "--size", "64M", "--rounds", "1", "--json").ok();

    JsonNode doc = r.json();
    JsonNode ratios = doc.path("ratios");
    Map<String, List<String>> figures = Map.of(
        "full_vs_nbdcopy", List.of("full_backup_mib_s", "nbdcopy_mib_s"),
        "incr1pct_vs_full", List.of("incremental_s", "full_backup_s"),
        "restore_chain24_vs_full", List.of("restore_chain24_s", "restore_full_s"),
        "restore_vs_full_backup", List.of("restore_mib_s", "full_backup_mib_s"),
        "prod_cpu_vs_tar", List.of("agent_cpu_s", "tar_zstd_cpu_s"),
        "prod_cpu_vs_nbdkit", List.of("agent_cpu_s", "nbdkit_cpu_s"));
    assertEquals(figures.keySet(), toSet(ratios.fieldNames()), r::toString);
    for (Map.Entry<String, List<String>> e : figures.entrySet()) {
      JsonNode q = ratios.path(e.getKey());
      for (String k : List.of("min", "median", "max")) {
        assertTrue(q.path(k).isNumber(), e.getKey() + "." + k + ": " + q);
      }
      assertTrue(q.path("min").asDouble() <= q.path("median").asDouble()
          && q.path("median").asDouble() <= q.path("max").asDouble(), q::toString);
      assertTrue(q.path("target").asText().matches("[<>]= [0-9.]+"), q::toString);
      assertTrue(q.path("target_met").isBoolean(), q::toString);
      assertEquals(1, q.path("per_round").size(), q::toString);
      for (String f : e.getValue()) {
        // CPU seconds of a 64 MiB run may round to 0 (1/100 s ticks); times and rates may not
        if (f.endsWith("_cpu_s")) {
          assertTrue(q.path(f).path("median").asDouble(-1) >= 0, e.getKey() + "." + f + ": " + q);
        } else {
          assertTrue(q.path(f).path("median").asDouble() > 0, e.getKey() + "." + f + ": " + q);
        }
      }
    }
    assertTrue(doc.path("all_targets_met").isBoolean(), r::toString);
    JsonNode round = doc.path("per_round").path(0);
    assertEquals(24, round.path("restore_chain_length").asInt(), r::toString);
    assertTrue(round.path("bytes_read").asLong() > 0 && round.path("bytes_read").asLong() < (64L << 20),
        "holes are not read: " + round);
    assertTrue(round.path("tar_zstd_bytes").asLong() < round.path("bytes_read").asLong(), "the data compresses: " + round);
    JsonNode layout = doc.path("volume_layout_bytes");
    for (String kind : List.of("database_pages", "text", "blobs", "holes")) {
      assertTrue(layout.path(kind).asLong() > 0, kind + ": " + layout);
    }
    assertEquals(BackupBench.changedBlocks(new BackupBench.Settings(tmp, 64L << 20, 1, 65536, 65536)),
        doc.path("changed_blocks_per_incremental").asInt(), r::toString);
    assertTrue(r.errLines().stream().allMatch(l -> l.startsWith("bench: ")), r::toString);
    assertTrue(r.errLines().stream().anyMatch(l -> l.startsWith("bench: round 1/1: full backup: ")), r::toString);
    try (Stream<Path> left = Files.list(tmp)) {
      assertEquals(List.of(), left.toList(), "the work directory is deleted");
    }
  }

  @Test
  void help_showsDefaultsAndExamples() {
    BenchCli.Result r = BenchCli.run("bench", "backup", "--help").ok();
    assertTrue(r.out().contains("Default: 2G") && r.out().contains("Default: 3") && r.out().contains("Default: 64K"),
        r::toString);
    assertTrue(r.out().contains("Examples:\n  shade bench backup\n"), r::toString);
  }

  @Test
  void backup_zeroRounds_isUsageError() {
    BenchCli.Result r = BenchCli.run("bench", "backup", "--rounds", "0");
    assertEquals(2, r.code(), r::toString);
    assertTrue(r.err().contains("--rounds must be from 1 to 100: 0"), r::toString);
  }

  @Test
  void backup_unknownCompression_isUsageError() {
    for (String bad : java.util.List.of("lz4", "zstd:0", "zstd:20")) {
      BenchCli.Result r = BenchCli.run("bench", "backup", "--compress", bad);
      assertEquals(2, r.code(), r::toString);
      assertTrue(r.err().contains("--compress must be none, zstd or zstd:LEVEL (1..19): " + bad), r::toString);
    }
  }

  @Test
  void childrenCpu_readsTheSecondLineOfTimes() throws Exception {
    assertEquals(63.75, BackupBench.childrenCpu("0m0.010s 0m0.005s\n1m2.500s 0m1.250s\n"), 1e-9);
  }

  private static java.util.Set<String> toSet(java.util.Iterator<String> it) {
    java.util.Set<String> s = new java.util.HashSet<>();
    it.forEachRemaining(s::add);
    return s;
  }
}
