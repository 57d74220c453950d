package dev.shade.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs {@code bin/shade bench ...} as a real process on the packaged bench jar, as an operator would. */
class BenchProcessIT {
  /** bin/shade of this source tree. */
  private static Path script;
  /** The bench jar the build just packaged; bin/shade runs it as it is (SHADE_BENCH_JAR). */
  private static Path jar;

  @TempDir Path tmp;

  @BeforeAll
  static void locate() {
    String repo = System.getProperty("shade.repo");
    String jarPath = System.getProperty("shade.bench.jar");
    assumeTrue(repo != null && jarPath != null, "runs under Maven failsafe, which names the jar and the repository");
    script = Path.of(repo, "bin", "shade").toAbsolutePath().normalize();
    jar = Path.of(jarPath);
    assertTrue(Files.isRegularFile(jar), "the jar is packaged before integration tests: " + jar);
  }

  /** What one process did. */
  record Run(int code, String out, String err) {}

  /**
   * Runs bin/shade with {@code args}; SHADE_JAR names a jar that does not exist, so a command
   * that bin/shade did not send to the bench jar fails.
   */
  private Run shade(String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(script.toString());
    command.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(command).directory(tmp.toFile());
    pb.environment().put("SHADE_BENCH_JAR", jar.toString());
    pb.environment().put("SHADE_JAR", tmp.resolve("no-product.jar").toString());
    pb.environment().remove("SHADE_DEBUG");
    pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    Path out = tmp.resolve("stdout.txt");
    Path err = tmp.resolve("stderr.txt");
    pb.redirectOutput(out.toFile()).redirectError(err.toFile());
    Process p = pb.start();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "shade finished within 60 s: " + command);
    return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
        Files.readString(err, StandardCharsets.UTF_8));
  }

  @Test
  void bench_runsTheBenchJar() throws Exception {
    Run r = shade("bench", "nbd", "--seconds", "0");
    assertEquals(2, r.code(), r::toString);
    assertEquals("shade bench nbd: --seconds must be from 1 to 3600: 0 (see 'shade bench nbd --help')", r.err().strip());
    assertEquals("", r.out());
  }

  @Test
  void benchAfterRootOptionOrHelp_runsTheBenchJar() throws Exception {
    Run verbose = shade("-v", "bench", "--help");
    assertEquals(0, verbose.code(), verbose::toString);
    assertTrue(verbose.out().startsWith("Measure shade on this machine.\n"), verbose::toString);
    Run help = shade("help", "bench");
    assertEquals(0, help.code(), help::toString);
    assertTrue(help.out().contains("  cow ") && help.out().contains("  nbd "), help::toString);
  }

  @Test
  void otherCommands_runTheProductJar() throws Exception {
    Run r = shade("--version");
    assertEquals(1, r.code(), "SHADE_JAR names a missing jar, so the product jar was asked for: " + r);
    assertTrue(r.err().contains("no-product.jar"), r::toString);
  }
}
