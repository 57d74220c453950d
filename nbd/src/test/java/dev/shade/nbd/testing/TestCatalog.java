package dev.shade.nbd.testing;

import static dev.shade.nbd.protocol.Nbd.CONTEXT_ALLOCATION;
import static dev.shade.nbd.protocol.Nbd.CONTEXT_CHANGED;
import static dev.shade.nbd.protocol.Nbd.STATE_CHANGED;
import static dev.shade.nbd.protocol.Nbd.STATE_HOLE;
import static dev.shade.nbd.protocol.Nbd.STATE_ZERO;

import dev.shade.nbd.protocol.Extent;
import dev.shade.nbd.protocol.Nbd;
import dev.shade.nbd.server.ExportCatalog;
import dev.shade.nbd.server.NbdErrorException;
import dev.shade.nbd.server.NbdExport;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Exports for the server's own tests, held in memory: one writable disk {@code NAME} and frozen
 * copies of it taken on demand, {@code NAME@COPY} (read-only), each offering
 * {@code base:allocation} (all-zero blocks are holes) and {@code shade:changed:COPY} (blocks that
 * differ from a copy), at {@link #BLOCK} granularity.
 *
 * <p>Thread-safe for what the tests do: the byte arrays are read and written without locks, as a
 * disk is; overlapping requests in flight have no defined result. The copies are taken and
 * dropped under this object's monitor.
 */
public final class TestCatalog implements ExportCatalog {
  /** Granularity of allocation and changed-block answers: 64 KiB, a volume's default block. */
  public static final int BLOCK = 64 << 10;

  /** The disk's name, also its export name. */
  private final String name;
  /** The disk's contents. */
  private final byte[] disk;
  /** Frozen copies by name, in the order taken; replaced on change. */
  private volatile Map<String, byte[]> copies = Map.of();

  public TestCatalog(String name, long size) {
    if (size > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("a test disk holds less than 2 GiB: " + size);
    }
    this.name = name;
    this.disk = new byte[(int) size];
  }

  /** The live contents of the disk (tests write their initial data straight into it). */
  public byte[] disk() {
    return disk;
  }

  /** Freezes a copy of the disk as it is now, exported read-only as {@code NAME@copy}. */
  public synchronized void snapshot(String copy) {
    Map<String, byte[]> m = new LinkedHashMap<>(copies);
    m.put(copy, disk.clone());
    copies = m;
  }

  /** Drops a copy: its clients get EIO, new ones do not find it. */
  public synchronized void delete(String copy) {
    Map<String, byte[]> m = new LinkedHashMap<>(copies);
    m.remove(copy);
    copies = m;
  }

  /** The bytes of a frozen copy. */
  public byte[] copy(String copy) {
    return copies.get(copy);
  }

  @Override
  public NbdExport find(String export, boolean writable) {
    if (export.isEmpty() || export.equals(name)) {
      return new Disk(name, null, !writable);
    }
    if (export.startsWith(name + "@") && copies.containsKey(export.substring(name.length() + 1))) {
      return new Disk(export, export.substring(name.length() + 1), true);
    }
    return null;
  }

  @Override
  public List<Entry> list(boolean writable) {
    List<Entry> out = new ArrayList<>();
    out.add(new Entry(name, "test disk " + name));
    for (String c : copies.keySet()) {
      out.add(new Entry(name + "@" + c, "frozen copy " + c + " of test disk " + name));
    }
    return out;
  }

  /** The disk or one of its copies. */
  private final class Disk implements NbdExport {
    private final String exportName;
    /** The copy served, or null for the disk itself. */
    private final String copy;
    private final boolean readOnly;

    Disk(String exportName, String copy, boolean readOnly) {
      this.exportName = exportName;
      this.copy = copy;
      this.readOnly = readOnly;
    }

    /** The bytes this export reads: the disk, or its copy (EIO once the copy is dropped). */
    private byte[] bytes() throws NbdErrorException {
      if (copy == null) {
        return disk;
      }
      byte[] b = copies.get(copy);
      if (b == null) {
        throw new NbdErrorException(Nbd.EIO, "copy " + copy + " was dropped");
      }
      return b;
    }

    @Override
    public String name() {
      return exportName;
    }

    @Override
    public long size() {
      return disk.length;
    }

    @Override
    public boolean readOnly() {
      return readOnly;
    }

    @Override
    public String description() {
      return copy == null ? "test disk " + name : "frozen copy " + copy + " of test disk " + name;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws NbdErrorException {
      dst.put(bytes(), (int) offset, dst.remaining());
    }

    @Override
    public void write(long offset, ByteBuffer src, boolean fua) {
      src.get(disk, (int) offset, src.remaining());
    }

    @Override
    public void trim(long offset, long length, boolean fua) {
      Arrays.fill(disk, (int) offset, (int) (offset + length), (byte) 0);
    }

    @Override
    public void writeZeroes(long offset, long length, boolean mayTrim, boolean fua) {
      Arrays.fill(disk, (int) offset, (int) (offset + length), (byte) 0);
    }

    @Override
    public List<String> metaContexts(String query) {
      List<String> offered = new ArrayList<>();
      offered.add(CONTEXT_ALLOCATION);
      for (String c : copies.keySet()) {
        offered.add(CONTEXT_CHANGED + c);
      }
      return NbdExport.matching(offered, query);
    }

    @Override
    public boolean offersMetaContext(String context) {
      return context.equals(CONTEXT_ALLOCATION)
          || context.startsWith(CONTEXT_CHANGED) && copies.containsKey(context.substring(CONTEXT_CHANGED.length()));
    }

    @Override
    public List<Extent> extents(String context, long offset, long length) throws NbdErrorException {
      byte[] mine = bytes();
      byte[] base = null;
      if (!context.equals(CONTEXT_ALLOCATION)) {
        base = copies.get(context.substring(CONTEXT_CHANGED.length()));
        if (base == null) {
          throw new NbdErrorException(Nbd.EIO, context + ": the copy was dropped");
        }
      }
      List<Extent> out = new ArrayList<>();
      long end = offset + length;
      long pos = offset;
      while (pos < end) {
        long blockEnd = Math.min(end, (pos / BLOCK + 1) * BLOCK);
        int flags;
        if (base == null) {
          boolean zero = true;
          for (long i = pos / BLOCK * BLOCK; i < Math.min(disk.length, (pos / BLOCK + 1) * BLOCK) && zero; i++) {
            zero = mine[(int) i] == 0;
          }
          flags = zero ? STATE_HOLE | STATE_ZERO : 0;
        } else {
          int lo = (int) (pos / BLOCK * BLOCK);
          int hi = (int) Math.min(disk.length, lo + (long) BLOCK);
          flags = Arrays.equals(mine, lo, hi, base, lo, hi) ? 0 : STATE_CHANGED;
        }
        Extent last = out.isEmpty() ? null : out.get(out.size() - 1);
        if (last != null && last.flags() == flags) {
          out.set(out.size() - 1, new Extent(last.offset(), blockEnd - last.offset(), flags));
        } else {
          out.add(new Extent(pos, blockEnd - pos, flags));
        }
        pos = blockEnd;
      }
      return out;
    }

    @Override
    public boolean cached(long offset, int length) {
      return true;
    }

    @Override
    public ByteBuffer residentView(long offset, int length) {
      return copy == null ? ByteBuffer.wrap(disk, (int) offset, length).slice().asReadOnlyBuffer() : null;
    }

    @Override
    public boolean cheapWrite(long offset, long length) {
      return !readOnly;
    }

    @Override
    public String toString() {
      return "test export " + exportName;
    }
  }
}
