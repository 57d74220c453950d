package dev.shade.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BenchCommandTest {
  /** The smallest run of the benchmark: the command's output is under test, not the figures. */
  private static final Map<String, String> SMALL = Map.of(
      "shade.bench.mib", "1", "shade.bench.rounds", "1", "shade.bench.creates", "3");

  @TempDir Path tmp;

  @BeforeEach
  void smallRun() {
    SMALL.forEach(System::setProperty);
    System.setProperty("shade.bench.dir", tmp.toString());
  }

  @AfterEach
  void restore() {
    SMALL.keySet().forEach(System::clearProperty);
    System.clearProperty("shade.bench.dir");
  }

  @Test
  void cow_jsonIsOneObjectAndProgressGoesToStderr() {
    BenchCli.Result r = BenchCli.run("bench", "cow", "--json").ok();
    JsonNode results = r.json();
    assertTrue(results.isObject() && results.has("elapsed_s"), r::toString);
    assertTrue(r.errLines().stream().allMatch(l -> l.startsWith("bench: ")), r::toString);
    assertTrue(r.errLines().size() >= 2, r::toString);
  }

  @Test
  void cow_tableFlattensNestedResults() {
    BenchCli.Result r = BenchCli.run("bench", "cow").ok();
    assertTrue(r.out().lines().anyMatch(l -> l.matches("targets_met\\.\\w+ +(true|false)")), r::toString);
    assertTrue(r.out().lines().anyMatch(l -> l.startsWith("elapsed_s ")), r::toString);
  }

  @Test
  void bench_alone_isUsageErrorNamingTheBenchmarks() {
    BenchCli.Result r = BenchCli.run("bench");
    assertEquals(2, r.code(), r::toString);
    assertEquals(List.of("shade bench: missing command: choose one of cow, nbd, client, agent, freeze, backup (see 'shade bench --help')"),
        r.errLines(), r::toString);
  }

  @Test
  void help_benchIsTheRealCommandAndTheOthersKeepTheirPlace() {
    BenchCli.Result r = BenchCli.run("--help").ok();
    List<String> commands = r.out().lines().filter(l -> l.matches("  [a-z]+ {2,}.*")).map(l -> l.strip().split(" ")[0]).toList();
    // the product's command tree, in its order, with the real bench in place of the stub
    List<String> product = new java.util.ArrayList<>(new picocli.CommandLine(new dev.shade.cli.Shade()).getSubcommands().keySet());
    assertTrue(product.contains("bench") && product.contains("snapshot"), product::toString);
    assertEquals(product, commands, r::toString);
    assertTrue(r.out().lines().anyMatch(l -> l.matches("  bench +Measure shade on this machine\\.")), r::toString);
    BenchCli.Result bench = BenchCli.run("bench", "--help").ok();
    assertTrue(bench.out().startsWith("Measure shade on this machine."), bench::toString);
    assertTrue(bench.out().contains("Exit codes:"), bench::toString);
    for (String command : List.of("cow", "nbd", "client", "agent", "freeze")) {
      assertTrue(bench.out().contains("  " + command + " "), bench::toString);
    }
  }
}
