package dev.shade.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Processes a test started (agents, servers), killed after each test if the test left one
 * running: {@code @RegisterExtension final Leftovers started = new Leftovers();}, then
 * {@code started.add(process)}.
 */
final class Leftovers implements AfterEachCallback {
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
    List<Object> args = new ArrayList<>(List.of((Object[]) volumes));
    args.addAll(List.of("--control-socket", dir.resolve("control.sock"), "--socket", dir.resolve("nbd.sock")));
    AgentProcess agent = AgentProcess.start(dir, args, dir.resolve("control.sock"));
    add(agent.process());
    return agent;
  }

  @Override
  public void afterEach(ExtensionContext context) throws InterruptedException {
    for (Process p : started) {
      if (p.isAlive()) {
        p.destroyForcibly();
        p.waitFor(10, TimeUnit.SECONDS);
      }
    }
    started.clear();
  }
}
