package dev.shade.requestor.export;

import dev.shade.nativeio.AlreadyClosedException;
import dev.shade.nativeio.NoSpaceException;
import dev.shade.nativeio.PermissionException;
import dev.shade.nbd.protocol.Extent;
import dev.shade.nbd.protocol.Nbd;
import dev.shade.nbd.server.NbdErrorException;
import dev.shade.nbd.server.NbdExport;
import dev.shade.provider.BlockSource;
import dev.shade.provider.PinnedBytes;
import dev.shade.provider.Range;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.SnapshotRef;
import dev.shade.provider.SnapshotNotFoundException;
import dev.shade.provider.Volume;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;

/**
 * A volume's origin (read-write, or read-only for a peer that may not write) or one of its
 * snapshots (read-only) as an NBD export.
 *
 * <p>Thread-safe: every call goes to the volume, which is.
 */
final class VolumeExport implements NbdExport {
  /*
   * Failures of the provider become the NBD errors a client can act on: a full disk ENOSPC, a
   * refused write EPERM, a closed volume (detached from the agent) ESHUTDOWN, and a snapshot
   * deleted under its client EIO with a message saying so. Everything else is the server's EIO.
   *
   * Meta contexts: base:allocation from Volume.allocation, and shade:changed:FROM for every
   * snapshot FROM of the volume, named by its name or as id=ID, from Volume.changedRanges (the
   * exception tables: no data is read).
   */
  /** Query prefix of the changed-block contexts. */
  private static final String CHANGED = Nbd.CONTEXT_CHANGED;
  /** Prefix of a snapshot named by its stable id, in export names and changed contexts. */
  static final String ID_PREFIX = "id=";

  /** The volume served. */
  private final Volume volume;
  /** The snapshot served, or null for the origin. */
  private final SnapshotInfo snapshot;
  /** Where reads go: the volume itself or a view of the snapshot. */
  private final BlockSource source;
  /** The snapshot served by id, or null for the origin. */
  private final SnapshotRef snapshotRef;
  /** True when writes are refused. */
  private final boolean readOnly;
  /** Canonical name: NAME or NAME@SNAPSHOT. */
  private final String name;

  private VolumeExport(Volume volume, SnapshotInfo snapshot, BlockSource source, boolean readOnly) {
    this.volume = volume;
    this.snapshot = snapshot;
    this.snapshotRef = snapshot == null ? null : SnapshotRef.ofId(snapshot.id());
    this.source = source;
    this.readOnly = readOnly;
    this.name = snapshot == null ? volume.name() : volume.name() + "@" + snapshot.name();
  }

  static VolumeExport origin(Volume v, boolean readOnly) {
    return new VolumeExport(v, null, v, readOnly);
  }

  static VolumeExport snapshot(Volume v, SnapshotInfo s) throws IOException {
    return new VolumeExport(v, s, v.openSnapshot(SnapshotRef.ofId(s.id())), true);
  }

  Volume volume() {
    return volume;
  }

  /**
   * The one-line JSON description of an export (NBD_INFO_DESCRIPTION, the NBD_OPT_LIST entry):
   * {@code {"volume":NAME,"volumeUuid":UUID,"snapshot":NAME|null,"snapshotId":ID|null,
   * "created":ISO-8601|null,"size":N,"blockSize":N}} ({@code blockSize}: the volume's
   * copy-on-write block, which a volume restored from a backup of the export gets).
   */
  static String describe(Volume v, SnapshotInfo s) {
    StringBuilder b = new StringBuilder(160);
    b.append("{\"volume\":");
    quote(b, v.name());
    b.append(",\"volumeUuid\":");
    quote(b, v.uuid());
    b.append(",\"snapshot\":");
    if (s == null) {
      b.append("null,\"snapshotId\":null,\"created\":null");
    } else {
      quote(b, s.name());
      b.append(",\"snapshotId\":").append(s.id()).append(",\"created\":");
      quote(b, DateTimeFormatter.ISO_INSTANT.format(s.created()));
    }
    return b.append(",\"size\":").append(v.size()).append(",\"blockSize\":").append(v.blockSize()).append('}')
        .toString();
  }

