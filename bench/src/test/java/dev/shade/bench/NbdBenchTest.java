package dev.shade.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.testing.Tools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The NBD benchmark on the smallest exports and shortest jobs: its output and its skipping are under test, not the figures. */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class NbdBenchTest {
  private static final long MIB = 1L << 20;

  @TempDir Path tmp;

  @Test
  @SuppressWarnings("unchecked")
  void run_smallExports_measuresEveryJobAndSkipsTargetsWithoutTools() throws Exception {
    Tools.require("fio", "fio", "qemu-nbd", "qemu-utils");
    Programs.Lookup withoutNbdkit = p -> p.equals("nbdkit") ? Optional.empty() : Programs.Lookup.onPath().find(p);
    NbdBench.Settings s = new NbdBench.Settings(tmp, 16 * MIB, 1, 1, Set.of(
        NbdTestbed.NBDKIT_FILE, NbdTestbed.QEMU_NBD_RAW, NbdTestbed.SHADE_ORIGIN, NbdTestbed.SHADE_SNAPSHOT), "io_uring");
    List<String> progress = new ArrayList<>();

    Map<String, Object> results = NbdBench.run(s, withoutNbdkit, progress::add);

    Map<String, Object> jobs = (Map<String, Object>) results.get("jobs");
    assertEquals(List.of("seqwrite", "randwrite", "randread", "seqread"), List.copyOf(jobs.keySet()));
    for (String name : jobs.keySet()) {
      Map<String, Object> job = (Map<String, Object>) jobs.get(name);
      assertTrue(((Number) job.get("shade_mibs")).doubleValue() > 0, name + ": " + job);
      assertTrue(((Number) job.get("vs_qemu_nbd_raw")).doubleValue() > 0, name + ": " + job);
      assertNull(job.get("vs_nbdkit_file"), "no nbdkit, no ratio: " + job);
      Map<String, Object> targets = (Map<String, Object>) job.get("targets");
      assertEquals(List.of("nbdkit_file", "qemu_nbd_raw", "shade_origin", "shade_snapshot"), List.copyOf(targets.keySet()));
      Map<String, Object> nbdkit = (Map<String, Object>) targets.get("nbdkit_file");
      assertTrue(String.valueOf(nbdkit.get("skipped")).startsWith("nbdkit not installed"), nbdkit::toString);
      Map<String, Object> snapshot = (Map<String, Object>) targets.get("shade_snapshot");
      if (name.endsWith("write")) {
        assertEquals("read-only export: read jobs only", snapshot.get("skipped"), name);
      } else {
        Map<String, Object> mibs = (Map<String, Object>) snapshot.get("mibs");
        assertTrue(((Number) mibs.get("median")).doubleValue() > 0, name + ": " + snapshot);
        assertTrue(job.containsKey("snapshot_vs_qcow2_chain8"), job::toString);
        assertNull(job.get("snapshot_vs_qcow2_chain8"), "no qcow2 chain measured, no ratio: " + job);
      }
    }
    Map<String, Object> env = (Map<String, Object>) results.get("environment");
    assertEquals(16 * MIB, ((Number) env.get("export_bytes")).longValue());
    assertTrue(String.valueOf(env.get("cache")).contains("--cache=writeback"), env::toString);

    List<String> table = NbdBench.table(results);
    assertTrue(table.stream().anyMatch(l -> l.matches("randread +shade_snapshot +\\d+\\.\\d .*")), () -> String.join("\n", table));
    assertTrue(table.stream().anyMatch(l -> l.matches("seqwrite +nbdkit_file +skipped: nbdkit not installed.*")),
        () -> String.join("\n", table));
    assertTrue(progress.stream().anyMatch(l -> l.startsWith("round 1/1 seqread")), progress::toString);
    try (Stream<Path> left = Files.list(tmp)) {
      assertEquals(List.of(), left.toList(), "the work directory is deleted");
    }
  }

  @Test
  void run_withoutFio_failsNamingIt() {
    Programs.Lookup none = p -> Optional.empty();
    NbdBench.Settings s = new NbdBench.Settings(tmp, 16 * MIB, 1, 1, Set.copyOf(NbdTestbed.ALL), "io_uring");
    IOException e = assertThrows(IOException.class, () -> NbdBench.run(s, none, line -> {}));
    assertTrue(e.getMessage().startsWith("fio is not installed"), e::getMessage);
  }

  @Test
  void settings_unknownTarget_isRefusedNamingTheChoices() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> new NbdBench.Settings(tmp, 16 * MIB, 1, 1, Set.of("qemu_nbd_vmdk"), "io_uring"));
    assertTrue(e.getMessage().contains("qemu_nbd_vmdk") && e.getMessage().contains("shade_origin_snap8"), e::getMessage);
  }

  @Test
  void median_oddAndEvenCounts() {
    assertEquals(2.0, NbdBench.median(List.of(3.0, 1.0, 2.0)));
    assertEquals(2.5, NbdBench.median(List.of(4.0, 1.0, 3.0, 2.0)));
  }
}
