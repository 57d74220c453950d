package dev.shade.provider;

import dev.shade.nativeio.FileHandle;
import dev.shade.nativeio.MappedFile;
import dev.shade.nativeio.NoSpaceException;
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
   * The file is as long as the limit and sparse. Disk blocks are reserved with fallocate in
   * steps ahead of the highest slot in use, so a copy through the mapping never faults on a
   * full disk (that would be SIGBUS). Which slots are in use is not stored: it is derived from
   * the snapshot tables on open. A freed slot is reused only after the journal record that
   * freed it is durable (the volume frees slots only after syncing the delete), so a crash can
   * never find a live entry whose slot was overwritten.
   */
  /** Disk space is reserved ahead in steps of this many bytes. */
  static final long PREALLOCATE_STEP = 64L << 20;

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
  /** Bytes at the start of the file with disk blocks reserved. */
  private long preallocated;

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

  /** Recomputes how much of the file is known allocated after open. */
  synchronized void afterRecovery() {
    preallocated = 0; // reserved again lazily; fallocate over allocated blocks is cheap
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

  /** Takes a reserved slot and makes sure its disk blocks exist. */
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
      if (need <= preallocated) {
        return slot;
      }
    }
    try {
      ensureAllocated(need);
    } catch (IOException e) {
      synchronized (this) { // give the slot back and keep the reservation
        free(slot);
        reserved++;
      }
      throw e;
    }
    return slot;
  }

  private void ensureAllocated(long need) throws IOException {
    long from;
    long to;
    synchronized (this) {
      if (need <= preallocated) {
        return;
      }
      from = preallocated;
      to = Math.min(map.length(), Math.max(need, from + PREALLOCATE_STEP));
    }
    try {
      file.allocate(from, to - from);
    } catch (NoSpaceException e) {
      file.allocate(from, need - from); // at least what this slot needs
      to = need;
    }
    synchronized (this) {
      preallocated = Math.max(preallocated, to);
    }
  }

  synchronized void free(int slot) {
    if (used.get(slot)) {
      used.clear(slot);
      usedCount--;
      searchFrom = Math.min(searchFrom, slot);
    }
  }

  /** When nothing is in use: gives all disk space back (punch hole) and starts over. */
  void releaseAllIfEmpty() throws IOException {
    synchronized (this) {
      if (usedCount != 0 || reserved != 0) {
        return;
      }
      preallocated = 0;
      searchFrom = 0;
    }
    file.punchHole(0, map.length());
  }

  long offset(int slot) {
    return (long) slot * blockSize;
  }

  /** Copies {@code src} into the slot. */
  void write(int slot, ByteBuffer src) throws IOException {
    map.write(offset(slot), src);
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
