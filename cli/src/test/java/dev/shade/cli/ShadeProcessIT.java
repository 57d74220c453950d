package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs {@code bin/shade} as a real process on the packaged jar, as an operator would. */
class ShadeProcessIT {
  /** bin/shade of this source tree. */
  private static Path script;
  /** The jar the build just packaged; bin/shade runs it as it is (SHADE_JAR). */
  private static Path jar;

  @TempDir Path tmp;

  @BeforeAll
  static void locate() {
    String repo = System.getProperty("shade.repo");
    String jarPath = System.getProperty("shade.jar");
    assumeTrue(repo != null && jarPath != null, "runs under Maven failsafe, which names the jar and the repository");
    script = Path.of(repo, "bin", "shade").toAbsolutePath().normalize();
    jar = Path.of(jarPath);
    assertTrue(Files.isRegularFile(jar), "the jar is packaged before integration tests: " + jar);
  }

  /** What one process did. */
  record Run(int code, String out, String err) {
    List<String> errLines() {
      return err.lines().filter(l -> !l.isBlank()).toList();
    }
  }

  /** Runs bin/shade with {@code args}, stdin closed, {@code env} added to the environment. */
  private Run shade(Map<String, String> env, Object... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(script.toString());
    Arrays.stream(args).map(String::valueOf).forEach(command::add);
    ProcessBuilder pb = new ProcessBuilder(command).directory(tmp.toFile());
    pb.environment().put("SHADE_JAR", jar.toString());
    pb.environment().remove("SHADE_DEBUG");
    pb.environment().putAll(env);
    pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    Path out = tmp.resolve("stdout.txt");
    Path err = tmp.resolve("stderr.txt");
    pb.redirectOutput(out.toFile()).redirectError(err.toFile());
    Process p = pb.start();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "shade finished within 60 s: " + command);
    return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
        Files.readString(err, StandardCharsets.UTF_8));
  }

  private Run shade(Object... args) throws IOException, InterruptedException {
    return shade(Map.of(), args);
  }

  @Test
  void version_fromTheJarManifest() throws Exception {
    Run r = shade("--version");
    assertEquals(0, r.code(), r::toString);
    assertTrue(r.out().matches("shade \\d+\\.\\d+\\.\\d+.*\\R"), r::toString);
  }

  @Test
  void usageError_exitTwoWithOneLineAndNoStackTrace() throws Exception {
    Run r = shade("volume", "create", tmp.resolve("v"), "--size", "12Q");
    assertEquals(2, r.code(), r::toString);
    assertEquals(1, r.errLines().size(), r::toString);
    assertTrue(r.err().contains("unknown unit 'Q'"), r::toString);
    assertEquals("", r.out());
    assertFalse(Files.exists(tmp.resolve("v")));
  }

  @Test
  void jsonCommands_printOnlyJsonOnStdout() throws Exception {
    Path v = tmp.resolve("v");
    assertEquals(0, shade("volume", "create", v, "--size", "1M", "--block-size", "4K").code());
    Files.write(tmp.resolve("d.bin"), TestVolumes.random(1, 65536));
    assertEquals(0, shade("volume", "import", v, "d.bin").code(), "relative FILE against the working directory");
    Run created = shade("snapshot", "create", v, "--name", "a", "--json");
    assertEquals(0, created.code(), created::toString);
    assertEquals("a", Cli.JSON.readTree(created.out()).get("snapshots").get(0).get("name").asText());
    Run list = shade("snapshot", "list", v, "--json");
    JsonNode array = Cli.JSON.readTree(list.out());
    assertEquals(1, array.size(), list::toString);
    assertEquals("", list.err());
  }

  @Test
  void revert_withStdinClosedAndNoYesRefuses() throws Exception {
    Path v = tmp.resolve("v");
    assertEquals(0, shade("volume", "create", v, "--size", "1M").code());
    assertEquals(0, shade("snapshot", "create", v).code());
    Run r = shade("volume", "revert", v, "s1");
    assertEquals(1, r.code(), r::toString);
    assertEquals(1, r.errLines().size(), r::toString);
    assertTrue(r.err().contains("pass --yes"), r::toString);
  }

  @Test
  void failure_stackTraceOnlyWithShadeDebug() throws Exception {
    Run plain = shade("snapshot", "list", tmp.resolve("nope"));
    assertEquals(1, plain.code());
    assertEquals(1, plain.errLines().size(), plain::toString);
    Run debug = shade(Map.of("SHADE_DEBUG", "1"), "snapshot", "list", tmp.resolve("nope"));
    assertEquals(1, debug.code());
    assertEquals(plain.errLines().get(0), debug.errLines().get(0));
    assertTrue(debug.err().contains("\tat dev.shade.cli."), debug::toString);
  }

  @Test
  void snapshotDeletedForSpace_isLoggedAsWarning() throws Exception {
    Path v = tmp.resolve("v");
    assertEquals(0, shade("volume", "create", v, "--size", "1M", "--block-size", "4K", "--diff-max", "64K").code());
    Files.write(tmp.resolve("d.bin"), TestVolumes.random(2, 1 << 20));
    assertEquals(0, shade("volume", "import", v, "d.bin").code());
    assertEquals(0, shade("snapshot", "create", v, "--name", "old").code());
    Run r = shade("volume", "import", v, "d.bin");
    assertEquals(0, r.code(), "production writes never fail because of snapshots: " + r);
    assertTrue(r.err().contains("WARN") && r.err().contains("'old'"), r::toString);
    assertEquals("[ ]", shade("snapshot", "list", v, "--json").out().strip());
  }

  @Test
  void productJar_holdsNoBenchmarkOrHdrHistogram() throws Exception {
    try (java.util.jar.JarFile j = new java.util.jar.JarFile(jar.toFile())) {
      List<String> bench = j.stream().map(java.util.jar.JarEntry::getName)
          .filter(n -> n.startsWith("dev/shade/bench/") || n.startsWith("dev/shade/cli/bench/") || n.startsWith("org/HdrHistogram/"))
          .toList();
      assertEquals(List.of(), bench, "benchmark classes in " + jar);
    }
  }

  @Test
  void bench_fromTheProductJar_saysWhereTheBenchmarksAre() throws Exception {
    // bin/shade would run the bench jar; the product jar run directly must say where it is
    ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-jar", jar.toString(), "bench", "cow").redirectErrorStream(true);
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    assertEquals(1, p.exitValue(), out);
    assertTrue(out.contains("bench/target/shade-bench.jar"), out);
  }
}
