package dev.shade.requestor.lease;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.nativeio.ErrnoException;
import dev.shade.nativeio.FsFreeze;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The requestor's end of a freeze lease: a {@link LeaseGuard} process that runs the writers'
 * phases of one snapshot and thaws them by itself when the lease's limit passes, when this
 * process dies (its standard input closes with it) or when it is told to.
 *
 * <p>The guard is a separate JVM on this process's class path. Its start costs a few hundred
 * milliseconds, before anything is frozen. A one-shot requestor starts one per snapshot; a
 * long-running one (the agent) passes a {@link GuardPool}, which keeps the guard of a lease that
 * ended cleanly, reset, for the next one. One thread uses a lease at a time.
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
  private final GuardProcess guard;
  private final GuardPool pool;
  private final Duration limit;
  private final List<String> specs;
  private JsonNode identified;
  /** A freeze was asked for and no thaw or abort has answered since: the guard may hold writers frozen. */
  private boolean mayBeFrozen;
  /** Every request so far was answered with success, the last one a thaw: the guard may serve another lease. */
  private boolean thawed;
  private boolean failed;
  private boolean closed;

  private FreezeLease(GuardProcess guard, GuardPool pool, Duration limit, List<String> specs) {
    this.guard = guard;
    this.pool = pool;
    this.specs = List.copyOf(specs);
    this.limit = limit;
  }

  /**
   * Starts a guard for the writers {@code specs} with a lease of {@code limit} from the first
   * freeze, and identifies the writers in it. The guard is this lease's own, ended with it.
   *
   * @return the lease; {@link #identified} holds each writer's facts
   * @throws IOException when the guard cannot start or a writer cannot identify (it is then gone)
   */
  public static FreezeLease start(List<String> specs, Duration limit) throws IOException {
    return start(specs, limit, GuardPool.none());
  }

  /**
   * As {@link #start(List, Duration)}, with a guard from {@code pool} (an idle one it kept, or a
   * new one); when the lease ends cleanly the guard goes back to {@code pool}.
   */
  public static FreezeLease start(List<String> specs, Duration limit, GuardPool pool) throws IOException {
    if (limit.isNegative() || limit.isZero()) {
      throw new IllegalArgumentException("the freeze timeout must be positive: " + limit);
    }
    GuardProcess g = pool.take();
    g.leaseBegun();
    FreezeLease lease = new FreezeLease(g, pool, limit, specs);
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
    return guard.pid();
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
    thawed = true;
    return reply;
  }

  /** Thaws and aborts every writer and ends the guard. Never throws. */
  public void abort() {
    failed = true; // the guard ends with an abort: never back to the pool
    try {
      request(JSON.createObjectNode().put("op", "abort"), STEP_LIMIT);
      mayBeFrozen = false;
    } catch (IOException | RuntimeException e) {
      // closing its input releases too
    }
    close();
  }

  /**
   * Ends the lease. After a clean thaw the guard closes this lease's writers and goes back to the
   * pool for the next lease (or ends, with a pool that keeps nothing); otherwise it is ended:
   * closing its input releases anything still held, and it is killed if it does not exit soon.
   */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    if (thawed && !failed && pool.keeps()) {
      try {
        request(JSON.createObjectNode().put("op", "reset"), STEP_LIMIT);
        pool.giveBack(guard);
        return;
      } catch (IOException | RuntimeException e) {
        LOG.warn("the freeze lease guard (pid {}) could not be reset for the next snapshot: {}", guard.pid(), e.getMessage());
      }
    }
    if (!guard.close()) {
      thawFilesystemsOfALostGuard();
    }
  }

  private void kill() {
    guard.kill();
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
          LOG.warn("thawed {} after its freeze lease guard (pid {}) was lost", spec.substring(3), guard.pid());
        } catch (ErrnoException | RuntimeException e) {
          // not frozen (EINVAL), or gone: nothing to undo
        }
      }
    }
  }

  private JsonNode request(ObjectNode op, Duration timeLimit) throws IOException {
    try {
      return answer(op, timeLimit);
    } catch (IOException | RuntimeException e) {
      failed = true;
      throw e;
    }
  }

  private JsonNode answer(ObjectNode op, Duration timeLimit) throws IOException {
    String what = op.path("op").asText();
    try {
      guard.send(op.toString());
    } catch (IOException e) {
      // its input is closed only when it exited: the same loss as an exit seen in its answer
      thawFilesystemsOfALostGuard();
      throw new IOException("the freeze lease guard (pid " + guard.pid() + ") exited before " + what + " ("
          + e.getMessage() + ")", e);
    }
    String line;
    try {
      line = guard.reply(timeLimit);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted waiting for the freeze lease guard");
    }
    if (line == null) {
      kill();
      throw new IOException("the freeze lease guard did not answer " + what + " within " + timeLimit.toMillis()
          + " ms; it was killed");
    }
    if (line.equals(GuardProcess.EXIT)) {
      thawFilesystemsOfALostGuard();
      throw new IOException("the freeze lease guard (pid " + guard.pid() + ") exited during " + what);
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
