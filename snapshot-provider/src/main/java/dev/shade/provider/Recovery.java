package dev.shade.provider;

import dev.shade.nativeio.FileHandle;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What opening a volume does after a crash: drops a last journal frame whose copies did not
 * reach the disk, replays the journal over the checkpoint, and rebuilds the diff area's slot
 * map from the tables. The interrupted revert it finds is finished by {@link Reverter}.
 *
 * <p>Not thread-safe: used by the opening thread only, before the volume is shared.
 */
final class Recovery {
  /*
   * The journal's torn-tail rules are Journal's: a torn last frame is cut off by Journal.read.
   * What is left to check here is that the last valid frame's copies are intact: a frame is
   * written only after the previous one and its copies are durable, so only the last frame can
   * name a copy that did not reach the disk. Its CRC32C tells; such a frame is dropped (none of
   * its writers had been answered, and the origin had not been written for it).
   *
   * Replay applies records in order: a create adds a snapshot (raising nextId past it), a
   * delete merges one down, a copy record fills a table entry, "revert begun" without its
   * "revert ended" leaves a revert to finish, "attributes" replaces a snapshot's attributes,
   * and "set complete" marks a set member. The records of a revert that keeps the newer
   * snapshots change no table (its copies are COW records of their own); pendingKeepRevert
   * finds one left unfinished. A record
   * naming a snapshot that does not exist is damage, except "set complete" (it may follow the
   * end of the snapshot it names in a later generation; it changes nothing then).
   */
  private static final Logger LOG = LoggerFactory.getLogger(Recovery.class);

  private Recovery() {}

  /**
   * The replay without its last frame when that frame names a copy whose CRC32C does not
   * match, with the journal file cut back to match; otherwise {@code replay} itself.
   */
  static Journal.Replay dropUncopiedLastFrame(Journal.Replay replay, DiffArea diff, Geometry geometry,
      FileHandle journalFile, Path dir) throws IOException {
    if (lastFrameCopiesIntact(replay, diff, geometry, journalFile.path())) {
      return replay;
    }
    LOG.warn("{}: the last journal frame names copies that did not reach the disk before the process stopped; dropping it (nobody was told it had succeeded)", dir);
    Journal.Replay cut = replay.withoutLastFrame();
    Journal.truncate(journalFile, cut.end());
    return cut;
  }

  /** Whether every copy named by the journal's last frame has the CRC32C its record says. */
  private static boolean lastFrameCopiesIntact(Journal.Replay replay, DiffArea diff, Geometry g, Path journalPath)
      throws IOException {
    List<JournalRecord> records = replay.records();
    ByteBuffer buf = ByteBuffer.allocateDirect(g.blockSize);
    CRC32C crc = new CRC32C();
    for (int i = replay.lastFrameRecord(); i < records.size(); i++) {
      if (records.get(i) instanceof JournalRecord.Cow c) {
        if (c.slot() < Snapshot.ZERO_SLOT || c.slot() >= diff.capacity() || c.block() < 0 || c.block() << g.blockShift >= g.size) {
          throw new VolumeException("journal is damaged: a record names block " + c.block() + " in slot " + c.slot()
              + ", outside the volume or the diff area: " + journalPath);
        }
        if (c.slot() == Snapshot.ZERO_SLOT) {
          continue; // nothing was copied
        }
        buf.clear().limit(g.blockLength(c.block()));
        diff.read(c.slot(), 0, buf);
        buf.flip();
        crc.reset();
        crc.update(buf);
        if ((int) crc.getValue() != c.crc()) {
          return false;
        }
      }
    }
    return true;
  }

  /**
   * Applies {@code records} to {@code chain} (which starts as the checkpoint's state); returns
   * the id of the snapshot an interrupted revert was going to, or -1.
   */
  static long replay(SnapshotChain chain, long revertPending, List<JournalRecord> records, Path journalPath)
      throws VolumeException {
    for (JournalRecord r : records) {
      if (r instanceof JournalRecord.Create c) {
        chain.applyCreate(c);
      } else if (r instanceof JournalRecord.Delete d) {
        chain.applyDelete(byIdOrDamage(chain, d.id(), journalPath));
      } else if (r instanceof JournalRecord.Cow c) {
        Snapshot s = byIdOrDamage(chain, c.snapId(), journalPath);
        s.put(c.block(), Snapshot.pack(c.slot(), c.crc()));
      } else if (r instanceof JournalRecord.RevertBegin rb) {
        byIdOrDamage(chain, rb.id(), journalPath);
        revertPending = rb.id();
      } else if (r instanceof JournalRecord.RevertEnd re) {
        chain.applyRevertEnd(byIdOrDamage(chain, re.id(), journalPath));
        revertPending = -1;
      } else if (r instanceof JournalRecord.SetAttributes sa) {
        byIdOrDamage(chain, sa.id(), journalPath).setAttributes(sa.attributes());
      } else if (r instanceof JournalRecord.SetComplete sc) {
        Snapshot s = chain.findId(sc.id());
        if (s != null) {
          s.markSetComplete();
        }
      }
    }
    return revertPending;
  }

  /**
   * The id of the snapshot that a revert keeping the newer snapshots was going to when the
   * process stopped (its "begun" has no "ended" in {@code records}), or -1. Such a revert
   * never spans a fold (folds run under the exclusive hold that the revert keeps until its
   * end), so the journal alone tells.
   */
  static long pendingKeepRevert(SnapshotChain chain, List<JournalRecord> records, Path journalPath)
      throws VolumeException {
    long pending = -1;
    for (JournalRecord r : records) {
      if (r instanceof JournalRecord.RevertKeepBegin b) {
        pending = b.id();
      } else if (r instanceof JournalRecord.RevertKeepEnd) {
        pending = -1;
      }
    }
    if (pending >= 0) {
      byIdOrDamage(chain, pending, journalPath);
    }
    return pending;
  }

  private static Snapshot byIdOrDamage(SnapshotChain chain, long id, Path journalPath) throws VolumeException {
    Snapshot s = chain.findId(id);
    if (s == null) {
      throw new VolumeException("journal is damaged: it refers to snapshot id " + id + ", which does not exist: " + journalPath);
    }
    return s;
  }

  /** Marks every slot a table names as used: which slots are used is never stored separately. */
  static void markUsedSlots(SnapshotChain chain, DiffArea diff) throws IOException {
    for (Snapshot s : chain.list()) {
      s.forEach((block, packed) -> {
        try {
          if (!Snapshot.isZero(packed)) {
            diff.markUsed(Snapshot.slot(packed));
          }
        } catch (VolumeException e) {
          throw new IllegalStateException(e);
        }
      });
    }
    diff.afterRecovery();
  }
}