  /** Appends {@code s} as a JSON string. */
  private static void quote(StringBuilder b, String s) {
    b.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '"' || c == '\\') {
        b.append('\\').append(c);
      } else if (c < 0x20 || c == 0x2028 || c == 0x2029) {
        b.append(String.format("\\u%04x", (int) c));
      } else {
        b.append(c);
      }
    }
    b.append('"');
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public long size() {
    return source.size();
  }

  @Override
  public boolean readOnly() {
    return readOnly;
  }

  @Override
  public String description() {
    return describe(volume, snapshot);
  }

  @Override
  public void read(long offset, ByteBuffer dst) throws IOException {
    try {
      source.read(offset, dst);
    } catch (IOException | RuntimeException e) {
      throw translate(e);
    }
  }

  @Override
  public void write(long offset, ByteBuffer src, boolean fua) throws IOException {
    try {
      volume.write(offset, src);
      if (fua) {
        volume.flush();
      }
    } catch (IOException | RuntimeException e) {
      throw translate(e);
    }
  }

  @Override
  public void flush() throws IOException {
    try {
      volume.flush();
    } catch (IOException | RuntimeException e) {
      throw translate(e);
    }
  }

  @Override
  public void trim(long offset, long length, boolean fua) throws IOException {
    try {
      volume.trim(offset, length);
      if (fua) {
        volume.flush();
      }
    } catch (IOException | RuntimeException e) {
      throw translate(e);
    }
  }

  @Override
  public void writeZeroes(long offset, long length, boolean mayTrim, boolean fua) throws IOException {
    try {
      if (mayTrim) {
        volume.trim(offset, length); // reads back as zeros and frees the space
      } else {
        volume.writeZeroes(offset, length);
      }
      if (fua) {
        volume.flush();
      }
    } catch (IOException | RuntimeException e) {
      throw translate(e);
    }
  }

  @Override
  public List<String> metaContexts(String query) {
    if (query != null && !query.endsWith(":")) {
      return offersMetaContext(query) ? List.of(query) : List.of();
    }
    List<String> offered = new ArrayList<>();
    offered.add(Nbd.CONTEXT_ALLOCATION);
    for (SnapshotInfo s : volume.snapshots()) {
      offered.add(CHANGED + s.name());
    }
    return NbdExport.matching(offered, query);
  }

  @Override
  public boolean offersMetaContext(String context) {
    if (Nbd.CONTEXT_ALLOCATION.equals(context)) {
      return true;
    }
    return context.startsWith(CHANGED) && VolumeExports.snapshot(volume, context.substring(CHANGED.length())) != null;
  }

  @Override
  public List<Extent> extents(String context, long offset, long length) throws IOException {
    try {
      if (Nbd.CONTEXT_ALLOCATION.equals(context)) {
        List<Extent> out = new ArrayList<>();
        for (dev.shade.provider.Extent x : volume.allocationOf(snapshot == null ? null : SnapshotRef.ofId(snapshot.id()), offset, length)) {
          out.add(new Extent(x.offset(), x.length(), x.zero() ? Nbd.STATE_HOLE | Nbd.STATE_ZERO : 0));
        }
        return out;
      }
      String from = context.substring(CHANGED.length());
      SnapshotInfo s = VolumeExports.snapshot(volume, from);
      if (s == null) {
        throw new NbdErrorException(Nbd.EIO, "snapshot " + from + " of " + context + " was deleted from volume " + volume.name());
      }
      return changed(changedRanges(s, snapshot, offset, length), offset, length);
    } catch (IOException | RuntimeException e) {
      throw translate(e);
    }
  }

  /**
   * The ranges that differ between snapshot {@code from} and {@code to} (null: the origin) that
   * meet [offset, offset + length), clipped to it, sorted: the provider answers for the window
   * alone, so a BLOCK_STATUS request costs what its window holds, not what the volume holds.
   * Snapshots are named by id, so a name reused after a delete cannot change what an attached
   * client sees.
   */
  private List<Range> changedRanges(SnapshotInfo from, SnapshotInfo to, long offset, long length) throws IOException {
    return volume.changedRanges(SnapshotRef.ofId(from.id()), to == null ? null : SnapshotRef.ofId(to.id()), offset, length);
  }

  /** Extents of [offset, offset + length) alternating changed ({@code STATE_CHANGED}) and unchanged (0). */
  private static List<Extent> changed(List<Range> ranges, long offset, long length) {
    List<Extent> out = new ArrayList<>();
    long pos = offset;
    long end = offset + length;
    for (Range x : ranges) {
      if (x.offset() > pos) {
        out.add(new Extent(pos, x.offset() - pos, 0));
      }
      long start = Math.max(pos, x.offset());
      if (x.end() > start) {
        out.add(new Extent(start, x.end() - start, Nbd.STATE_CHANGED));
        pos = x.end();
      }
    }
    if (pos < end) {
      out.add(new Extent(pos, end - pos, 0));
    }
    return out;
  }

  @Override
  public boolean cached(long offset, int length) {
    return volume.isCached(offset, length);
  }

  @Override
  public ByteBuffer residentView(long offset, int length) {
    return snapshot == null ? volume.residentView(offset, length) : null;
  }

  /**
   * The origin: its resident view (live bytes, as any read racing a write). A snapshot: its
   * blocks pinned where they live (diff area or origin, see {@link Volume#pinSnapshotBytes}), so
   * a write to the origin during the send cannot show through; null when not all in memory.
   */
  @Override
  public SendView sendView(long offset, int length) {
    if (snapshot == null) {
      return NbdExport.super.sendView(offset, length); // residentView, the origin's
    }
    PinnedBytes p = volume.pinSnapshotBytes(snapshotRef, offset, length);
    return p == null ? null : new PinnedSend(p);
  }

  /** A snapshot's pinned bytes as the server's send view. */
  private static final class PinnedSend implements SendView {
    /** The pinned range; released with this view. */
    private final PinnedBytes pinned;

    PinnedSend(PinnedBytes pinned) {
      this.pinned = pinned;
    }

    @Override
    public ByteBuffer[] buffers() {
      return pinned.buffers();
    }

    @Override
    public void release() {
      pinned.release();
    }

    @Override
    public void whenWanted(Runnable callback) {
      pinned.whenWanted(callback);
    }
  }

  @Override
  public boolean cheapWrite(long offset, long length) {
    return !readOnly && !volume.needsCopy(offset, length);
  }

  @Override
  public void close() throws IOException {
    if (snapshot != null) {
      source.close();
    }
  }

  /** The NBD error a provider failure calls for; others pass through as they are. */
  private Exception translateInner(Exception e) {
    if (e instanceof SnapshotNotFoundException) {
      return new NbdErrorException(Nbd.EIO, "the snapshot of export " + name + " was deleted: " + e.getMessage(), e);
    }
    if (e instanceof NoSpaceException) {
      return new NbdErrorException(Nbd.ENOSPC, e.getMessage(), e);
    }
    if (e instanceof PermissionException) {
      return new NbdErrorException(Nbd.EPERM, e.getMessage(), e);
    }
    if (e instanceof AlreadyClosedException) {
      return new NbdErrorException(Nbd.ESHUTDOWN, "volume " + volume.name() + " is closed: " + e.getMessage(), e);
    }
    return e;
  }

  /** Translates, rethrowing a RuntimeException that calls for no NBD error as it is. */
  private IOException translate(Exception e) {
    Exception t = translateInner(e);
    if (t instanceof IOException) {
      return (IOException) t;
    }
    throw (RuntimeException) t;
  }

  @Override
  public String toString() {
    return "export " + name + " of volume " + volume.name();
  }
}
