package dev.shade.provider;

import java.util.List;

/**
 * What reverting to {@code target} would do: the snapshots that will be deleted (all newer
 * ones; none for a revert that keeps them), how many bytes of the origin may be copied back
 * ({@code changedBytes}: the blocks changed since the target, which is also what the revert
 * loses), and, for a revert that keeps the newer snapshots, at most how many bytes of current
 * contents it will preserve in the diff area ({@code preservedBytes}; 0 for a plain revert).
 */
public record RevertPlan(SnapshotInfo target, List<SnapshotInfo> deleted, long changedBytes, long preservedBytes) {
  /** A plain revert's plan, which preserves nothing. */
  public RevertPlan(SnapshotInfo target, List<SnapshotInfo> deleted, long changedBytes) {
    this(target, deleted, changedBytes, 0);
  }
}
