package dev.shade.provider;

import dev.shade.nativeio.FileHandle;
import dev.shade.nativeio.MappedFile;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.BitSet;

/**
 * The diff area: a file of block-sized slots that hold old block contents, mapped shared, with
 * a slot allocator bounded by the configured maximum.
 *
 * <p>Thread-safe: the allocator is guarded by this object's monitor; slot contents are written
 * by the one thread that allocated the slot and read only after it is published.
 */
final class DiffArea implements Closeable {
  /*
   * The file is as long as the limit and sparse. Slots are handed out lowest-first, and only
   * from the "formatted" prefix of the file: bytes that hold real, synced zeros. A copy into a
   * formatted slot overwrites allocated disk blocks, so the sync that makes it durable carries
   * no block allocation or unwritten-extent conversion; measured on ext4, 1 MiB copies synced
   * one by one run 5-8x faster into formatted space than into holes or fallocated space. When
   * the next free slot lies past the prefix, the allocating thread formats the next step (zeros
   * written with pwrite, then fdatasync). Only bytes above every live slot are ever zeroed.
   *
   * Copies are written with pwrite and read through the shared mapping (as LMDB does by
   * default): a store into a mapped page that writeback has cleaned takes a write fault, and
   * ext4's page_mkwrite made mapped stores about 10x slower than pwrite of the same bytes.
   *
   * Which slots are in use is not stored: it is derived from the snapshot tables on open. A
   * freed slot is reused only after the journal record that freed it is durable (the volume
   * frees slots only after syncing the delete), so a crash can never find a live entry whose
   * slot was overwritten.
   */
  /** The formatted prefix grows in steps of this many bytes (an eighth of a small area). */
  static final long FORMAT_STEP = 64L << 20;

  private final FileHandle file;
  private final MappedFile map;
  private final int blockSize;
  /** Number of slots the limit allows. */
  private final int capacity;

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
  /** Serialises formatting. */
  private final Object formatLock = new Object();

  DiffArea(FileHandle file, MappedFile map, int blockSize, long limit) {
    this.file = file;
    this.map = map;
    this.blockSize = blockSize;
    this.capacity = (int) Math.min(Integer.MAX_VALUE, limit / blockSize);
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
   * After open: everything up to the highest live slot was formatted before the crash or
   * close; formatting resumes above it, where no live slot can be.
   */
  synchronized void afterRecovery() {
    formatted = (long) used.length() * blockSize;
    searchFrom = 0;
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
      if (need <= formatted) {
        return slot;
      }
    }
    try {
      format(need);
    } catch (IOException e) {
      synchronized (this) { // give the slot back and keep the reservation
        free(slot);
        reserved++;
      }
      throw e;
    }
    return slot;
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
      ByteBuffer zeros = ByteBuffer.allocateDirect((int) Math.min(1 << 20, to - from));
      for (long at = from; at < to; at += zeros.capacity()) {
        zeros.clear().limit((int) Math.min(zeros.capacity(), to - at));
        file.writeFully(at, zeros);
      }
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
   * When nothing is in use: gives all disk space back (punch hole) and starts over. Called with
   * all I/O of the volume held.
   */
  void releaseAllIfEmpty() throws IOException {
    synchronized (formatLock) {
      synchronized (this) {
        if (usedCount != 0 || reserved != 0) {
          return;
        }
        formatted = 0;
        searchFrom = 0;
      }
      file.punchHole(0, map.length());
    }
  }

  long offset(int slot) {
    return (long) slot * blockSize;
  }

  /** Copies {@code src} into the slot (pwrite: see above). */
  void write(int slot, ByteBuffer src) throws IOException {
    file.writeFully(offset(slot), src);
  }

  /** Reads {@code dst.remaining()} bytes from the slot starting at {@code within}. */
  void read(int slot, int within, ByteBuffer dst) throws IOException {
    map.read(offset(slot) + within, dst);
  }

  /** Forces the byte range [lo, hi) of the file to disk. */
  void force(long lo, long hi) throws IOException {
    map.force(lo, hi - lo);
  }

  @Override
  public void close() throws IOException {
    try {
      map.close();
    } finally {
      file.close();
    }
  }

  @Override
  public String toString() {
    return "DiffArea(" + file.path() + ", " + capacity + " slots of " + blockSize + ")";
  }
}
