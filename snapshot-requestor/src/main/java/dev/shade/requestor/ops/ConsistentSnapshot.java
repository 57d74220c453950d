package dev.shade.requestor.ops;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.provider.PreparedSnapshotSet;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.SnapshotRef;
import dev.shade.provider.SnapshotSet;
import dev.shade.provider.Volume;
import dev.shade.requestor.lease.FreezeLease;
import dev.shade.requestor.lease.GuardPool;
import dev.shade.requestor.writer.WriterMetadata;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An application-consistent snapshot set: identify → prepare → freeze → commit → thaw →
 * post-snapshot over the given writers and volumes, with the freeze held as a lease by a guard
 * process ({@link FreezeLease}), aborting and thawing on any failure in any phase.
 *
 * <p>The snapshots are committed with the attribute {@value #STATE} = {@value #PENDING} in their
 * create record, which is replaced by the writers' metadata ({@value WriterMetadata#ATTRIBUTE})
 * and the time they were frozen ({@value #FROZEN_MS}) once every writer has thawed within the
 * lease and finished post-snapshot. A snapshot still
 * pending is one whose requestor stopped midway (it was killed, or the lease expired and the
 * discard failed): it may not be consistent, and {@link #discardUnfinished} deletes it when its
 * volumes are next opened. Thread-safe: every call is on its own lease.
 */
public final class ConsistentSnapshot {
  /** The attribute that marks a snapshot whose writers have not finished. */
  public static final String STATE = "shade.requestor";
  public static final String PENDING = "pending";
  /** The attribute recording how long the writers were frozen for the snapshot (ms, first freeze to last thaw). */
  public static final String FROZEN_MS = "shade.freezeMs";
  /** Default of {@code --freeze-timeout}. */
  public static final Duration DEFAULT_FREEZE_TIMEOUT = Duration.ofSeconds(5);

  private static final Logger log = LoggerFactory.getLogger(ConsistentSnapshot.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  /** The most the provider's hold of the I/O may take, within what is left of the lease. */
  private static final Duration MAX_HOLD = Duration.ofSeconds(5);

  private ConsistentSnapshot() {}

  /**
   * Takes the set. Returns the document of {@code snapshot-create} ({@code setId},
   * {@code snapshots}) plus {@code writers} (each writer's identify facts, phase durations and
   * metadata), {@code freezeMs} (first freeze to last thaw, measured in the guard),
   * {@code freezeTimeoutMs}, {@code commitMs} and {@code totalMs}.
   *
   * @throws IOException when any phase fails: nothing stays frozen and no snapshot is kept
   */
  public static Map<String, Object> take(List<Volume> volumes, List<String> writers, String name,
      Duration freezeTimeout, Map<String, String> attributes) throws IOException {
    return take(volumes, writers, name, freezeTimeout, attributes, GuardPool.none());
  }

  /** As {@link #take(List, List, String, Duration, Map)}, with the lease's guard from {@code guards}. */
  public static Map<String, Object> take(List<Volume> volumes, List<String> writers, String name,
      Duration freezeTimeout, Map<String, String> attributes, GuardPool guards) throws IOException {
    long t0 = System.nanoTime();
    FreezeLease lease = FreezeLease.start(writers, freezeTimeout, guards);
    PreparedSnapshotSet set = null;
    List<SnapshotInfo> taken = null;
    boolean done = false;
    try {
      JsonNode prepared = lease.prepare();
      set = SnapshotSet.prepare(volumes);
      long freezeStart = System.nanoTime();
      JsonNode frozen = lease.freeze();
      Duration left = freezeTimeout.minusNanos(System.nanoTime() - freezeStart);
      Duration hold = left.compareTo(MAX_HOLD) < 0 ? left : MAX_HOLD;
      if (hold.isNegative() || hold.isZero()) {
        throw new IOException("the writers took the whole freeze timeout of " + freezeTimeout.toMillis()
            + " ms to freeze; no snapshot was taken");
      }
      Map<String, String> pending = new LinkedHashMap<>(attributes);
      pending.put(STATE, PENDING);
      long c0 = System.nanoTime();
      // the switch only: the writers' freeze flushed the filesystems, and the durable part waits
      // until they are thawed (the pending mark covers a crash in between)
      taken = set.commitDeferringDurability(name, hold, pending);
      long commitNanos = System.nanoTime() - c0;
      JsonNode thawed;
      try {
        thawed = lease.thaw();
      } catch (FreezeLease.LeaseExpiredException e) {
        throw new IOException(e.getMessage() + "; the snapshot '" + taken.get(0).name()
            + "' was discarded, as it may not be consistent", e);
      }
      long d0 = System.nanoTime();
      set.makeDurable();
      long durableNanos = System.nanoTime() - d0;
      Map<String, String> finalAttributes = new LinkedHashMap<>(attributes);
      finalAttributes.put(WriterMetadata.ATTRIBUTE, thawed.path("metadata").toString());
      finalAttributes.put(FROZEN_MS, thawed.path("frozenMs").asText());
      List<SnapshotInfo> finished = new ArrayList<>();
      for (int i = 0; i < volumes.size(); i++) {
        finished.add(volumes.get(i).setSnapshotAttributes(SnapshotRef.ofId(taken.get(i).id()), finalAttributes));
      }
      done = true;
      return report(volumes, finished, lease, prepared, frozen, thawed, freezeTimeout, commitNanos, durableNanos,
          System.nanoTime() - t0);
    } finally {
      if (!done) {
        lease.abort();
        if (taken != null) {
          discard(volumes, taken);
        } else if (set != null) {
          set.abort();
        }
      } else {
        lease.close();
      }
    }
  }

  private static void discard(List<Volume> volumes, List<SnapshotInfo> taken) {
    for (int i = 0; i < volumes.size(); i++) {
      try {
        volumes.get(i).deleteSnapshot(SnapshotRef.ofId(taken.get(i).id()));
      } catch (IOException | RuntimeException e) {
        log.error("could not discard snapshot '{}' of {} after a failed consistent snapshot ({}); it stays marked {}={} "
            + "and is deleted when the volume is next opened", taken.get(i).name(), volumes.get(i).directory(),
            e.getMessage(), STATE, PENDING);
      }
    }
  }

  /**
   * Deletes the snapshots of {@code volumes} whose requestor never finished them (marked
   * {@value #STATE} = {@value #PENDING}) and returns them. Call only where no consistent
   * snapshot of these volumes is in progress: when the agent opens or attaches a volume.
   */
  public static List<Map<String, Object>> discardUnfinished(List<Volume> volumes) throws IOException {
    List<Map<String, Object>> out = new ArrayList<>();
    for (Volume v : volumes) {
      for (SnapshotInfo s : v.snapshots()) {
        if (PENDING.equals(s.attributes().get(STATE))) {
          v.deleteSnapshot(SnapshotRef.ofId(s.id()));
          log.warn("discarded snapshot '{}' (id {}) of {}: its writers never finished (the requestor stopped during "
              + "the snapshot), so it may not be consistent", s.name(), s.id(), v.directory());
          Map<String, Object> m = new LinkedHashMap<>();
          m.put("volume", v.name());
          m.put("volumeUuid", v.uuid());
          m.putAll(VolumeCommands.snapshot(s));
          m.put("reason", "writers never finished");
          out.add(m);
        }
      }
    }
    return out;
  }

  private static Map<String, Object> report(List<Volume> volumes, List<SnapshotInfo> taken, FreezeLease lease,
      JsonNode prepared, JsonNode frozen, JsonNode thawed, Duration freezeTimeout, long commitNanos, long durableNanos,
      long totalNanos) {
    Map<String, Object> doc = VolumeCommands.created(volumes, taken);
    List<Map<String, Object>> ws = new ArrayList<>();
    int i = 0;
    for (JsonNode id : lease.identified()) {
      String spec = id.path("writer").asText();
      Map<String, Object> w = new LinkedHashMap<>();
      w.put("writer", spec);
      w.put("identify", JSON.convertValue(id.path("identify"), Map.class));
      Map<String, Object> phases = new LinkedHashMap<>();
      phases.put("identifyMs", id.path("identifyMs").asDouble());
      phases.put("prepareMs", prepared.path("prepareMs").path(spec).asDouble());
      phases.put("freezeMs", frozen.path("freezeMs").path(spec).asDouble());
      phases.put("thawMs", thawed.path("thawMs").path(spec).asDouble());
      phases.put("postSnapshotMs", thawed.path("postSnapshotMs").path(spec).asDouble());
      w.put("phases", phases);
      w.put("metadata", JSON.convertValue(thawed.path("metadata").path(i), Map.class));
      ws.add(w);
      i++;
    }
    doc.put("writers", ws);
    doc.put("freezeMs", thawed.path("frozenMs").asDouble());
    doc.put("freezeTimeoutMs", freezeTimeout.toMillis());
    doc.put("commitMs", Math.round(commitNanos / 10_000.0) / 100.0);
    doc.put("durableMs", Math.round(durableNanos / 10_000.0) / 100.0);
    doc.put("totalMs", Math.round(totalNanos / 10_000.0) / 100.0);
    return doc;
  }
}
