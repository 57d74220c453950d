package dev.shade.requestor.lease;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * One {@link LeaseGuard} JVM and its pipes: requests go to its standard input, one reply line
 * comes back per request. Used by one {@link FreezeLease} at a time; a {@link GuardPool} may hand
 * it to the next lease once it has been reset.
 */
final class GuardProcess {
  /** Put in the reply queue when the guard's standard output ends. */
  static final String EXIT = "\u0000exit";

  private final Process process;
  private final OutputStream in;
  private final BlockingQueue<String> replies = new LinkedBlockingQueue<>();
  private int leases;

  private GuardProcess(Process process) {
    this.process = process;
    this.in = process.getOutputStream();
    Thread reader = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          replies.add(line);
        }
      } catch (IOException e) {
        // the guard is gone; EXIT says so
      }
      replies.add(EXIT);
    }, "shade-lease-" + process.pid());
    reader.setDaemon(true);
    reader.start();
  }

  /** Starts a guard JVM on this process's class path. */
  static GuardProcess start() throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-XX:+UseSerialGC");
    cmd.add("-XX:TieredStopAtLevel=1");
    cmd.add("-Xmx96m");
    cmd.add("-Xss512k");
    String logLevel = System.getProperty("org.slf4j.simpleLogger.defaultLogLevel");
    if (logLevel != null) {
      cmd.add("-Dorg.slf4j.simpleLogger.defaultLogLevel=" + logLevel);
    }
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(LeaseGuard.class.getName());
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT);
    return new GuardProcess(pb.start());
  }

  long pid() {
    return process.pid();
  }

  boolean isAlive() {
    return process.isAlive();
  }

  /** How many leases this guard has begun. */
  int leases() {
    return leases;
  }

  void leaseBegun() {
    leases++;
  }

  /** Sends one request line. */
  void send(String line) throws IOException {
    in.write((line + "\n").getBytes(StandardCharsets.UTF_8));
    in.flush();
  }

  /** The next reply, {@link #EXIT} when the guard is gone, or null after {@code limit}. */
  String reply(Duration limit) throws InterruptedException {
    String line = replies.poll(limit.toNanos(), TimeUnit.NANOSECONDS);
    if (EXIT.equals(line)) {
      replies.add(EXIT);
    }
    return line;
  }

  /**
   * Closes the guard's input (it releases anything still held and exits) and waits for it; kills
   * it after 10 s.
   *
   * @return whether it exited by itself
   */
  boolean close() {
    try {
      in.close();
    } catch (IOException e) {
      // gone already
    }
    try {
      if (process.waitFor(10, TimeUnit.SECONDS)) {
        return true;
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    kill();
    return false;
  }

  /** Kills the guard and whatever it started. */
  void kill() {
    process.descendants().forEach(ProcessHandle::destroyForcibly);
    process.destroyForcibly();
  }
}
