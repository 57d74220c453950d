package dev.shade.bench;

import dev.shade.requestor.control.ControlClient;
import java.io.Closeable;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A {@code shade agent} started as a child process on one volume, serving it over NBD on a Unix
 * socket and taking commands on its control socket, as on a production host.
 *
 * <p>Not thread-safe: one thread starts, uses and closes it (close may also come from a shutdown
 * hook, which is why it is synchronized).
 */
final class AgentProcess implements Closeable {
  /*
   * The agent runs the product's own entry point, dev.shade.cli.Shade, from the jar this class
   * was loaded from (the bench jar holds the whole product), or from this JVM's class path when
   * the classes come from directories (tests under Maven). It is started with Programs.start
   * like the servers of the NBD benchmark: output to a log file, stdin from /dev/null. Ready
   * means its control socket answers a greeting and its NBD socket exists: the agent opens its
   * volumes and listens on NBD before it binds the control socket. Stopping is the agent-stop
   * command, the same path as SIGTERM (flush, close, remove the sockets), then SIGTERM and
   * SIGKILL if it has not gone within the grace time.
   */

  /** How long the agent may take to open its volume and answer. */
  private static final Duration START_TIMEOUT = Duration.ofSeconds(60);
  /** How long a stop may take before the process is killed. */
  private static final Duration STOP_GRACE = Duration.ofSeconds(30);

  /** The agent's control socket. */
  final Path control;
  /** The agent's NBD Unix socket. */
  final Path nbd;
  /** Everything the agent printed. */
  final Path log;
  /** The command line the agent was started with. */
  final List<String> command;
  /** The running agent. */
  private final Process process;
  /** True once close has run. */
  private boolean closed;

  private AgentProcess(Path control, Path nbd, Path log, List<String> command, Process process) {
    this.control = control;
    this.nbd = nbd;
    this.log = log;
    this.command = command;
    this.process = process;
  }

  /**
   * Starts {@code shade agent volume --control-socket work/control.sock --socket work/nbd.sock}
   * with its log in {@code work/agent.log}, and returns once it answers on both sockets.
   */
  static AgentProcess start(Path work, Path volume) throws IOException, InterruptedException {
    return start(work, List.of(volume));
  }

  /** {@link #start(Path, Path)} on several volumes, each served as its directory's name. */
  static AgentProcess start(Path work, List<Path> volumes) throws IOException, InterruptedException {
    Path control = work.resolve("control.sock");
    Path nbd = work.resolve("nbd.sock");
    Path log = work.resolve("agent.log");
    List<String> command = new ArrayList<>(List.of(java(), "-cp", classPath(), "dev.shade.cli.Shade", "agent"));
    volumes.forEach(v -> command.add(v.toString()));
    command.addAll(List.of("--control-socket", control.toString(), "--socket", nbd.toString()));
    AgentProcess agent = new AgentProcess(control, nbd, log, command, Programs.start(work, log, command));
    try {
      agent.awaitReady();
    } catch (IOException | InterruptedException | RuntimeException e) {
      agent.close();
      throw e;
    }
    return agent;
  }

  /** The NBD URI of {@code export} on the agent's Unix socket. */
  String uri(String export) {
    return "nbd+unix:///" + export + "?socket=" + nbd;
  }

  /** A new connection to the control socket (without events). */
  ControlClient connect() throws IOException {
    return ControlClient.connect(control, Duration.ofSeconds(10), false);
  }

  /** The agent's pid. */
  long pid() {
    return process.pid();
  }

  /** This JVM's java program, which runs the agent and the product's commands. */
  static String java() {
    return Path.of(System.getProperty("java.home"), "bin", "java").toString();
  }

  /** The jar this class came from, or this JVM's class path when it came from a directory. */
  static String classPath() {
    CodeSource source = AgentProcess.class.getProtectionDomain().getCodeSource();
    if (source != null) {
      try {
        Path p = Path.of(source.getLocation().toURI());
        if (Files.isRegularFile(p)) {
          return p.toString();
        }
      } catch (URISyntaxException | IllegalArgumentException e) {
        // not a file: fall back to the class path
      }
    }
    return System.getProperty("java.class.path");
  }

  private void awaitReady() throws IOException, InterruptedException {
    long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
    while (true) {
      if (!process.isAlive()) {
        throw new IOException("the agent exited " + process.exitValue() + " before it answered: `"
            + String.join(" ", command) + "`: " + Programs.tail(log, 5));
      }
      if (Files.exists(control) && Files.exists(nbd)) {
        try (ControlClient c = connect()) {
          return;
        } catch (IOException e) {
          // not listening yet
        }
      }
      if (System.nanoTime() > deadline) {
        throw new IOException("the agent did not answer on " + control + " within " + START_TIMEOUT.toSeconds()
            + " s: " + Programs.tail(log, 5));
      }
      Thread.sleep(50);
    }
  }

  /** Stops the agent (agent-stop, then SIGTERM, then SIGKILL) and waits for it to exit. */
  @Override
  public synchronized void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    try {
      if (process.isAlive()) {
        try (ControlClient c = connect()) {
          c.execute("agent-stop", null);
        } catch (IOException e) {
          // not answering: the signals below stop it
        }
        if (!process.waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
          Programs.stop(process, Duration.ofSeconds(10));
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
    }
    if (process.isAlive()) {
      throw new IOException("the agent (pid " + process.pid() + ") did not stop");
    }
    if (process.exitValue() != 0) {
      throw new IOException("the agent (pid " + process.pid() + ") exited " + process.exitValue() + " on stop: "
          + Programs.tail(log, 5));
    }
  }

  @Override
  public String toString() {
    return "shade agent (pid " + process.pid() + ", control socket " + control + ")";
  }
}
