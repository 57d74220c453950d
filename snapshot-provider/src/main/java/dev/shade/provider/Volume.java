package dev.shade.provider;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;

/**
 * A copy-on-write volume: an origin, a diff area of old block contents, and the snapshots
 * that share it. PLACEHOLDER SIGNATURES: implementation in progress.
 */
public final class Volume implements BlockDevice {
  private Volume() {}

  /** Creates a new volume in {@code dir} (created if missing, must be empty otherwise). */
  public static Volume create(Path dir, VolumeConfig config) throws IOException { throw new UnsupportedOperationException(); }

  /** Opens an existing volume, recovering from a crash if needed. One process at a time. */
  public static Volume open(Path dir) throws IOException { throw new UnsupportedOperationException(); }

  /** True if {@code dir} holds a volume's metadata. */
  public static boolean isVolume(Path dir) { throw new UnsupportedOperationException(); }

  public Path directory() { throw new UnsupportedOperationException(); }

  /** The volume's name: its directory's file name. */
  public String name() { throw new UnsupportedOperationException(); }

  public VolumeConfig config() { throw new UnsupportedOperationException(); }

  @Override public long size() { throw new UnsupportedOperationException(); }

  public int blockSize() { throw new UnsupportedOperationException(); }

  /** Bytes of the diff area in use by snapshots now. */
  public long diffUsedBytes() { throw new UnsupportedOperationException(); }

  @Override public void read(long offset, ByteBuffer dst) throws IOException { throw new UnsupportedOperationException(); }

  @Override public void write(long offset, ByteBuffer src) throws IOException { throw new UnsupportedOperationException(); }

  @Override public void flush() throws IOException { throw new UnsupportedOperationException(); }

  @Override public void trim(long offset, long length) throws IOException { throw new UnsupportedOperationException(); }

  @Override public void writeZeroes(long offset, long length) throws IOException { throw new UnsupportedOperationException(); }

  /** Takes a snapshot now; {@code name} null gives {@code s<id>}. Returns once durable. */
  public SnapshotInfo createSnapshot(String name) throws IOException { throw new UnsupportedOperationException(); }

  /** Takes one snapshot on each volume at the same instant (all writes to all of them held). */
  public static List<SnapshotInfo> createSnapshotSet(List<Volume> volumes, String name) throws IOException { throw new UnsupportedOperationException(); }

  /** The snapshots, oldest first. */
  public List<SnapshotInfo> snapshots() { throw new UnsupportedOperationException(); }

  public SnapshotInfo snapshot(String name) throws SnapshotNotFoundException { throw new UnsupportedOperationException(); }

  public void deleteSnapshot(String name) throws IOException { throw new UnsupportedOperationException(); }

  /** A read-only view of the snapshot; valid until the snapshot is deleted or the volume closed. */
  public BlockSource openSnapshot(String name) throws IOException { throw new UnsupportedOperationException(); }

  /**
   * The ranges that may differ between snapshot {@code from} and snapshot {@code to} (or the
   * current origin when {@code to} is null), in block units, merged and sorted. Reads no data.
   */
  public List<Range> changedRanges(String from, String to) throws IOException { throw new UnsupportedOperationException(); }

  /** What {@link #revert} to {@code name} would do, without doing it. */
  public RevertPlan planRevert(String name) throws IOException { throw new UnsupportedOperationException(); }

  /** Rolls the origin back to snapshot {@code name}; newer snapshots are deleted. Restartable. */
  public void revert(String name, Progress progress) throws IOException { throw new UnsupportedOperationException(); }

  public void addListener(VolumeListener listener) { throw new UnsupportedOperationException(); }

  @Override public void close() throws IOException { throw new UnsupportedOperationException(); }
}
