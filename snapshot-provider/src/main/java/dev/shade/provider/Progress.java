package dev.shade.provider;

/** Receives progress of long work (revert, import, export). Called from the working thread. */
@FunctionalInterface
public interface Progress {
  /** Ignores all updates. */
  Progress NONE = (done, total) -> {};

  /** {@code done} of {@code total} bytes are finished. */
  void update(long done, long total);
}
