package dev.shade.provider;

import dev.shade.nativeio.FileHandle;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * Revert of a volume to one of its snapshots: the plan, the journaled revert, and the
 * idempotent copy back that an open also runs to finish an interrupted revert.
 *
 * <p>Thread-safe: a revert holds the volume's hold exclusively throughout.
 */
final class Reverter {
  /*
   * Revert to S commits "revert begun", deletes the newer snapshots (their entries merge down
   * into S, which then names every block changed since S), copies those blocks back (checking
   * each copy's CRC32C), fdatasyncs the origin and commits "revert ended". An open that finds
   * "begun" without "ended" runs finish() again: copying S's blocks back twice gives the same
   * origin.
   *
   * A revert that keeps the newer snapshots (keepNewer) deletes nothing and drops no table: it
   * writes the target's contents into the origin as ordinary copy-on-write writes, so the
   * newest snapshot receives the old contents of every block the revert overwrites (invariants
   * 1 and 2 hold for these writes as for any other), and every snapshot, the target and the
   * newer ones, reads back what it held. Only blocks named by the tables of the target and the
   * newer snapshots can differ; of those, only the blocks whose contents really differ are
   * written (read both, compare), so a block written back to its old bytes costs no copy.
   * Before starting it checks that the diff area has room for a copy of every candidate block
   * the newest snapshot does not hold yet (an upper bound, exact while the exclusive hold keeps
   * other writers out), and while it runs no snapshot is deleted to make room (CowWriter
   * refuses): the target and the newest snapshot are what it reads and fills.
   *
   * Crash safety: "keep revert begun" is committed first, "keep revert ended" after the origin
   * is fdatasynced. A crash between them leaves an origin partly reverted, each block either
   * old or new and its old contents preserved before it changed; an open that finds "begun"
   * without "ended" runs the copy back again, which is idempotent: blocks already reverted now
   * equal the target and are skipped, and no snapshot was created or deleted in between. No
   * fold runs in between (folds need the exclusive hold), so the marker is always in the
   * journal.
   */
  private final Geometry geometry;
  private final Locks locks;
  private final SnapshotChain chain;
  private final CowWriter writer;
  private final WriteBehind writeBehind;
  private final Journal journal;
  private final DiffArea diff;
  private final Path diffPath;
  private final FileHandle originFile;
  /** Bytes compared and written back per step of a revert that keeps the newer snapshots (a power of two). */
  private static final int PIECE = 1 << 20;
  /** Per thread: a block to copy back. */
  private final ThreadLocal<ByteBuffer> blockBuffers;

