package dev.shade.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A test's child JVM running a main class of the tests: either one run to completion
 * ({@link #run}, for a check that needs another user or could take the test JVM down), or a
 * running child ({@link #start}) whose stdout lines are collected as they arrive, so the test
 * can wait for an acknowledgement and then kill it with SIGKILL.
 *
 * <p>Thread-safe: one reader thread fills the collected state, test threads wait on it.
 */
public final class ChildJvm implements AutoCloseable {
  /** Exit status of a JVM killed by SIGKILL (128 + 9). */
  public static final int SIGKILL_STATUS = 137;
  /** Exit status of a JVM ended by SIGTERM (128 + 15). */
  public static final int SIGTERM_STATUS = 143;

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

  /** The classpath made of the code sources (class folders or jars) of {@code anchors}. */
  public static String classpath(Class<?>... anchors) throws IOException {
    List<String> entries = new ArrayList<>();
    for (Class<?> c : anchors) {
      entries.add(codeSource(c).toString());
    }
    return String.join(":", entries);
  }

  /**
   * Copies the code sources of {@code anchors} into {@code into} with read permission for
   * everyone (the Maven repository under /root is not readable by other users) and returns the
   * classpath of the copies.
   */
  public static String copyClasspath(Path into, Class<?>... anchors) throws IOException {
    List<String> entries = new ArrayList<>();
    int i = 0;
    for (Class<?> c : anchors) {
      Path src = codeSource(c);
      Path dst = into.resolve("cp" + i++ + (Files.isDirectory(src) ? "" : ".jar"));
      try (Stream<Path> walk = Files.walk(src)) {
        for (Path p : walk.toList()) {
          Path target = dst.resolve(src.relativize(p).toString());
          if (Files.isDirectory(p)) {
            Files.createDirectories(target);
            Files.setPosixFilePermissions(target, PosixFilePermissions.fromString("rwxr-xr-x"));
          } else {
            Files.copy(p, target, StandardCopyOption.REPLACE_EXISTING);
            Files.setPosixFilePermissions(target, PosixFilePermissions.fromString("rw-r--r--"));
          }
        }
      }
      entries.add(dst.toString());
    }
    return String.join(":", entries);
  }

  private static Path codeSource(Class<?> c) throws IOException {
    try {
      return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IOException("cannot locate the classes of " + c.getName(), e);
    }
  }

  /**
   * Runs {@code main} with {@code args} in a new small JVM and waits for it. {@code launcher}
   * (may be empty) is put in front of the java command, e.g. {@code setpriv --reuid=65534};
   * {@code scratch} must be writable by the child's user and holds its temporary files, JNA's
   * extracted library and any crash log.
   */
  public static Command run(List<String> launcher, String classpath, Path scratch, Class<?> main,
      String... args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(launcher);
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx64m");
    cmd.add("-XX:TieredStopAtLevel=1");
    cmd.add("-XX:-UsePerfData");
    cmd.add("-XX:-CreateCoredumpOnCrash");
    cmd.add("-XX:ErrorFile=" + scratch.resolve("hs_err_pid%p.log"));
    cmd.add("-Djava.io.tmpdir=" + scratch);
    cmd.add("-Djna.tmpdir=" + scratch);
    cmd.add("-cp");
    cmd.add(classpath);
    cmd.add(main.getName());
    cmd.addAll(List.of(args));
    return Command.run(cmd, scratch);
  }

  /**
   * Starts {@code java -cp <this JVM's class path> main args...} with light flags, stdin a pipe
   * for {@link #send}. The child's
   * stderr goes to {@code workDir/stderr-<n>.txt}; JNA unpacks its native library under
   * {@code workDir} so that killed children leave nothing behind elsewhere.
   */
  public static ChildJvm start(Path workDir, Class<?> main, String... args) throws IOException {
    return start(workDir, List.of(), main, args);
  }

  /** {@link #start(Path, Class, String...)} with extra JVM options (system properties of test hooks). */
  public static ChildJvm start(Path workDir, List<String> jvmOptions, Class<?> main, String... args) throws IOException {
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

  public long pid() {
    return process.pid();
  }

  /**
   * Waits until {@code ACK target} (or a later one) arrived; returns false if the child ended
   * first. Throws on timeout.
   */
  public boolean awaitAck(int target, Duration timeout) throws InterruptedException {
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
  public String awaitLine(String word, Duration timeout) throws InterruptedException {
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
  public void send(String line) throws IOException {
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
  public int kill() throws InterruptedException {
    process.toHandle().destroyForcibly();
    return awaitExit("SIGKILL");
  }

  /** Kills the child with {@link Process#destroyForcibly()} (unread output may be lost). */
  public int destroyForcibly() throws InterruptedException {
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
  public int terminate() throws InterruptedException {
    process.destroy();
    return awaitExit("SIGTERM");
  }

  public synchronized int lastAck() {
    return lastAck;
  }

  public synchronized List<String> lines() {
    return new ArrayList<>(lines);
  }

  /** Lines starting with {@code prefix}. */
  public synchronized List<String> linesStartingWith(String prefix) {
    List<String> found = new ArrayList<>();
    for (String l : lines) {
      if (l.startsWith(prefix)) {
        found.add(l);
      }
    }
    return found;
  }

  /** The child's last stdout lines and stderr, for failure messages. */
  public String output() {
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
