package dev.shade.testing.live;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * An external program running in the background (nbdfuse, pgbench), both output streams going to
 * a log file, standard input from {@code /dev/null}.
 *
 * <p>Thread-safe: the process handle is; {@link #stop} may be called from any thread.
 */
final class Background {
  /** The command line. */
  final List<String> argv;
  /** Where its output goes. */
  final Path log;
  /** The running program. */
  private final Process process;

  private Background(List<String> argv, Path log, Process process) {
    this.argv = argv;
    this.log = log;
    this.process = process;
  }

  /** Starts {@code argv} with its output appended to {@code log}. */
  static Background start(List<String> argv, Path log) throws IOException {
    Process p = new ProcessBuilder(argv).redirectErrorStream(true)
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
        .start();
    return new Background(List.copyOf(argv), log, p);
  }

  boolean alive() {
    return process.isAlive();
  }

  long pid() {
    return process.pid();
  }

  /** Waits up to {@code seconds} for it to exit; its exit code, or -1 if it is still running. */
  int await(long seconds) throws InterruptedException {
    return process.waitFor(seconds, TimeUnit.SECONDS) ? process.exitValue() : -1;
  }

  /** SIGTERM, then SIGKILL after {@code graceMillis}; waits for it to be gone. */
  void stop(long graceMillis) throws InterruptedException {
    if (!process.isAlive()) {
      return;
    }
    process.destroy();
    if (!process.waitFor(graceMillis, TimeUnit.MILLISECONDS)) {
      process.destroyForcibly();
      process.waitFor(10, TimeUnit.SECONDS);
    }
  }

  /** Everything it printed so far. */
  String output() {
    try {
      return Files.readString(log, StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "(cannot read " + log + ": " + e + ")";
    }
  }

  @Override
  public String toString() {
    return String.join(" ", argv) + " (pid " + process.pid() + (process.isAlive() ? ", running" : ", exited "
        + process.exitValue()) + ")";
  }
}
