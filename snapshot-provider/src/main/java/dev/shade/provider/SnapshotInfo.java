package dev.shade.provider;

import java.time.Instant;

/**
 * What a volume knows of one snapshot.
 *
 * @param id monotonic id within the volume, never reused (not after a delete, a revert or a
 *     crash); a higher id is a newer snapshot; the members of a set share one
 * @param name unique name within the volume
 * @param created when it took effect
 * @param diffBytes bytes of old block contents held for it in the diff area
 * @param setId id shared by the snapshots of one atomic snapshot set, or null for a single one
 */
public record SnapshotInfo(long id, String name, Instant created, long diffBytes, String setId) {}
