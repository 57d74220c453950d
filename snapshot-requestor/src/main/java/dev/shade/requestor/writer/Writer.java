package dev.shade.requestor.writer;

import java.io.IOException;
import java.time.Duration;
import java.util.Map;

/**
 * One application or filesystem whose data a snapshot must catch in a consistent state: the
 * VSS writer of shade's requestor protocol (DESIGN.md, "Requestor protocol").
 *
 * <p>A snapshot runs, for every writer of the set, {@link #identify} → {@link #prepare} →
 * {@link #freeze} (applications first, filesystems last) → the provider commits the snapshot
 * set → {@link #thaw} (filesystems first) → {@link #postSnapshot}. Any failure aborts: every
 * writer that got as far as {@code prepare} gets {@link #abort}, and every writer whose
 * {@code freeze} was called (even when it failed) gets {@code thaw} first. Steps after a
 * failure never throw past the requestor; they are reported.
 *
 * <p>Later, when the off-host service has the snapshot safely on tape, a writer built from
 * the same spec gets {@link #backupComplete} with the metadata it returned. For rollback,
 * {@link #stop} and {@link #start} take the application off the volume and back.
 *
 * <p>An instance serves one snapshot (or one rollback) and its steps are called by one thread,
 * one after the other, with one exception: the freeze lease may call {@link #abort} from another
 * thread while {@link #freeze} still runs, to interrupt it (kill a hung hook), and then calls
 * {@link #thaw} once that freeze has returned. {@link #close} releases what it holds
 * (connections, locks) whatever state it is in.
 */
public interface Writer extends AutoCloseable {
  /** The spec this writer was made from, e.g. {@code fs:/srv/pg}; names it in reports. */
  String spec();

  /**
   * True for writers that freeze a filesystem: they freeze after and thaw before the
   * application writers.
   */
  default boolean isFilesystem() {
    return false;
  }

  /**
   * Checks the writer can act (the mount point is mounted, the database answers, the hook
   * directory exists) and returns facts for the report (e.g. the PostgreSQL version and data
   * directory). Changes nothing.
   */
  Map<String, Object> identify() throws IOException;

  /** Gets ready without blocking writes yet (e.g. {@code pg_backup_start}, a checkpoint). */
  void prepare() throws IOException;

  /**
   * Stops writes or makes the files consistent. Must return well within {@code limit}; the
   * freeze lease thaws by itself when it passes.
   */
  void freeze(Duration limit) throws IOException;

  /** Lets writes go on. Safe to call after a failed or partial freeze, and twice. */
  void thaw() throws IOException;

  /**
   * After the thaw: finishes the backup and returns the writer metadata that belongs with the
   * snapshot without being in its blocks (PostgreSQL's {@code backup_label}), or an empty
   * metadata.
   */
  WriterMetadata postSnapshot() throws IOException;

  /** Releases everything after a failure in any phase. Safe in any state, never throws. */
  void abort();

  /**
   * The snapshot this writer's {@code metadata} came with is safely on tape: the writer may
   * release what that snapshot no longer needs (old WAL, transaction logs).
   */
  default void backupComplete(WriterMetadata metadata) throws IOException {}

  /** Takes the application off the volume before a rollback (stop the database, unmount). */
  default void stop() throws IOException {
    throw new UnsupportedOperationException(spec() + " has no stop step");
  }

  /** Brings it back after the rollback, as {@link #stop} found it. */
  default void start() throws IOException {
    throw new UnsupportedOperationException(spec() + " has no start step");
  }

  @Override
  void close();
}
