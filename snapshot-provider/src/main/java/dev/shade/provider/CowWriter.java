package dev.shade.provider;

import dev.shade.nativeio.FileHandle;
import dev.shade.nativeio.MappedFile;
import dev.shade.nativeio.NoSpaceException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The origin I/O path of a volume: reads, and writes that first preserve, for the newest
 * snapshot, each block's old contents (held behind in {@link WriteBehind} when small), plus
 * flush and making room in the diff area.
 *
 * <p>Thread-safe: any number of threads may read, write and flush at once (locks as in
 * {@code package-info.java}).
 */
final class CowWriter {
  /*
   * Crash safety (ordering of a first write): copy old block to a diff slot -> force that slot
   * range -> journal record (block, slot, CRC32C of the data) written and fdatasync'ed by a
   * group commit (Journal) -> only then the origin is written. A small first write is held
   * behind instead of waiting for the sync: its new contents stay in WriteBehind until the
   * committer has synced the journal, then go to the origin.
   *
   * I/O: reads go through the shared mapping of the origin (no system call on a page-cache
   * hit); writes use pwrite, because a store into a mapped page that writeback has cleaned
   * takes a write fault, and ext4's page_mkwrite made mapped stores of 1 MiB writes about 10x
   * slower than pwrite here (LMDB makes the same split by default). pwrite also reports a full
   * disk as ENOSPC, where a store into a mapped hole would be SIGBUS.
   *
   * The hot path copies the geometry into final fields of its own and reads the snapshot list
   * once per piece (a volatile read); everything else it touches is final.
   */
  private static final Logger LOG = LoggerFactory.getLogger(CowWriter.class);

  /** Largest piece of one write handled under one set of locks. */
  static final int MAX_PIECE = 8 << 20;
  /** Zeros to compare old blocks with; read-only. */
  private static final ByteBuffer ZEROS = SnapshotChain.ZEROS;
  /**
   * A copy the writer waits for is written directly (device speed, no writeback pass later).
   * A copy held behind is buffered when smaller than this: its writer returns after a memory
   * copy, and the committer writes back a whole batch of small copies with one sync; larger
   * ones are bandwidth, not latency, and go direct.
   */
  static final int DIRECT_COPY_MIN = 256 << 10;
  /**
   * Origin writes are issued in aligned pieces of at most this many bytes. The page cache sizes
   * the folios a write creates by the write's length (ext4 with large folios, Linux 6.x), and a
   * later small write into a large folio costs much more. Measured here with fio over NBD, 4 KiB
   * random writes on an origin filled with 1 MiB writes: 32k IOPS written whole, 50-54k in
   * 256 KiB pieces, 64-72k in 64 KiB pieces (80-108k with the cache dropped). 1 MiB rewrites
   * kept 0.93-0.95 of a raw file's speed in 256 KiB pieces, 0.87 in 64 KiB pieces.
   */
  static final int ORIGIN_PIECE = 256 << 10;

  private final Geometry geometry;
  /** Copies of the geometry's fields: read on every write. */
  private final int blockSize;
  private final int blockShift;
  private final long size;
  private final String volumeName;
  private final Locks locks;
  private final SnapshotChain chain;
  private final MappedFile origin;
  private final FileHandle originFile;
  /** Whether the origin is a regular file (trim punches holes) rather than a device. */
  private final boolean originIsFile;
  private final DiffArea diff;
  private final Path diffPath;
  private final long diffMax;
  private final Journal journal;
  private final WriteBehind writeBehind;
  /** Whether the diff area and the journal share a device: the journal's flush then covers direct copies. */
  private final boolean diffOnJournalDevice;
  private final List<VolumeListener> listeners;
  /** Count of origin writes; a flush with nothing new skips the fdatasync. */
  private final AtomicLong writes = new AtomicLong();
  /** Value of {@link #writes} covered by the last completed flush. */
  private final AtomicLong flushedWrites = new AtomicLong();
  /** Starts writeback of the origin in the background as writes accumulate. */
  private final OriginWriteback writeback;
  /** How long the write-behind drain of the latest flush took (any thread's): for the DEBUG line of a snapshot. */
  volatile long lastDrainNanos;
  /**
   * The target of a revert that keeps the newer snapshots while one runs (it holds the hold
   * exclusively throughout), else null: no snapshot may be deleted to make room then, since the
   * revert reads its target and preserves into the newest.
   */
  volatile String revertKeepingTo;
  /** Per thread: at least 1 MiB and one block, for copying runs of blocks. */
  private final ThreadLocal<ByteBuffer> copyBuffers;

