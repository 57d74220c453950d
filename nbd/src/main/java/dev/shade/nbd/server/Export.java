package dev.shade.nbd.server;

import dev.shade.nbd.protocol.Nbd;
import dev.shade.provider.BlockSource;
import dev.shade.provider.Extent;
import dev.shade.provider.Range;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.format.DateTimeFormatter;
import java.util.List;

/**
 * One thing a client can attach to: a volume's origin ({@code NAME}, read-write) or one of its
 * snapshots ({@code NAME@SNAPSHOT}, read-only).
 */
final class Export {
  final String name;
  final Volume volume;
  /** The snapshot served, or null for the origin. */
  final String snapshot;
  /** Where reads go: the volume itself or a snapshot view. */
  final BlockSource source;
  /** True when writes are refused. */
  final boolean readOnly;
  final String description;

  private Export(String name, Volume volume, String snapshot, BlockSource source, boolean readOnly, String description) {
    this.name = name;
    this.volume = volume;
    this.snapshot = snapshot;
    this.source = source;
    this.readOnly = readOnly;
    this.description = description;
  }

  static Export origin(Volume v, boolean readOnly) {
    return new Export(v.name(), v, null, v, readOnly,
        "shade volume " + v.name() + ": current contents" + (readOnly ? " (read-only here)" : ""));
  }

  static Export snapshot(Volume v, SnapshotInfo s) throws IOException {
    return new Export(v.name() + "@" + s.name(), v, s.name(), v.openSnapshot(s.name()), true,
        "shade volume " + v.name() + ": snapshot " + s.name() + " taken "
            + DateTimeFormatter.ISO_INSTANT.format(s.created()));
  }

  long size() {
    return source.size();
  }

  int transmissionFlags() {
    int f = Nbd.FLAG_HAS_FLAGS | Nbd.FLAG_SEND_DF | Nbd.FLAG_CAN_MULTI_CONN | Nbd.FLAG_SEND_FLUSH;
    if (readOnly) {
      return f | Nbd.FLAG_READ_ONLY;
    }
    // one process, one page cache and one journal: a flush on any connection covers writes
    // acknowledged on every connection, which is what CAN_MULTI_CONN promises
    return f | Nbd.FLAG_SEND_FUA | Nbd.FLAG_SEND_TRIM | Nbd.FLAG_SEND_WRITE_ZEROES;
  }

  /** Whether a write to the range completes without a copy and a sync (page-cache speed). */
  boolean cheapWrite(long offset, long length) {
    return !readOnly && offset >= 0 && length <= size() - offset && !volume.needsCopy(offset, length);
  }

  /** Whether a read of the range would be served from memory (no disk wait). */
  boolean cached(long offset, int length) {
    return volume.isCached(offset, length);
  }

  /** The origin's cached bytes of the range, to send without a copy; null for snapshots or when not cached. */
  ByteBuffer residentView(long offset, int length) {
    return snapshot == null ? volume.residentView(offset, length) : null;
  }

  List<Extent> allocation(long offset, long length) throws IOException {
    return volume.allocation(snapshot, offset, length);
  }

  /** Ranges that differ between snapshot {@code from} and this export. */
  List<Range> changedSince(String from) throws IOException {
    return volume.changedRanges(from, snapshot);
  }

  @Override
  public String toString() {
    return "export " + name;
  }
}
