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

  /** See {@link Volume#revert}. */
  void revert(SnapshotRef ref, Progress progress) throws IOException {
    locks.hold.writeLock().lock();
    try {
      locks.ensureOpen();
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