  CowWriter(Geometry geometry, String volumeName, Locks locks, SnapshotChain chain, MappedFile origin,
      FileHandle originFile, boolean originIsFile, DiffArea diff, Path diffPath, long diffMax, Journal journal,
      WriteBehind writeBehind, boolean diffOnJournalDevice, List<VolumeListener> listeners, OriginWriteback writeback) {
    this.geometry = geometry;
    this.blockSize = geometry.blockSize;
    this.blockShift = geometry.blockShift;
    this.size = geometry.size;
    this.volumeName = volumeName;
    this.locks = locks;
    this.chain = chain;
    this.origin = origin;
    this.originFile = originFile;
    this.originIsFile = originIsFile;
    this.diff = diff;
    this.diffPath = diffPath;
    this.diffMax = diffMax;
    this.journal = journal;
    this.writeBehind = writeBehind;
    this.diffOnJournalDevice = diffOnJournalDevice;
    this.listeners = listeners;
    this.writeback = writeback;
    int bs = blockSize;
    this.copyBuffers = ThreadLocal.withInitial(() -> DiffArea.alignedBuffer(Math.max(bs, 1 << 20)));
  }

  // ---------------------------------------------------------------- reads

  void read(long offset, ByteBuffer dst) throws IOException {
    geometry.checkRange(offset, dst.remaining());
    locks.hold.readLock().lock();
    try {
      locks.ensureOpen();
      if (writeBehind.isEmpty()) {
        origin.read(offset, dst);
      } else {
        readHeld(offset, dst);
      }
    } finally {
      locks.hold.readLock().unlock();
    }
  }

  /** Reads held blocks from memory, the others from the origin. */
  private void readHeld(long offset, ByteBuffer dst) throws IOException {
    locks.readByBlock(offset, dst, (b, within, at, piece) -> {
      WriteBehind.Entry e = writeBehind.get(b);
      if (e != null) {
        piece.put(0, e.data, within, piece.remaining());
      } else {
        origin.read(at, piece);
      }
    });
  }

  /** See {@link Volume#isCached}. */
  boolean isCached(long offset, int length) {
    return !locks.isClosed() && origin.isResident(offset, length);
  }

  /** See {@link Volume#residentView}. */
  ByteBuffer residentView(long offset, int length) {
    if (locks.isClosed() || length <= 0 || offset < 0 || offset > size - length || !writeBehind.isEmpty()
        || !origin.isResident(offset, length)) {
      return null;
    }
    return origin.view(offset, length);
  }

  /** See {@link Volume#needsCopy}. */
  boolean needsCopy(long offset, long length) {
    Snapshot newest = chain.newest();
    if (newest == null || length <= 0) {
      return false;
    }
    for (long b = offset >>> blockShift; b <= (offset + length - 1) >>> blockShift; b++) {
      if (!newest.contains(b)) {
        return true;
      }
    }
    return false;
  }

  // ---------------------------------------------------------------- writes

  void write(long offset, ByteBuffer src) throws IOException {
    long length = src.remaining();
    geometry.checkRange(offset, length);
    while (src.hasRemaining()) {
      int n = pieceLength(offset, src.remaining());
      ByteBuffer piece = src.slice(src.position(), n);
      long at = offset;
      change(offset, n, () -> writeOrigin(at, piece), piece);
      src.position(src.position() + n);
      offset += n;
    }
  }

  /** Writes {@code src} to the origin at {@code at} in {@link #ORIGIN_PIECE}s, leaving {@code src} untouched. */
  private void writeOrigin(long at, ByteBuffer src) throws IOException {
    int len = src.remaining();
    for (int done = 0; done < len; ) {
      int n = (int) Math.min(len - done, ORIGIN_PIECE - ((at + done) & (ORIGIN_PIECE - 1)));
      originFile.writeFully(at + done, src.slice(src.position() + done, n));
      done += n;
    }
  }

  void writeZeroes(long offset, long length) throws IOException {
    inPieces(offset, length, originFile::writeZeros);
  }

