package dev.shade.provider.reliability;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A test's child JVM running a main class of this package, with its stdout lines collected as
 * they arrive so the test can wait for an acknowledgement and then kill it with SIGKILL.
 *
 * <p>Thread-safe: one reader thread fills the collected state, test threads wait on it.
 */
final class ChildJvm implements AutoCloseable {
  /** Exit status of a JVM killed by SIGKILL (128 + 9). */
  static final int SIGKILL_STATUS = 137;
  /** Exit status of a JVM ended by SIGTERM (128 + 15). */
  static final int SIGTERM_STATUS = 143;

  /** The running child. */
  private final Process process;
  /** Where the child's stderr goes. */
  private final Path stderrFile;
  /** Reads stdout into {@link #lines}; ends at EOF. */
  private final Thread reader;
  /** Every stdout line so far; guarded by this. */
  private final List<String> lines = new ArrayList<>();
  /** Highest {@code ACK} index seen, -1 before the first; guarded by this. */
  private int lastAck = -1;
  /** True once stdout reached EOF (the child is gone); guarded by this. */
  private boolean eof;

  private ChildJvm(Process process, Path stderrFile) {
    this.process = process;
    this.stderrFile = stderrFile;
    this.reader = new Thread(this::readLoop, "child-stdout-" + process.pid());
    reader.setDaemon(true);
    reader.start();
  }

  /**
   * Starts {@code java -cp <this JVM's class path> main args...} with light flags. The child's
   * stderr goes to {@code workDir/stderr-<n>.txt}; JNA unpacks its native library under
   * {@code workDir} so that killed children leave nothing behind elsewhere.
   */
  static ChildJvm start(Path workDir, Class<?> main, String... args) throws IOException {
    return start(workDir, List.of(), main, args);
  }

  /** {@link #start(Path, Class, String...)} with extra JVM options (system properties of test hooks). */
  static ChildJvm start(Path workDir, List<String> jvmOptions, Class<?> main, String... args) throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xshare:auto");
    cmd.add("-XX:TieredStopAtLevel=1");
    cmd.add("-Xmx256m");
    cmd.add("-XX:-UsePerfData");
    cmd.add("-Djna.tmpdir=" + workDir.resolve("jna"));
    cmd.addAll(jvmOptions);
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(main.getName());
    cmd.addAll(List.of(args));
    Path stderr = Files.createTempFile(workDir, "stderr-", ".txt");
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(stderr.toFile());
    return new ChildJvm(pb.start(), stderr);
  }

  private void readLoop() {
    try (BufferedReader r = new BufferedReader(
        new InputStreamReader(process.getInputStream(), StandardCharsets.US_ASCII))) {
      String line;
      while ((line = r.readLine()) != null) {
        synchronized (this) {
          lines.add(line);
          if (line.startsWith("ACK ")) {
            String[] words = line.split(" ");
            lastAck = Integer.parseInt(words[1]);
          }
          notifyAll();
        }
      }
    } catch (IOException | RuntimeException e) {
      synchronized (this) {
        lines.add("(reading stdout failed: " + e + ")");
      }
    } finally {
      synchronized (this) {
        eof = true;
        notifyAll();
      }
    }
  }

  long pid() {
    return process.pid();
  }

  /**
   * Waits until {@code ACK target} (or a later one) arrived; returns false if the child ended
   * first. Throws on timeout.
   */
  boolean awaitAck(int target, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    synchronized (this) {
      while (lastAck < target && !eof) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new AssertionError("child " + pid() + " did not acknowledge op " + target + " within "
              + timeout + " (last ack " + lastAck + "); " + output());
        }
        TimeUnit.NANOSECONDS.timedWait(this, left);
      }
      return lastAck >= target;
    }
  }

  /**
   * Waits for a line that is {@code word} or starts with {@code word} and a space, and returns
   * it, or null if the child ended first. Throws on timeout.
   */
  String awaitLine(String word, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    synchronized (this) {
      while (true) {
        for (String l : lines) {
          if (l.equals(word) || l.startsWith(word + " ")) {
            return l;
          }
        }
        if (eof) {
          return null;
        }
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new AssertionError("child " + pid() + " printed no '" + word + "' line within "
              + timeout + "; " + output());
        }
        TimeUnit.NANOSECONDS.timedWait(this, left);
      }
    }
  }

  /** Sends one line to the child's stdin. */
  void send(String line) throws IOException {
    OutputStream in = process.getOutputStream();
    in.write((line + "\n").getBytes(StandardCharsets.US_ASCII));
    in.flush();
  }

  /**
   * Kills the child with SIGKILL, waits for it and for the end of its stdout, and returns its
   * exit status. Signals through {@link ProcessHandle#destroyForcibly()}: {@link
   * Process#destroyForcibly()} sends the same SIGKILL but then closes the pipes, dropping lines
   * the child wrote just before it died, and a lost ACK would make a test think an op that
   * returned was never issued.
   */
  int kill() throws InterruptedException {
    process.toHandle().destroyForcibly();
    return awaitExit("SIGKILL");
  }

  /** Kills the child with {@link Process#destroyForcibly()} (unread output may be lost). */
  int destroyForcibly() throws InterruptedException {
    process.destroyForcibly();
    return awaitExit("destroyForcibly()");
  }

  private int awaitExit(String how) throws InterruptedException {
    if (!process.waitFor(30, TimeUnit.SECONDS)) {
      throw new AssertionError("child " + pid() + " still alive 30 s after " + how);
    }
    reader.join(30_000);
    if (reader.isAlive()) {
      throw new AssertionError("stdout of child " + pid() + " still open 30 s after it died");
    }
    return process.exitValue();
  }

  /** Sends SIGTERM ({@link Process#destroy()}) and waits; returns the exit status. */
  int terminate() throws InterruptedException {
    process.destroy();
    return awaitExit("SIGTERM");
  }

  synchronized int lastAck() {
    return lastAck;
  }

  synchronized List<String> lines() {
    return new ArrayList<>(lines);
  }

  /** Lines starting with {@code prefix}. */
  synchronized List<String> linesStartingWith(String prefix) {
    List<String> found = new ArrayList<>();
    for (String l : lines) {
      if (l.startsWith(prefix)) {
        found.add(l);
      }
    }
    return found;
  }

  /** The child's last stdout lines and stderr, for failure messages. */
  String output() {
    List<String> all = lines();
    List<String> tail = all.subList(Math.max(0, all.size() - 5), all.size());
    String err;
    try {
      err = Files.readString(stderrFile, StandardCharsets.UTF_8);
    } catch (IOException e) {
      err = "(cannot read " + stderrFile + ": " + e + ")";
    }
    if (err.length() > 4000) {
      err = "..." + err.substring(err.length() - 4000);
    }
    return "child stdout tail " + tail + ", stderr (" + stderrFile + "): " + err.strip();
  }

  @Override
  public void close() throws InterruptedException {
    if (process.isAlive()) {
      kill();
    }
  }
}
