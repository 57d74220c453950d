package dev.shade.provider;

/** Hears about snapshots a volume deletes on its own. Called on the thread that triggered it. */
public interface VolumeListener {
  /**
   * The diff area would have overflowed, so the oldest snapshot {@code deleted} was deleted to
   * let production writes continue.
   */
  void snapshotDeletedForSpace(SnapshotInfo deleted, long diffMaxBytes);
}