  void trim(long offset, long length) throws IOException {
    inPieces(offset, length, this::discard);
  }

  @FunctionalInterface
  private interface RangeChange {
    void apply(long offset, long length) throws IOException;
  }

  /** Applies {@code action} to the range piece by piece, each through the copy-on-write path. */
  private void inPieces(long offset, long length, RangeChange action) throws IOException {
    geometry.checkRange(offset, length);
    while (length > 0) {
      int n = pieceLength(offset, length);
      long at = offset;
      change(offset, n, () -> action.apply(at, n), null);
      offset += n;
      length -= n;
    }
  }

  /**
   * Zeroes the partial blocks at the edges; deallocates (or zeroes, on a device) whole ones.
   * Writes the origin directly: callers preserve old contents first (or revert, which restores
   * them).
   */
  void discard(long offset, long length) throws IOException {
    long alignedStart = (offset + blockSize - 1) & -(long) blockSize;
    long alignedEnd = offset + length == size ? size : (offset + length) & -(long) blockSize;
    if (!originIsFile || alignedStart >= alignedEnd) {
      originFile.writeZeros(offset, length);
      return;
    }
    originFile.writeZeros(offset, alignedStart - offset);
    originFile.punchHole(alignedStart, alignedEnd - alignedStart);
    originFile.writeZeros(alignedEnd, offset + length - alignedEnd);
  }

  /** At most MAX_PIECE bytes, ending on a block boundary unless the request ends first. */
  private int pieceLength(long offset, long remaining) {
    if (remaining <= MAX_PIECE) {
      return (int) remaining;
    }
    long end = (offset + MAX_PIECE) & -(long) blockSize;
    return (int) (end - offset);
  }

  @FunctionalInterface
  private interface OriginChange {
    void apply() throws IOException;
  }

  /**
   * Applies a change to [offset, offset+length) of the origin after preserving, for the
   * newest snapshot, every block of the range it does not hold yet. {@code data} is the
   * written bytes for a plain write (which may be held behind, see WriteBehind), null for
   * other changes.
   */
  private void change(long offset, int length, OriginChange change, ByteBuffer data) throws IOException {
    if (length == 0) {
      return;
    }
    long first = offset >>> blockShift;
    long last = (offset + length - 1) >>> blockShift;
    ReentrantReadWriteLock.ReadLock hold = locks.hold.readLock();
    while (true) {
      int shortBy;
      boolean diskFull = false;
      hold.lock();
      try {
        locks.ensureOpen();
        Snapshot newest = chain.newest();
        if (newest == null) {
          change.apply();
          writes.incrementAndGet(); // no snapshot to take soon: the page cache may absorb rewrites
          return;
        }
        int[] locked = locks.lockStripes(first, last);
        try {
          long[] need = new long[(int) (last - first + 1)];
          int n = 0;
          for (long b = first; b <= last; b++) {
            if (!newest.contains(b) && writeBehind.get(b) == null) {
              need[n++] = b;
            }
          }
          if (n == 0 || diff.tryReserve(n)) {
            try {
              // small first writes are held; a large copy is bandwidth the writer waits for
              // anyway, and holding would only add two memory copies of its blocks
              if (data != null && n > 0 && (long) n * blockSize < DIRECT_COPY_MIN && writeBehind.hasRoom(n)
                  || data != null && n == 0 && !writeBehind.isEmpty()) {
                writeBehind(newest, need, n, offset, data, change);
              } else {
                settleHeld(first, last);
                if (n > 0) {
                  int[] slots = new int[n];
                  int[] crcs = new int[n];
                  boolean[] direct = new boolean[n];
                  copyOld(need, n, slots, crcs, direct, null);
                  commitCopies(newest, need, n, slots, crcs, direct);
                }
                // a zero-copy snapshot send may still read the old bytes just copied out (they
                // were the origin's): wait for it, with the copies durable and the stripes held
                locks.awaitUnpinned(first, last);
                change.apply();
                wrote(length);
              }
              return;
            } catch (NoSpaceException e) {
              if (!e.resource().equals(diffPath.toString())) {
                throw e;
              }
              diskFull = true; // the diff area's filesystem is full, not its limit
            }
          }
          shortBy = n;
        } finally {
          locks.unlockStripes(locked);
        }
      } finally {
        hold.unlock();
      }
      makeRoom(shortBy, diskFull); // outside every lock: it needs the exclusive hold
    }
  }