  Reverter(Geometry geometry, Locks locks, SnapshotChain chain, CowWriter writer, WriteBehind writeBehind,
      Journal journal, DiffArea diff, Path diffPath, FileHandle originFile) {
    this.geometry = geometry;
    this.locks = locks;
    this.chain = chain;
    this.writer = writer;
    this.writeBehind = writeBehind;
    this.journal = journal;
    this.diff = diff;
    this.diffPath = diffPath;
    this.originFile = originFile;
    int bs = geometry.blockSize;
    this.blockBuffers = ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(bs));
  }

  /** See {@link Volume#planRevert}. */
  RevertPlan plan(SnapshotRef ref) throws IOException {
    locks.hold.readLock().lock();
    try {
      locks.ensureOpen();
      writeBehind.drain(); // held blocks count among the bytes a revert copies back
      Snapshot target = chain.require(ref);
      List<SnapshotInfo> deleted = new ArrayList<>();
      for (Snapshot s : chain.list()) {
        if (s.id > target.id) {
          deleted.add(chain.info(s));
        }
      }
      long bytes = 0;
      for (Range r : chain.changedRanges(target, null, 0, geometry.size)) {
        bytes += r.length();
      }
      return new RevertPlan(chain.info(target), deleted, bytes);
    } finally {
      locks.hold.readLock().unlock();
    }
  }

  /** See {@link Volume#planRevert(SnapshotRef, boolean)}. */
  RevertPlan plan(SnapshotRef ref, boolean keepNewer) throws IOException {
    if (!keepNewer) {
      return plan(ref);
    }
    locks.hold.readLock().lock();
    try {
      locks.ensureOpen();
      writeBehind.drain();
      Snapshot target = chain.require(ref);
      List<Range> changed = chain.changedRanges(target, null, 0, geometry.size);
      long bytes = 0;
      for (Range r : changed) {
        bytes += r.length();
      }
      return new RevertPlan(chain.info(target), List.of(), bytes, (long) uncopied(changed) * geometry.blockSize);
    } finally {
      locks.hold.readLock().unlock();
    }
  }

  /** How many blocks of {@code changed} the newest snapshot holds no copy of yet. */
  private long uncopied(List<Range> changed) {
    Snapshot newest = chain.newest();
    int shift = geometry.blockShift;
    long n = 0;
    for (Range r : changed) {
      for (long b = r.offset() >>> shift; b <= (r.end() - 1) >>> shift; b++) {
        if (!newest.contains(b)) {
          n++;
        }
      }
    }
    return n;
  }

  /** See {@link Volume#revert(SnapshotRef, boolean, Progress)}. */
  void revert(SnapshotRef ref, boolean keepNewer, Progress progress) throws IOException {
    if (!keepNewer) {
      revert(ref, progress);
      return;
    }
    locks.hold.writeLock().lock();
    try {
      locks.ensureOpen();
      locks.awaitNoPins(); // no zero-copy send may read a block this rewrites or a slot it frees
      Snapshot target = chain.require(ref);
      writeBehind.drain();
      long need = uncopied(chain.changedRanges(target, null, 0, geometry.size));
      if (need > Integer.MAX_VALUE || !diff.fits((int) need)) {
        throw new VolumeException("cannot revert to snapshot '" + target.name + "' keeping the newer snapshots: the diff area "
            + diffPath + " may need " + need * geometry.blockSize + " more bytes for the current contents and has "
            + ((long) diff.capacity() * geometry.blockSize - diff.usedBytes()) + " free (" + diff.usedBytes() + " in use);"
            + " nothing was changed");
      }
      journal.commit(new JournalRecord.RevertKeepBegin(target.id));
      finishKeepingNewer(target, progress);
      chain.maybeFold();
    } finally {
      locks.hold.writeLock().unlock();
    }
  }

  /**
   * Writes the target's contents over every block of the origin that differs from it, as
   * copy-on-write writes, fdatasyncs and commits "keep revert ended"; idempotent. Caller holds
   * the hold exclusively (or is the opening thread).
   */
  void finishKeepingNewer(Snapshot target, Progress progress) throws IOException {
    writer.revertKeepingTo = target.name;
    try {
      List<Range> changed = chain.changedRanges(target, null, 0, geometry.size);
      long total = 0;
      for (Range r : changed) {
        total += r.length();
      }
      BlockSource view = chain.view(target);
      int blockSize = geometry.blockSize;
      int piece = Math.max(blockSize, PIECE);
      ByteBuffer want = ByteBuffer.allocate(piece);
      ByteBuffer have = ByteBuffer.allocate(piece);
      long done = 0;
      for (Range r : changed) {
        for (long at = r.offset(); at < r.end(); ) {
          int n = (int) Math.min(piece - (at & (piece - 1)), r.end() - at);
          want.clear().limit(n);
          have.clear().limit(n);
          view.read(at, want);
          writer.read(at, have);
          // runs of blocks that differ, each written with one call
          int runStart = -1;
          for (int off = 0; off < n; off += blockSize) {
            int len = Math.min(blockSize, n - off); // the volume's last block may be partial
            boolean differs = want.slice(off, len).mismatch(have.slice(off, len)) != -1;
            if (differs && runStart < 0) {
              runStart = off;
            } else if (!differs && runStart >= 0) {
              writeBack(at + runStart, want.slice(runStart, off - runStart));
              runStart = -1;
            }
          }
          if (runStart >= 0) {
            writeBack(at + runStart, want.slice(runStart, n - runStart));
          }
          at += n;
          done += n;
          progress.update(done, total);
        }
      }
      writer.flushOrigin(); // every write back is durable before "ended"
      journal.commit(new JournalRecord.RevertKeepEnd(target.id));
      progress.update(total, total);
    } finally {
      writer.revertKeepingTo = null;
    }
  }

  /** Writes {@code data} at {@code offset} through copy-on-write; an all-zero run is trimmed. */
  private void writeBack(long offset, ByteBuffer data) throws IOException {
    if (isZero(data)) {
      writer.trim(offset, data.remaining());
    } else {
      writer.write(offset, data);
    }
  }

  private static boolean isZero(ByteBuffer data) {
    ByteBuffer zeros = SnapshotChain.ZEROS;
    for (int off = 0; off < data.remaining(); off += zeros.capacity()) {
      int n = Math.min(zeros.capacity(), data.remaining() - off);
      if (data.slice(data.position() + off, n).mismatch(zeros.slice(0, n)) != -1) {
        return false;
      }
    }
    return true;
  }

  /** See {@link Volume#revert}. */
  void revert(SnapshotRef ref, Progress progress) throws IOException {
    locks.hold.writeLock().lock();
    try {
      locks.ensureOpen();
      locks.awaitNoPins(); // no zero-copy send may read a block this rewrites or a slot it frees
      Snapshot target = chain.require(ref);
      writeBehind.drain();
      journal.commit(new JournalRecord.RevertBegin(target.id));
      List<Snapshot> newer = new ArrayList<>();
      for (Snapshot s : chain.list()) {
        if (s.id > target.id) {
          newer.add(s);
        }
      }
      Collections.reverse(newer); // newest first: each merges into the next older
      long seq = 0;
      for (Snapshot s : newer) {
        seq = journal.append(new JournalRecord.Delete(s.id));
      }
      journal.sync(seq);
      for (Snapshot s : newer) {
        for (int slot : chain.applyDelete(s)) {
          diff.free(slot);
        }
      }
      finish(target, progress);
      chain.maybeFold();
    } finally {
      locks.hold.writeLock().unlock();
    }
  }

  /**
   * Copies the target's preserved blocks back to the origin, then commits "revert ended";
   * idempotent. Caller holds the hold exclusively (or is the opening thread).
   */
  void finish(Snapshot target, Progress progress) throws IOException {
    long[] blocks = target.sortedBlocks();
    int blockSize = geometry.blockSize;
    int shift = geometry.blockShift;
    long total = (long) blocks.length * blockSize;
    ByteBuffer buf = blockBuffers.get();
    CRC32C crc = new CRC32C();
    long done = 0;
    for (long b : blocks) {
      long packed = target.get(b);
      int len = geometry.blockLength(b);
      if (Snapshot.isZero(packed)) {
        writer.discard(b << shift, len);
        done += blockSize;
        progress.update(Math.min(done, total), total);
        continue;
      }
      buf.clear().limit(len);
      diff.read(Snapshot.slot(packed), 0, buf);
      buf.flip();
      crc.reset();
      crc.update(buf.duplicate());
      if ((int) crc.getValue() != Snapshot.crc(packed)) {
        throw new VolumeException("diff area is damaged: block " + b + " of snapshot '" + target.name
            + "' fails its checksum (slot " + Snapshot.slot(packed) + " of " + diffPath + "); the revert stopped and will resume on the next open");
      }
      originFile.writeFully(b << shift, buf);
      done += blockSize;
      progress.update(Math.min(done, total), total);
    }
    originFile.fdatasync();
    writer.countOriginWrite();
    journal.commit(new JournalRecord.RevertEnd(target.id));
    for (int slot : chain.applyRevertEnd(target)) {
      diff.free(slot);
    }
    if (diff.usedSlots() == 0) {
      diff.releaseAllIfEmpty();
    }
    progress.update(total, total);
  }
}
