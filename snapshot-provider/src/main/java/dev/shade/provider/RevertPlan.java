package dev.shade.provider;

import java.util.List;

/**
 * What reverting to {@code target} would do: the snapshots that will be deleted (all newer
 * ones) and how many bytes of the origin will be copied back.
 */
public record RevertPlan(SnapshotInfo target, List<SnapshotInfo> deleted, long changedBytes) {}