  /**
   * A plain write with the range's stripes held: copies the old contents of {@code need},
   * appends their records and holds the new contents of those blocks in memory, to be written
   * to the origin once the records are durable (no flush waited for here). Blocks already held
   * take the new bytes in memory; blocks already preserved are written to the origin now.
   */
  private void writeBehind(Snapshot newest, long[] need, int n, long offset, ByteBuffer data, OriginChange change)
      throws IOException {
    if (n > 0) {
      int[] slots = new int[n];
      int[] crcs = new int[n];
      boolean[] direct = new boolean[n];
      ByteBuffer[] olds = new ByteBuffer[n];
      if (!copyOld(need, n, slots, crcs, direct, olds)) {
        commitCopies(newest, need, n, slots, crcs, direct);
        long first = offset >>> blockShift;
        long last = (offset + data.remaining() - 1) >>> blockShift;
        settleHeld(first, last);
        locks.awaitUnpinned(first, last); // as in change
        change.apply();
        wrote(data.remaining());
        return;
      }
      synchronized (writeBehind) {
        for (int k = 0; k < n; k++) {
          long seq = appendCow(newest, need[k], slots[k], crcs[k], direct[k]);
          writeBehind.add(new WriteBehind.Entry(need[k], newest, slots[k], crcs[k], seq, olds[k]));
        }
      }
    }
    // lay the bytes over the held blocks; runs of preserved blocks go to the origin now
    long pos = offset;
    long end = offset + data.remaining();
    long runStart = -1;
    while (pos <= end) {
      long b = pos >>> blockShift;
      WriteBehind.Entry e = pos < end ? writeBehind.get(b) : null;
      if (e == null && pos < end) {
        if (runStart < 0) {
          runStart = pos;
        }
      } else if (runStart >= 0) {
        writeOrigin(runStart, data.slice((int) (runStart - offset), (int) (pos - runStart)));
        wrote(pos - runStart);
        runStart = -1;
      }
      if (pos == end) {
        break;
      }
      long next = Math.min(end, (b + 1) << blockShift);
      if (e != null) {
        e.merge((int) (pos & (blockSize - 1)), data.slice((int) (pos - offset), (int) (next - pos)));
      }
      pos = next;
    }
    if (n > 0) {
      writeBehind.kick();
    }
  }

  /** Makes a batch of held blocks' records durable, then applies them (the committer of WriteBehind). */
  void commitHeld(List<WriteBehind.Entry> batch, long upToSeq) throws IOException {
    journal.sync(upToSeq); // every copy of the batch and its record are durable: the origin may change
    for (WriteBehind.Entry e : batch) {
      ReentrantReadWriteLock stripe = locks.stripe(e.block);
      stripe.writeLock().lock();
      try {
        applyHeld(e);
      } finally {
        stripe.writeLock().unlock();
      }
    }
  }

  /** Applies the held blocks in [first, last], whose stripes the caller holds. */
  private void settleHeld(long first, long last) throws IOException {
    if (writeBehind.isEmpty()) {
      return;
    }
    for (long b = first; b <= last; b++) {
      WriteBehind.Entry e = writeBehind.get(b);
      if (e != null) {
        journal.sync(e.seq);
        applyHeld(e);
      }
    }
  }

  /**
   * Publishes a held block's copy, then writes its new bytes to the origin and forgets it.
   * The caller holds the block's stripe and has made the copy's record durable. On failure
   * the block stays held (reads still see the write) and the next commit tries again.
   */
  private void applyHeld(WriteBehind.Entry e) throws IOException {
    if (writeBehind.get(e.block) != e) {
      return; // a writer settling its range applied it meanwhile
    }
    locks.awaitUnpinned(e.block, e.block); // a snapshot send may be reading its old origin bytes
    e.snap.put(e.block, Snapshot.pack(e.slot, e.crc));
    if (e.hi > e.lo) {
      originFile.writeFully((e.block << blockShift) + e.lo, e.data.slice(e.lo, e.hi - e.lo));
      wrote(e.hi - e.lo);
    }
    writeBehind.remove(e);
  }

