package dev.shade.offhost.backup;

/** Told how far a backup or restore is, in bytes of image data; called from the working thread. */
@FunctionalInterface
public interface BackupProgress {
  BackupProgress NONE = (done, total) -> { };

  void update(long done, long total);
}
