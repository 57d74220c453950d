package dev.shade.provider;

import java.time.Instant;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a volume knows of one snapshot.
 *
 * @param id monotonic id within the volume, never reused (not after a delete, a revert or a
 *     crash); a higher id is a newer snapshot; the members of a set share one
 * @param name unique name within the volume
 * @param created when it took effect
 * @param diffBytes bytes of old block contents held for it in the diff area
 * @param setId id shared by the snapshots of one atomic snapshot set, or null for a single one
 * @param attributes the snapshot's durable attributes (writer metadata, who made it), in the
 *     order they were given; unmodifiable, never null, empty when it has none
 */
public record SnapshotInfo(long id, String name, Instant created, long diffBytes, String setId,
    Map<String, String> attributes) {
  public SnapshotInfo {
    attributes = attributes == null || attributes.isEmpty() ? Map.of()
        : Collections.unmodifiableMap(new LinkedHashMap<>(attributes));
  }

  /** A snapshot without attributes. */
  public SnapshotInfo(long id, String name, Instant created, long diffBytes, String setId) {
    this(id, name, created, diffBytes, setId, Map.of());
  }
}