  /**
   * Copies the old contents of {@code blocks[0..n)} (ascending) into the diff area: runs of
   * adjacent blocks are read with one copy and written with one pwrite per run of adjacent
   * slots. Fills {@code slots} and {@code crcs}, and {@code olds} (when not null) with a copy
   * of each old block to hold the write behind. Nothing is journaled yet. Returns whether the
   * write may be held: not when part of the range is a hole of a file origin (SEEK_HOLE),
   * because writing a hole needs disk space, so that write happens now and ENOSPC reaches the
   * writer. Overwriting allocated blocks needs none on ext4; on filesystems that copy on write
   * (btrfs, XFS reflinks) it can, and such an ENOSPC reaches the next flush instead.
   */
  private boolean copyOld(long[] blocks, int n, int[] slots, int[] crcs, boolean[] direct, ByteBuffer[] olds)
      throws IOException {
    boolean holdable = olds != null;
    int done = 0;
    ByteBuffer buf = copyBuffers.get();
    int perRun = buf.capacity() >>> blockShift;
    CRC32C crc = new CRC32C();
    try {
      int i = 0;
      while (i < n) {
        int j = i + 1;
        while (j < n && j - i < perRun && blocks[j] == blocks[j - 1] + 1) {
          j++;
        }
        long start = blocks[i] << blockShift;
        long end = Math.min(size, (blocks[j - 1] + 1) << blockShift);
        int len = (int) (end - start);
        // Old contents in memory are checked and copied straight from the origin's mapping
        // (the direct copy reads the page cache, no copy through a buffer); otherwise pread:
        // a fault on a cold page of a sparse origin pulled in the device's whole readahead
        // window (8 MiB here) for a 64 KiB block.
        ByteBuffer src = origin.isResident(start, len) ? origin.view(start, len) : null;
        if (src == null) {
          buf.clear().limit(len);
          originFile.readFully(start, buf);
          src = buf.flip();
        }
        if (holdable && originIsFile) {
          long hole = originFile.nextHole(start);
          if (hole >= 0 && hole < end) {
            holdable = false; // see above: this write may need disk space
            for (int h = 0; h < i; h++) {
              writeBehind.release(olds[h]);
            }
          }
        }
        for (int k = i; k < j; k++) {
          ByteBuffer old = src.slice((k - i) << blockShift, geometry.blockLength(blocks[k]));
          boolean zero = old.mismatch(ZEROS.slice(0, old.remaining())) == -1;
          if (holdable) {
            olds[k] = writeBehind.buffer(old.remaining()).put(0, old, 0, old.remaining());
          }
          if (zero) {
            slots[k] = Snapshot.ZERO_SLOT; // nothing to copy: record "zeros"
            diff.unreserve(1);
          } else {
            slots[k] = diff.allocate();
            crc.reset();
            crc.update(old);
            crcs[k] = (int) crc.getValue();
          }
          done = k + 1;
        }
        for (int k = i; k < j; ) {
          int m = k + 1;
          if (slots[k] == Snapshot.ZERO_SLOT) {
            k = m;
            continue;
          }
          while (m < j && slots[m] == slots[m - 1] + 1) {
            m++;
          }
          int from = (k - i) << blockShift;
          int to = m == j ? len : (m - i) << blockShift;
          boolean went = diff.write(slots[k], src.slice(from, to - from), !holdable || len >= DIRECT_COPY_MIN);
          Arrays.fill(direct, k, m, went);
          k = m;
        }
        i = j;
      }
      return holdable;
    } catch (IOException | RuntimeException e) {
      diff.unreserve(n - done);
      for (int k = 0; k < done; k++) {
        if (slots[k] != Snapshot.ZERO_SLOT) {
          diff.free(slots[k]); // no record names them: nothing durable refers to these copies
        }
      }
      throw e;
    }
  }

  /**
   * Appends the record of one copy, naming the diff range the group commit must write back
   * unless there is none: a "zeros" entry has no copy, and a direct copy is already on the
   * device, where the journal's own flush covers it when both share the device.
   */
  private long appendCow(Snapshot snap, long block, int slot, int crc, boolean direct) {
    JournalRecord.Cow rec = new JournalRecord.Cow(snap.id, block, slot, crc);
    if (slot == Snapshot.ZERO_SLOT || direct && diffOnJournalDevice) {
      return journal.append(rec);
    }
    long at = diff.offset(slot);
    return journal.append(rec, at, at + geometry.blockLength(block));
  }

