package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Processes a test started (agents, servers), killed with SIGKILL after each test if the test
 * left one running: {@code @RegisterExtension final Leftovers started = new Leftovers();}, then
 * {@code started.add(process)}. Registered on a static field it also kills what a
 * {@code @BeforeAll} started and left running, after all tests.
 */
final class Leftovers implements AfterEachCallback, AfterAllCallback {
  private final List<Process> started = new ArrayList<>();

  /** Kills {@code p} after the test if it still runs then. */
  void add(Process p) {
    started.add(p);
  }

  /** Processes added in this test so far. */
  int size() {
    return started.size();
  }

  /**
   * Starts {@code shade agent} on {@code volumes} with its control socket {@code control.sock} and
   * its NBD socket {@code nbd.sock} in {@code dir}, killed after the test.
   */
  AgentProcess agent(Path dir, Path... volumes) throws Exception {
    return agent(dir, dir.resolve("control.sock"), dir.resolve("nbd.sock"), List.of(volumes));
  }

  /**
   * Starts {@code shade agent} on {@code volumes} with its control socket {@code control} and its
   * NBD socket {@code nbd}, its output in {@code dir}, killed after the test.
   */
  AgentProcess agent(Path dir, Path control, Path nbd, List<Path> volumes) throws Exception {
    List<Object> args = new ArrayList<>(volumes);
    args.addAll(List.of("--control-socket", control, "--socket", nbd));
    AgentProcess agent = AgentProcess.start(dir, args, control);
    add(agent.process());
    return agent;
  }

  @Override
  public void afterEach(ExtensionContext context) throws InterruptedException {
    for (Process p : started) {
      if (p.isAlive()) {
        p.destroyForcibly();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), () -> p + " gone within 30 s after SIGKILL");
      }
    }
    started.clear();
  }

  @Override
  public void afterAll(ExtensionContext context) throws InterruptedException {
    afterEach(context);
  }
}
