package dev.shade.requestor.ops;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.provider.Progress;
import dev.shade.provider.RevertPlan;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.SnapshotRef;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeException;
import dev.shade.requestor.control.ControlException;
import dev.shade.requestor.writer.Writer;
import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Rolls a live volume back to one of its snapshots: stops what uses the volume, keeps the state
 * before the rollback as a snapshot of its own so that the rollback can be undone, reverts, and
 * starts again what it stopped. The one implementation behind the agent's
 * {@value #VOLUME_ROLLBACK} command and a {@code shade rollback} that opens the volume itself.
 *
 * <p>Not thread-safe: one rollback per call, on the calling thread; the volume itself may be
 * used by others until the revert holds it.
 */
public final class Rollback {
  /*
   * Steps, each reported with its outcome and duration:
   *
   *   plan             what is lost: the bytes changed since the target and, without the
   *                    before-rollback snapshot, the newer snapshots (a plain revert deletes
   *                    them, DESIGN.md invariant 5). With it, nothing is deleted: the revert
   *                    keeps the newer snapshots (Volume.revert with keepNewer), writing the
   *                    target's blocks as copy-on-write writes, so the before-rollback snapshot,
   *                    the newest, receives every block the rollback overwrites. The diff area
   *                    must have room for that (checked here first, and again by the provider).
   *   stop WRITER      in the order given; a failure starts again those already stopped.
   *   disconnect       the NBD clients of the volume's origin, when asked.
   *   clients          refuses while an NBD client still has the origin open for writing (after
   *                    waiting up to CLIENT_GRACE for it to go): its
   *                    data would change underneath it. Starts the stopped writers again first.
   *   before-snapshot  "before-rollback-<UTC time>".
   *   revert           crash-safe; an interrupted one finishes when the volume is next opened.
   *   start WRITER     in reverse order, also after a failed revert; every failure reported.
   */
  /** The command's name on the control socket. */
  public static final String VOLUME_ROLLBACK = "volume-rollback";
  /** Prefix of the name of the snapshot taken just before a rollback. */
  public static final String BEFORE_PREFIX = "before-rollback-";
  /**
   * How long writable NBD clients of the origin may take to go after the writers stopped
   * ({@code shade.rollback.clientGraceMs}, default 5000).
   */
  static final Duration CLIENT_GRACE = Duration.ofMillis(Long.getLong("shade.rollback.clientGraceMs", 5000));
  private static final DateTimeFormatter STAMP = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'").withZone(ZoneOffset.UTC);

  /** Makes a writer from its spec (the real one is {@code Writers::parse}; tests pass their own). */
  @FunctionalInterface
  public interface WriterFactory {
    Writer create(String spec) throws IOException;
  }

  /** What the host offers around a volume besides writers: its NBD clients (none without a server). */
  public interface Clients {
    /** Who has the origin of {@code v} open for writing (peer addresses), empty when nobody. */
    List<String> writableClients(Volume v);

    /** Disconnects every NBD client of the origin of {@code v}; returns how many there were. */
    int disconnect(Volume v) throws IOException;

    /** No NBD server: no clients. */
    Clients NONE = new Clients() {
      @Override
      public List<String> writableClients(Volume v) {
        return List.of();
      }

      @Override
      public int disconnect(Volume v) {
        return 0;
      }
    };
  }

  /**
   * What to do: go back to {@code target}, stopping {@code writers} (specs) around it, taking
   * the before-rollback snapshot when {@code beforeSnapshot}, disconnecting the origin's NBD
   * clients when {@code disconnectClients}; {@code dryRun} only plans.
   */
  public record Options(SnapshotRef target, List<String> writers, boolean beforeSnapshot, boolean disconnectClients,
      boolean dryRun) {
    public Options {
      writers = List.copyOf(writers);
    }

    /** The options of a {@value #VOLUME_ROLLBACK} command's arguments. */
    public static Options of(JsonNode args) throws ControlException {
      SnapshotRef target = VolumeCommands.ref(args, "snapshot", VOLUME_ROLLBACK);
      List<String> specs = new ArrayList<>();
      JsonNode w = args.get("writers");
      if (w != null && !w.isNull()) {
        if (!w.isArray()) {
          throw new ControlException(ControlException.INVALID_ARGUMENT, VOLUME_ROLLBACK + ": \"writers\" must be a list of writer specs: " + w);
        }
        for (JsonNode s : w) {
          if (!s.isTextual() || s.asText().isEmpty()) {
            throw new ControlException(ControlException.INVALID_ARGUMENT, VOLUME_ROLLBACK + ": every writer spec must be a non-empty string: " + s);
          }
          specs.add(s.asText());
        }
      }
      return new Options(target, specs, bool(args, "beforeSnapshot", true), bool(args, "disconnectClients", false),
          bool(args, "dryRun", false));
    }

    private static boolean bool(JsonNode args, String field, boolean dflt) throws ControlException {
      JsonNode n = args.get(field);
      if (n == null || n.isNull()) {
        return dflt;
      }
      if (!n.isBoolean()) {
        throw new ControlException(ControlException.INVALID_ARGUMENT, VOLUME_ROLLBACK + ": \"" + field + "\" must be true or false: " + n);
      }
      return n.asBoolean();
    }
  }

  /** A rollback that failed part-way; {@link #report} says which steps ran and how they ended. */
  public static final class RollbackException extends IOException {
    private static final long serialVersionUID = 1L;
    /** The report up to the failure (not serialised). */
    private final transient Map<String, Object> report;

    RollbackException(String message, Map<String, Object> report, Throwable cause) {
      super(message, cause);
      this.report = report;
    }

    public Map<String, Object> report() {
      return report;
    }
  }

  private final Volume volume;
  private final Options options;
  private final WriterFactory writers;
  private final Clients clients;
  private final Progress progress;
  private final Clock clock;
  /** The steps reported so far, in order. */
  private final List<Map<String, Object>> steps = new ArrayList<>();
  /** The report being built. */
  private final Map<String, Object> report = new LinkedHashMap<>();

  private Rollback(Volume volume, Options options, WriterFactory writers, Clients clients, Progress progress, Clock clock) {
    this.volume = volume;
    this.options = options;
    this.writers = writers;
    this.clients = clients;
    this.progress = progress;
    this.clock = clock;
  }

  /**
   * Rolls {@code volume} back as {@code options} say and returns the report: {@code volume},
   * {@code target}, {@code plan}, {@code steps} (each {@code step}, {@code outcome},
   * {@code seconds}, and what it concerns), {@code beforeSnapshot}, {@code outcome}.
   *
   * @throws ControlException {@code InUse} while an NBD client has the origin open for writing
   *     (after starting again whatever was stopped), {@code InvalidArgument} for a bad writer spec
   * @throws RollbackException when a step failed; every stopped writer was started again
   */
  public static Map<String, Object> run(Volume volume, Options options, WriterFactory writers, Clients clients,
      Progress progress, Clock clock) throws IOException {
    return new Rollback(volume, options, writers, clients, progress, clock).run();
  }

  private Map<String, Object> run() throws IOException {
    long t0 = System.nanoTime();
    SnapshotInfo target = volume.snapshot(options.target());
    report.put("volume", volume.name());
    report.put("volumeUuid", volume.uuid());
    report.put("target", VolumeCommands.snapshot(target));
    report.put("dryRun", options.dryRun());
    report.put("writers", options.writers());
    report.put("beforeSnapshot", null);
    report.put("steps", steps);

    List<Writer> made = new ArrayList<>();
    List<Writer> stopped = new ArrayList<>();
    try {
      for (String spec : options.writers()) { // a bad spec fails before anything, a dry run too
        try {
          made.add(writers.create(spec));
        } catch (IllegalArgumentException e) {
          throw new ControlException(ControlException.INVALID_ARGUMENT, e.getMessage());
        }
      }
      long s = System.nanoTime();
      Map<String, Object> plan = plan(target);
      report.put("plan", plan);
      step("plan", null, s, null);
      if (options.dryRun()) {
        return finish(t0);
      }

      for (Writer w : made) {
        s = System.nanoTime();
        try {
          w.stop();
        } catch (IOException | RuntimeException e) {
          step("stop", w.spec(), s, e);
          throw failed("stopping " + w.spec() + " failed: " + e.getMessage(), e, stopped);
        }
        stopped.add(w);
        step("stop", w.spec(), s, null);
      }
      if (options.disconnectClients()) {
        s = System.nanoTime();
        try {
          int n = clients.disconnect(volume);
          step("disconnect", null, s, null).put("clients", n);
        } catch (IOException | RuntimeException e) {
          step("disconnect", null, s, e);
          throw failed("disconnecting the NBD clients failed: " + e.getMessage(), e, stopped);
        }
      }
      s = System.nanoTime();
      List<String> writing = awaitNoWritable();
      if (!writing.isEmpty()) {
        ControlException e = inUse(writing, stopped.isEmpty() ? "" : " after stopping " + specs(stopped));
        step("clients", null, s, e);
        IOException restart = startAll(stopped);
        stopped.clear();
        if (restart != null) {
          e.addSuppressed(restart);
          throw new ControlException(ControlException.IN_USE, e.getMessage() + "; and starting again failed: "
              + restart.getMessage());
        }
        throw e;
      }
      step("clients", null, s, null);

      SnapshotInfo before = null;
      if (options.beforeSnapshot()) {
        s = System.nanoTime();
        try {
          before = volume.createSnapshot(beforeName());
        } catch (IOException | RuntimeException e) {
          step("before-snapshot", null, s, e);
          throw failed("taking the before-rollback snapshot failed: " + e.getMessage(), e, stopped);
        }
        report.put("beforeSnapshot", VolumeCommands.snapshot(before));
        step("before-snapshot", before.name(), s, null);
      }

      s = System.nanoTime();
      try {
        volume.revert(SnapshotRef.ofId(target.id()), options.beforeSnapshot(), progress);
      } catch (IOException | RuntimeException e) {
        step("revert", target.name(), s, e);
        throw failed("reverting volume '" + volume.name() + "' to snapshot '" + target.name() + "' failed: " + e.getMessage()
            + (before == null ? "" : "; snapshot '" + before.name() + "' holds the state before the rollback"), e, stopped);
      }
      step("revert", target.name(), s, null).put("changedBytes", plan.get("changedBytes"));

      IOException restart = startAll(stopped);
      stopped.clear();
      if (restart != null) {
        throw new RollbackException("volume '" + volume.name() + "' was rolled back to snapshot '" + target.name()
            + "', but starting again failed: " + restart.getMessage(), finish(t0, "failed"), restart);
      }
      return finish(t0);
    } finally {
      if (!stopped.isEmpty()) { // an unexpected failure: whatever was stopped runs again
        startAll(stopped);
      }
      for (Writer w : made) {
        try {
          w.close();
        } catch (RuntimeException e) {
          step("close", w.spec(), System.nanoTime(), e);
        }
      }
    }
  }

  /**
   * The NBD clients that still have the origin open for writing after waiting up to
   * {@link #CLIENT_GRACE} for them to go: a stop hook's (or a script's) {@code nbd-client -d}
   * returns before the server has seen the connection close.
   */
  private List<String> awaitNoWritable() throws IOException {
    long deadline = System.nanoTime() + CLIENT_GRACE.toNanos();
    List<String> writing = clients.writableClients(volume);
    while (!writing.isEmpty() && System.nanoTime() < deadline) {
      try {
        Thread.sleep(50);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted while waiting for the NBD clients of volume '" + volume.name() + "' to go");
      }
      writing = clients.writableClients(volume);
    }
    return writing;
  }

  /** What the rollback will do, and lose. */
  private Map<String, Object> plan(SnapshotInfo target) throws IOException {
    boolean keep = options.beforeSnapshot();
    RevertPlan p = volume.planRevert(SnapshotRef.ofId(target.id()), keep);
    List<Map<String, Object>> newer = new ArrayList<>();
    for (SnapshotInfo s : volume.snapshots()) {
      if (s.id() > target.id()) {
        newer.add(VolumeCommands.snapshot(s));
      }
    }
    List<Map<String, Object>> deleted = new ArrayList<>();
    for (SnapshotInfo s : p.deleted()) {
      deleted.add(VolumeCommands.snapshot(s));
    }
    long capacity = volume.config().diffMax() / volume.blockSize() * volume.blockSize();
    long free = capacity - volume.diffUsedBytes();
    // the before-rollback snapshot starts empty: every changed block may need a copy
    long preserved = keep ? p.changedBytes() : 0;
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("changedBytes", p.changedBytes());
    m.put("newer", newer);
    m.put("deleted", deleted);
    m.put("keepsNewer", keep);
    m.put("preservedBytes", preserved);
    m.put("diffFreeBytes", free);
    if (keep && preserved > free) {
      throw new VolumeException("cannot roll volume '" + volume.name() + "' back to snapshot '" + target.name()
          + "' keeping the state before the rollback: that needs up to " + preserved + " bytes of the diff area "
          + volume.diffAreaPath() + " and " + free + " are free; nothing was changed");
    }
    return m;
  }

  /** A unique name for the before-rollback snapshot: the UTC time, with a suffix when taken twice in a second. */
  private String beforeName() {
    String base = BEFORE_PREFIX + STAMP.format(clock.instant());
    String name = base;
    for (int i = 2; exists(name); i++) {
      name = base + "-" + i;
    }
    return name;
  }

  private boolean exists(String name) {
    for (SnapshotInfo s : volume.snapshots()) {
      if (s.name().equals(name)) {
        return true;
      }
    }
    return false;
  }

  private ControlException inUse(List<String> writing, String after) {
    return new ControlException(ControlException.IN_USE, "not rolling back volume '" + volume.name() + "': "
        + writing.size() + " NBD client" + (writing.size() == 1 ? " has" : "s have") + " its origin open for writing"
        + after + " (" + String.join(", ", writing) + "); stop it first: unmount and disconnect it, give a writer"
        + " whose stop step does that, or have the rollback disconnect the volume's NBD clients");
  }

  /** Starts {@code stopped} again, last first, after a failure; returns the failure to throw. */
  private RollbackException failed(String message, Throwable cause, List<Writer> stopped) {
    IOException restart = startAll(stopped);
    String restarted = stopped.isEmpty() ? "" : restart == null ? "; started again: " + specs(stopped)
        : "; and starting again failed: " + restart.getMessage();
    stopped.clear();
    RollbackException e = new RollbackException(message + restarted, finish(0, "failed"), cause);
    if (restart != null) {
      e.addSuppressed(restart);
    }
    return e;
  }

  /** Starts every writer of {@code stopped}, last stopped first; returns the failures, or null. */
  private IOException startAll(List<Writer> stopped) {
    List<String> failures = new ArrayList<>();
    Throwable first = null;
    for (int i = stopped.size() - 1; i >= 0; i--) {
      Writer w = stopped.get(i);
      long s = System.nanoTime();
      try {
        w.start();
        step("start", w.spec(), s, null);
      } catch (IOException | RuntimeException e) {
        step("start", w.spec(), s, e);
        failures.add(w.spec() + ": " + e.getMessage());
        if (first == null) {
          first = e;
        }
      }
    }
    return first == null ? null : new IOException(String.join("; ", failures), first);
  }

  private static String specs(List<Writer> ws) {
    List<String> out = new ArrayList<>();
    for (Writer w : ws) {
      out.add(w.spec());
    }
    return String.join(", ", out);
  }

  private Map<String, Object> step(String name, String subject, long startNanos, Throwable failure) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("step", name);
    if (subject != null) {
      m.put(name.equals("stop") || name.equals("start") || name.equals("close") ? "writer" : "snapshot", subject);
    }
    m.put("outcome", failure == null ? "ok" : "failed");
    m.put("seconds", (System.nanoTime() - startNanos) / 1e9);
    if (failure != null) {
      m.put("error", String.valueOf(failure.getMessage()));
    }
    steps.add(m);
    return m;
  }

  private Map<String, Object> finish(long t0) {
    return finish(t0, "ok");
  }

  private Map<String, Object> finish(long t0, String outcome) {
    report.put("outcome", outcome);
    if (t0 != 0) {
      report.put("seconds", (System.nanoTime() - t0) / 1e9);
    }
    return report;
  }
}
