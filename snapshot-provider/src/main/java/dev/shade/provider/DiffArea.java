package dev.shade.provider;

import dev.shade.nativeio.Errno;
import dev.shade.nativeio.ErrnoException;
import dev.shade.nativeio.FileHandle;
import dev.shade.nativeio.MappedFile;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.BitSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The diff area: a file of block-sized slots that hold old block contents, with a slot
 * allocator bounded by the configured maximum.
 *
 * <p>Thread-safe: the allocator is guarded by this object's monitor; slot contents are written
 * by the one thread that allocated the slot and read only after it is published.
 */
final class DiffArea implements Closeable {
  /*
   * The file is as long as the limit and sparse. Slots are handed out lowest-first, and only
   * from the "formatted" prefix of the file: bytes that hold real, synced zeros (or slot data).
   * A copy into a formatted slot overwrites allocated disk blocks, so the sync that makes it
   * durable carries no block allocation or unwritten-extent conversion; measured on ext4, 1 MiB
   * copies synced one by one ran 5-8x faster into formatted space than into holes or fallocated
   * space. Like the VSS diff area, which is preallocated in large increments, the first
   * RESERVE bytes are formatted when the volume is created, and a background thread keeps
   * RESERVE bytes formatted ahead of the highest slot in use. A writer that outruns it formats
   * the next step itself. Only bytes above every live slot are ever zeroed, and the formatted
   * prefix is found again on open as the file's first hole.
   *
   * Copies are written with pwrite and read through the shared mapping (as LMDB does by
   * default): a store into a mapped page that writeback has cleaned takes a write fault, and
   * ext4's page_mkwrite made mapped stores about 10x slower than pwrite of the same bytes.
   * Aligned copies go through a second descriptor opened with O_DIRECT: the copy must reach
   * the device before its journal frame is synced anyway, and a direct write does that in one
   * step, from the caller's buffer, without a page-cache copy and a separate writeback (as
   * PostgreSQL and InnoDB write their logs). It also keeps old blocks, which are rarely read
   * again, out of the production server's page cache. The kernel writes back and drops any
   * cached pages of the range around a direct write, so reads through the mapping stay
   * coherent. Filesystems that refuse O_DIRECT (EINVAL) get buffered copies.
   *
   * Which slots are in use is not stored: it is derived from the snapshot tables on open. A
   * freed slot is reused only after the journal record that freed it is durable (the volume
   * frees slots only after syncing the delete), so a crash can never find a live entry whose
   * slot was overwritten.
   */
  private static final Logger LOG = LoggerFactory.getLogger(DiffArea.class);
  /** The formatted prefix grows in steps of at most this many bytes. */
  static final long FORMAT_STEP = 64L << 20;
  /** Formatted space kept ready ahead of the highest slot in use (a quarter of a small area). */
  static final long RESERVE = 256L << 20;

  /** O_DIRECT needs buffer address, file offset and length aligned to the logical block size; a page covers all. */
  static final int DIRECT_ALIGN = 4096;

  private final FileHandle file;
  /** The same file opened with O_DIRECT, or null when the filesystem refuses it. */
  private volatile FileHandle direct;
  private final MappedFile map;
  private final int blockSize;
  /** Number of slots the limit allows. */
  private final int capacity;
  /** Formats ahead of the writers; one task at a time. */
  private final ExecutorService formatter;

  // guarded by this
  /** Slots holding live snapshot data. */
  private final BitSet used = new BitSet();
  /** Count of set bits in {@link #used}. */
  private int usedCount;
  /** Slots promised to writers that have not allocated them yet. */
  private int reserved;
  /** Lowest slot that may be free. */
  private int searchFrom;
  /** Bytes at the start of the file that hold synced zeros or slot data; see above. */
  private long formatted;
  /** True while a background format task is queued or running. */
  private boolean formatQueued;
  /** Serialises formatting. */
  private final Object formatLock = new Object();

