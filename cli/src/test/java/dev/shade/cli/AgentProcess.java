package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * {@code shade agent ARGS} running in a JVM of its own (on the test class path, as bin/shade
 * runs the jar), with its output in files.
 */
record AgentProcess(Process process, Path outFile, Path errFile) {
  /**
   * Starts the agent in {@code dir} (its output files go there) and waits until it says it is
   * serving and {@code control} exists; fails with what it printed if it exits first.
   */
  static AgentProcess start(Path dir, List<Object> args, Path control) throws Exception {
    return start(dir, List.of(), args, control);
  }

  /** {@link #start(Path, List, Path)} with JVM options (system properties of test hooks). */
  static AgentProcess start(Path dir, List<String> jvmOptions, List<Object> args, Path control) throws Exception {
    List<String> command = new ArrayList<>();
    command.add(ProcessHandle.current().info().command().orElse("java"));
    command.addAll(jvmOptions);
    command.addAll(List.of("-cp", System.getProperty("java.class.path"), Shade.class.getName(), "agent"));
    args.forEach(x -> command.add(String.valueOf(x)));
    Path out = Files.createTempFile(dir, "agent-", ".out");
    Path err = Files.createTempFile(dir, "agent-", ".err");
    Process p = new ProcessBuilder(command)
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
        .redirectOutput(out.toFile())
        .redirectError(err.toFile())
        .start();
    AgentProcess a = new AgentProcess(p, out, err);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!a.err().contains("shade agent: serving ")) {
      if (!p.isAlive() || System.nanoTime() > deadline) {
        p.destroyForcibly();
        throw new AssertionError("shade agent did not start: " + a);
      }
      Thread.sleep(20);
    }
    assertTrue(Files.exists(control), "control socket " + control + ": " + a);
    return a;
  }

  String out() throws IOException {
    return Files.readString(outFile, StandardCharsets.UTF_8);
  }

  String err() throws IOException {
    return Files.readString(errFile, StandardCharsets.UTF_8);
  }

  /** Sends SIGTERM and returns the exit code. */
  int stop() throws Exception {
    process.destroy();
    assertTrue(process.waitFor(60, TimeUnit.SECONDS), "stopped within 60 s after SIGTERM");
    return process.exitValue();
  }

  /** Kills the process with SIGKILL and waits for it to be gone. */
  void kill() throws InterruptedException {
    process.destroyForcibly();
    assertTrue(process.waitFor(30, TimeUnit.SECONDS), "gone within 30 s after SIGKILL");
  }

  /** The NBD URI of snapshot {@code snapshot} of volume {@code db} on an agent's NBD socket {@code socket}. */
  static String source(Path socket, String snapshot) {
    return "nbd+unix:///db@" + snapshot + "?socket=" + socket;
  }

  @Override
  public String toString() {
    try {
      return "shade agent (" + (process.isAlive() ? "running" : "exit " + process.exitValue()) + ")\n--- stdout\n"
          + out() + "--- stderr\n" + err();
    } catch (IOException e) {
      return "shade agent: " + e;
    }
  }
}
