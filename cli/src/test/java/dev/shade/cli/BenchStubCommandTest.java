package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** {@code shade bench} in the product jar, which holds no benchmarks. */
class BenchStubCommandTest {
  @Test
  void bench_inProductJar_failsSayingWhereTheBenchmarksAre() {
    Cli.Result r = Cli.run("bench", "cow", "--json");
    assertEquals(1, r.code(), r::toString);
    assertEquals("shade bench: the benchmarks are not in this jar: run 'bin/shade bench cow --json' from the source "
        + "tree, which builds and runs bench/target/shade-bench.jar", String.join("\n", r.errLines()), r::toString);
    assertEquals("", r.out());
  }

  @Test
  void help_listsBenchAsProvidedByTheBenchJar() {
    Cli.Result r = Cli.run("--help").ok();
    assertTrue(r.out().lines().anyMatch(l -> l.matches("  bench +Measure shade on this machine \\(in the bench jar.*")),
        r::toString);
    Cli.Result bench = Cli.run("bench", "--help").ok();
    assertTrue(bench.out().contains("bench/target/shade-bench.jar"), bench::toString);
  }

  @Test
  void noBenchmarkClassesInTheProductClassPath() {
    for (String name : new String[] {"dev.shade.bench.BenchCommand", "dev.shade.cli.bench.CowBench", "org.HdrHistogram.Histogram"}) {
      assertTrue(Shade.class.getClassLoader().getResource(name.replace('.', '/') + ".class") == null, name);
    }
  }
}
