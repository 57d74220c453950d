package dev.shade.requestor.lease;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.nativeio.ErrnoException;
import dev.shade.nativeio.FsFreeze;
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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The requestor's end of a freeze lease: a {@link LeaseGuard} process that runs the writers'
 * phases of one snapshot and thaws them by itself when the lease's limit passes, when this
 * process dies (its standard input closes with it) or when it is told to.
 *
 * <p>The guard is a separate JVM on this process's class path, started per snapshot (a fresh
 * process holds no state from an earlier snapshot). Its start costs a few hundred milliseconds,
 * before anything is frozen. One thread uses a lease at a time.
 */
public final class FreezeLease implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Logger LOG = LoggerFactory.getLogger(FreezeLease.class);
  /** How long starting the guard and identifying the writers may take. */
  private static final Duration START_LIMIT = Duration.ofSeconds(30);
  /** How long prepare (a database checkpoint) and post-snapshot may take. */
  private static final Duration STEP_LIMIT = Duration.ofMinutes(5);
  /** What the guard may take beyond the lease to answer a freeze. */
  private static final Duration FREEZE_SLACK = Duration.ofSeconds(2);
  private static final String EXIT = "\u0000exit";

  private final Process process;
  private final OutputStream in;
  private final BlockingQueue<String> replies = new LinkedBlockingQueue<>();
  private final Duration limit;
  private final List<String> specs;
  private JsonNode identified;
  /** A freeze was asked for and no thaw or abort has answered since: the guard may hold writers frozen. */
  private boolean mayBeFrozen;

  private FreezeLease(Process process, Duration limit, List<String> specs) throws IOException {
    this.process = process;
    this.specs = List.copyOf(specs);
    this.in = process.getOutputStream();
    this.limit = limit;
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

  /**
   * Starts a guard for the writers {@code specs} with a lease of {@code limit} from the first
   * freeze, and identifies the writers in it.
   *
   * @return the lease; {@link #identified} holds each writer's facts
   * @throws IOException when the guard cannot start or a writer cannot identify (it is then gone)
   */
  public static FreezeLease start(List<String> specs, Duration limit) throws IOException {
    if (limit.isNegative() || limit.isZero()) {
      throw new IllegalArgumentException("the freeze timeout must be positive: " + limit);
    }
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
    Process p = pb.start();
    FreezeLease lease = new FreezeLease(p, limit, specs);
    try {
      ObjectNode start = JSON.createObjectNode().put("op", "start").put("leaseMs", limit.toMillis());
      specs.forEach(start.putArray("writers")::add);
      lease.identified = lease.request(start, START_LIMIT).path("writers");
      return lease;
    } catch (IOException | RuntimeException e) {
      lease.kill();
      throw e;
    }
  }

  /** The writers' identify facts: an array of {writer, identify, identifyMs}. */
  public JsonNode identified() {
    return identified;
  }

  /** The lease's limit, from the first freeze. */
  public Duration limit() {
    return limit;
  }

  /** The guard's pid. */
  public long pid() {
    return process.pid();
  }

  /** Runs every writer's prepare; the reply holds {@code prepareMs} per writer. */
  public JsonNode prepare() throws IOException {
    return request(JSON.createObjectNode().put("op", "prepare"), STEP_LIMIT);
  }

  /**
   * Freezes every writer (applications, then filesystems); the lease runs from here. On failure
   * the guard has already thawed and aborted them.
   */
  public JsonNode freeze() throws IOException {
    mayBeFrozen = true;
    return request(JSON.createObjectNode().put("op", "freeze"), limit.plus(FREEZE_SLACK));
  }

  /**
   * Thaws every writer and runs post-snapshot. The reply holds {@code frozenMs} (first freeze to
   * last thaw), {@code thawMs}, {@code postSnapshotMs} and {@code metadata} (one
   * {@code WriterMetadata} per writer).
   *
   * @throws LeaseExpiredException when the guard had released the writers before this thaw: the
   *     snapshot may not be consistent and must be discarded
   */
  public JsonNode thaw() throws IOException {
    JsonNode reply = request(JSON.createObjectNode().put("op", "thaw"), STEP_LIMIT);
    mayBeFrozen = false;
    return reply;
  }

  /** Thaws and aborts every writer and ends the guard. Never throws. */
  public void abort() {
    try {
      request(JSON.createObjectNode().put("op", "abort"), STEP_LIMIT);
      mayBeFrozen = false;
    } catch (IOException | RuntimeException e) {
      // closing its input releases too
    }
    close();
  }

  /** Ends the guard (closing its input releases anything still held) and waits for it briefly. */
  @Override
  public void close() {
    try {
      in.close();
    } catch (IOException e) {
      // gone already
    }
    try {
      if (!process.waitFor(10, TimeUnit.SECONDS)) {
        kill();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      kill();
    }
  }

  private void kill() {
    process.descendants().forEach(ProcessHandle::destroyForcibly);
    process.destroyForcibly();
    thawFilesystemsOfALostGuard();
  }

  /**
   * The guard is gone (it died, or did not answer and was killed) while it may have held
   * filesystems frozen: thaw them from here. What else it held (an SQLite lock, PostgreSQL's
   * backup session) ended with its process.
   */
  private void thawFilesystemsOfALostGuard() {
    if (!mayBeFrozen) {
      return;
    }
    mayBeFrozen = false;
    for (String spec : specs) {
      if (spec.startsWith("fs:")) {
        try {
          FsFreeze.thaw(Path.of(spec.substring(3)));
          LOG.warn("thawed {} after its freeze lease guard (pid {}) was lost", spec.substring(3), process.pid());
        } catch (ErrnoException | RuntimeException e) {
          // not frozen (EINVAL), or gone: nothing to undo
        }
      }
    }
  }

  private JsonNode request(ObjectNode op, Duration timeLimit) throws IOException {
    try {
      in.write((op.toString() + "\n").getBytes(StandardCharsets.UTF_8));
      in.flush();
    } catch (IOException e) {
      throw new IOException("the freeze lease guard (pid " + process.pid() + ") is gone: " + e.getMessage(), e);
    }
    String line;
    try {
      line = replies.poll(timeLimit.toNanos(), TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted waiting for the freeze lease guard");
    }
    String what = op.path("op").asText();
    if (line == null) {
      kill();
      throw new IOException("the freeze lease guard did not answer " + what + " within " + timeLimit.toMillis()
          + " ms; it was killed");
    }
    if (line.equals(EXIT)) {
      replies.add(EXIT);
      thawFilesystemsOfALostGuard();
      throw new IOException("the freeze lease guard (pid " + process.pid() + ") exited during " + what);
    }
    JsonNode reply = JSON.readTree(line);
    if (!reply.path("ok").asBoolean(false)) {
      String error = reply.path("error").asText("the guard failed " + what);
      if (reply.path("expired").asBoolean(false)) {
        throw new LeaseExpiredException(error);
      }
      throw new IOException(error);
    }
    return reply;
  }

  /** The guard released the writers before the snapshot was confirmed. */
  public static final class LeaseExpiredException extends IOException {
    private static final long serialVersionUID = 1L;

    LeaseExpiredException(String message) {
      super(message);
    }
  }
}