  /**
   * Journals the copies made by {@link #copyOld} with one group-commit sync and publishes them.
   * Records are appended only once every copy is written, so a failed copy never leaves a
   * pending record naming a slot that is then freed and reused.
   */
  private void commitCopies(Snapshot snap, long[] blocks, int n, int[] slots, int[] crcs, boolean[] direct) throws IOException {
    long seq = 0;
    for (int k = 0; k < n; k++) {
      seq = appendCow(snap, blocks[k], slots[k], crcs[k], direct[k]);
    }
    // On failure the slots stay allocated until the volume is reopened: the frame may have
    // reached the disk, and a reused slot would corrupt the entry it names.
    journal.sync(seq); // the copies and their entries are durable: the origin may change now
    for (int k = 0; k < n; k++) {
      snap.put(blocks[k], Snapshot.pack(slots[k], crcs[k])); // publish after durable
    }
  }

  /**
   * Deletes the oldest snapshots until {@code slots} more fit in the diff area, or, when the
   * diff area's filesystem is full, the oldest one (its slots are reused without new disk
   * blocks). Invariant 4: production writes never fail because of snapshots.
   */
  private void makeRoom(int slots, boolean diskFull) throws IOException {
    locks.hold.writeLock().lock();
    try {
      locks.ensureOpen();
      String keeping = revertKeepingTo;
      if (keeping != null) {
        throw new VolumeException("the diff area " + diffPath + " has no room for " + (long) slots * blockSize
            + " more bytes of old contents" + (diskFull ? " (its filesystem is full)" : "")
            + " during the revert to snapshot '" + keeping + "' that keeps the newer snapshots; no snapshot is deleted"
            + " for room during such a revert; free space there and open the volume again to finish it");
      }
      writeBehind.drain(); // held blocks belong to the newest snapshot, which may go
      if (diskFull && !chain.list().isEmpty()) {
        deleteOldestForSpace("the filesystem holding the diff area " + diffPath + " is full", slots);
      }
      while (!chain.list().isEmpty() && !diff.fits(slots)) {
        deleteOldestForSpace("the diff area is full (" + diff.usedBytes() + " of " + diffMax + " bytes in use)", slots);
      }
    } finally {
      locks.hold.writeLock().unlock();
    }
  }

  private void deleteOldestForSpace(String why, int slots) throws IOException {
    Snapshot oldest = chain.list().get(0);
    SnapshotInfo info = chain.info(oldest);
    LOG.warn("{}: {}, {} more bytes needed: deleting the oldest snapshot '{}' so that writes can continue",
        volumeName, why, (long) slots * blockSize, oldest.name);
    chain.delete(oldest);
    for (VolumeListener l : listeners) {
      l.snapshotDeletedForSpace(info, diffMax);
    }
  }

  // ---------------------------------------------------------------- flush

  /** See {@link Volume#flush}. */
  void flush() throws IOException {
    locks.hold.readLock().lock();
    try {
      locks.ensureOpen();
      flushOrigin();
    } finally {
      locks.hold.readLock().unlock();
    }
  }

  /**
   * Commits and applies everything held, then makes every origin write so far durable with one
   * fdatasync (none when nothing was written since the last flush). Caller holds the hold.
   */
  void flushOrigin() throws IOException {
    long t0 = System.nanoTime();
    writeBehind.drain();
    lastDrainNanos = System.nanoTime() - t0;
    long upTo = writes.get();
    if (flushedWrites.get() >= upTo) {
      return;
    }
    originFile.fdatasync();
    flushedWrites.accumulateAndGet(upTo, Math::max);
  }

  /**
   * Counts an origin write of {@code n} bytes made while the volume has snapshots: the next
   * flush syncs, and background writeback sees it. Without snapshots it is not started: a
   * workload that rewrites its pages between flushes would write them to the disk more often
   * (fio 4 KiB random writes without flushes on a 256 MiB volume ran at about half the IOPS),
   * for nothing but a faster first snapshot.
   */
  private void wrote(long n) {
    writes.incrementAndGet();
    writeback.wrote(n);
  }

  /** Counts an origin write made outside this class (revert), so the next flush syncs. */
  void countOriginWrite() {
    wrote(blockSize);
  }
}