  DiffArea(FileHandle file, FileHandle direct, MappedFile map, int blockSize, long limit) {
    this.file = file;
    this.direct = direct;
    this.map = map;
    this.blockSize = blockSize;
    this.capacity = (int) Math.min(Integer.MAX_VALUE, limit / blockSize);
    this.formatter = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "diff-area-format " + file.path().getFileName());
      t.setDaemon(true);
      return t;
    });
  }

  /** Formats the reserve of a new diff area file. */
  static void formatNew(FileHandle file, long length) throws IOException {
    file.writeZeros(0, reserve(length));
    file.fdatasync();
  }

  private static long reserve(long length) {
    return Math.min(RESERVE, length / 4);
  }

  int capacity() {
    return capacity;
  }

  synchronized long usedBytes() {
    return (long) usedCount * blockSize;
  }

  synchronized int usedSlots() {
    return usedCount;
  }

  /** Marks a slot live while rebuilding state on open. */
  synchronized void markUsed(int slot) throws VolumeException {
    if (slot < 0 || slot >= capacity) {
      throw new VolumeException("diff slot " + slot + " is outside the diff area of " + capacity + " slots: " + file.path());
    }
    if (used.get(slot)) {
      throw new VolumeException("diff slot " + slot + " is claimed twice: " + file.path());
    }
    used.set(slot);
    usedCount++;
  }

  /**
   * After open: the formatted prefix ends at the file's first hole (formatting and copies
   * write it contiguously from 0), and never below the highest live slot.
   */
  void afterRecovery() throws IOException {
    long hole = file.nextHole(0);
    synchronized (this) {
      long live = (long) used.length() * blockSize;
      formatted = Math.max(live, Math.min(map.length(), hole < 0 ? map.length() : hole));
      searchFrom = 0;
    }
  }

  /** Promises {@code n} slots; false when the limit would be exceeded. */
  synchronized boolean tryReserve(int n) {
    if (usedCount + reserved + n > capacity) {
      return false;
    }
    reserved += n;
    return true;
  }

  /** Whether {@code n} more slots would fit now. */
  synchronized boolean fits(int n) {
    return usedCount + reserved + n <= capacity;
  }

  synchronized void unreserve(int n) {
    reserved -= n;
  }

  /** Takes a reserved slot inside the formatted prefix, formatting more when needed. */
  int allocate() throws IOException {
    int slot;
    long need;
    synchronized (this) {
      if (reserved <= 0) {
        throw new IllegalStateException("allocate without reservation: " + this);
      }
      slot = used.nextClearBit(searchFrom);
      used.set(slot);
      usedCount++;
      reserved--;
      searchFrom = slot + 1;
      need = (long) (slot + 1) * blockSize;
      if (!formatQueued && formatted < map.length() && need + reserve(map.length()) > formatted) {
        formatQueued = true;
        formatter.execute(this::formatAhead);
      }
      if (need <= formatted) {
        return slot;
      }
    }
    try {
      format(need); // outran the formatter
    } catch (IOException e) {
      synchronized (this) { // give the slot back and keep the reservation
        free(slot);
        reserved++;
      }
      throw e;
    }
    return slot;
  }

  /** Background task: formats until RESERVE bytes lie ready above the highest slot in use. */
  private void formatAhead() {
    try {
      while (true) {
        long target;
        synchronized (this) {
          long high = (long) used.length() * blockSize;
          target = Math.min(map.length(), high + reserve(map.length()));
          if (formatted >= target) {
            formatQueued = false;
            return;
          }
        }
        format(Math.min(target, formattedNow() + FORMAT_STEP));
      }
    } catch (IOException | RuntimeException e) {
      synchronized (this) {
        formatQueued = false;
      }
      LOG.warn("{}: formatting the diff area ahead failed ({}); copies will format as they go", file.path(), e.toString());
    }
  }

  private synchronized long formattedNow() {
    return formatted;
  }

  /** Extends the formatted prefix to at least {@code need} bytes. */
  private void format(long need) throws IOException {
    synchronized (formatLock) {
      long from;
      synchronized (this) {
        if (need <= formatted) {
          return; // another thread formatted it meanwhile
        }
        from = formatted;
      }
      long step = Math.max(blockSize, Math.min(FORMAT_STEP, map.length() / 8));
      long to = Math.min(map.length(), Math.max(need, from + step));
      file.writeZeros(from, to - from);
      file.fdatasync();
      synchronized (this) {
        formatted = to;
      }
    }
  }

  synchronized void free(int slot) {
    if (used.get(slot)) {
      used.clear(slot);
      usedCount--;
      searchFrom = Math.min(searchFrom, slot);
    }
  }

  /**
   * When nothing is in use: gives the disk space above the reserve back (punch hole). Called
   * with all I/O of the volume held.
   */
  void releaseAllIfEmpty() throws IOException {
    synchronized (formatLock) {
      long keep;
      synchronized (this) {
        if (usedCount != 0 || reserved != 0) {
          return;
        }
        keep = Math.min(formatted, reserve(map.length()));
        formatted = keep;
        searchFrom = 0;
      }
      file.punchHole(keep, map.length() - keep);
    }
  }

  long offset(int slot) {
    return (long) slot * blockSize;
  }

  /**
   * Opens the diff area file for direct copies; null when its filesystem refuses O_DIRECT
   * (tmpfs before Linux 6.6, some FUSE filesystems).
   */
  static FileHandle openDirect(java.nio.file.Path path) throws ErrnoException {
    try {
      return FileHandle.open(path, FileHandle.O_RDWR | FileHandle.O_DIRECT, 0);
    } catch (ErrnoException e) {
      if (e.errno() == Errno.EINVAL) {
        return null;
      }
      throw e;
    }
  }

  /**
   * A direct buffer of {@code capacity} bytes whose address is aligned for direct copies.
   */
  static ByteBuffer alignedBuffer(int capacity) {
    return ByteBuffer.allocateDirect(capacity + DIRECT_ALIGN).alignedSlice(DIRECT_ALIGN).limit(capacity).slice();
  }

  /**
   * Copies {@code src} into the slot: with a direct write when {@code direct} and aligned,
   * otherwise into the page cache, for the journal's sync to write back (see above). Returns
   * whether the copy went direct (it is then on the device, though not yet flushed).
   */
  boolean write(int slot, ByteBuffer src, boolean direct) throws IOException {
    long at = offset(slot);
    FileHandle d = this.direct;
    if (direct && d != null && src.isDirect() && (at | src.remaining()) % DIRECT_ALIGN == 0 && src.alignmentOffset(src.position(), DIRECT_ALIGN) == 0) {
      try {
        d.writeFully(at, src.duplicate());
        src.position(src.limit());
        return true;
      } catch (ErrnoException e) {
        if (e.errno() != Errno.EINVAL) {
          throw e;
        }
        LOG.info("{}: direct writes refused ({}); copying through the page cache", file.path(), e.getMessage());
        this.direct = null;
      }
    }
    file.writeFully(at, src);
    return false;
  }

  /** Reads {@code dst.remaining()} bytes from the slot starting at {@code within}. */
  void read(int slot, int within, ByteBuffer dst) throws IOException {
    map.read(offset(slot) + within, dst);
  }

  /** Whether the file's bytes [pos, pos + len) are all in the page cache (see {@link MappedFile#isResident}). */
  boolean isResident(long pos, int len) {
    return map.isResident(pos, len);
  }

  /**
   * A read-only view of the file's bytes [pos, pos + len) on the shared mapping, or null when
   * the range crosses a mapping chunk; for ranges {@link #isResident} said are in memory.
   */
  ByteBuffer view(long pos, int len) {
    return map.view(pos, len);
  }

  /** Writes the byte range [lo, hi) to the device without a cache flush; see Journal.ForceHook. */
  void writeBack(long lo, long hi) throws IOException {
    file.writeBack(lo, hi - lo);
  }

  /** Forces the byte range [lo, hi) of the file to disk. */
  void force(long lo, long hi) throws IOException {
    map.force(lo, hi - lo);
  }

  @Override
  public void close() throws IOException {
    formatter.shutdown();
    try {
      if (!formatter.awaitTermination(60, TimeUnit.SECONDS)) {
        LOG.warn("{}: formatting did not stop within 60 s", file.path());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    try {
      map.close();
    } finally {
      FileHandle d = direct;
      try {
        if (d != null) {
          d.close();
        }
      } finally {
        file.close();
      }
    }
  }

  @Override
  public String toString() {
    return "DiffArea(" + file.path() + ", " + capacity + " slots of " + blockSize + ")";
  }
}
