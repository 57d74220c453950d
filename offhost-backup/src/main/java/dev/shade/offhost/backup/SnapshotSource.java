package dev.shade.offhost.backup;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * A snapshot to back up: what it is, where its data is, what changed since an earlier snapshot,
 * and its bytes. {@link NbdSnapshotSource} is the agent's NBD export.
 *
 * <p>Implementations need not be thread-safe: one backup uses a source from one thread.
 */
public interface SnapshotSource extends Closeable {
  /** The snapshot served. */
  SnapshotIdentity identity();

  /** What messages name: the snapshot, and where it is read from when the source knows. */
  default String describe() {
    return identity().toString();
  }

  /** The ranges that may hold data, in order (holes and known-zero ranges left out). */
  List<Range> allocated() throws IOException;

  /**
   * The ranges that differ from the snapshot of id {@code baseSnapshotId}, in order; empty when
   * that snapshot no longer exists on the production host.
   */
  Optional<List<Range>> changedSince(long baseSnapshotId) throws IOException;

  /** How often the source's connection broke and it reconnected to read again; 0 for a source without connections. */
  default int reconnects() {
    return 0;
  }

  /** Fills {@code dst}'s remaining bytes from {@code offset}. */
  void read(long offset, ByteBuffer dst) throws IOException;

  /**
   * Starts filling {@code dst}'s remaining bytes from {@code offset}, so that several reads can
   * be in flight; the default reads at once.
   */
  default CompletableFuture<Void> readAsync(long offset, ByteBuffer dst) throws IOException {
    read(offset, dst);
    return CompletableFuture.completedFuture(null);
  }
}
