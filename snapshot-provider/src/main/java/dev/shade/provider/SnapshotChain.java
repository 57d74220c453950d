package dev.shade.provider;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.shade.nativeio.FileHandle;
import dev.shade.nativeio.MappedFile;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A volume's snapshots, oldest first, with their exception tables: the state transitions
 * (create, delete with merge, revert end), the lookups, the durable record of it all (journal
 * and checkpoint), and the read-only queries on it (snapshot views, changed ranges,
 * allocation).
 *
 * <p>Thread-safe under the volume's locks (see {@code package-info.java}): the list is
 * replaced, never mutated, by callers holding the hold exclusively (or the opening thread),
 * so readers may iterate it freely; queries run with the hold read-held.
 */
final class SnapshotChain {
  /*
   * A read of snapshot S at block b walks S's table, then each newer snapshot's table, then the
   * origin: if b was not written between S and S+1, S's content equals S+1's. Deleting S moves
   * each of its entries to the next-older snapshot when that one lacks the block (the older one
   * needs it, by the rule above) and frees the rest. Blocks that differ between snapshot A and
   * B (or the origin) are exactly the keys of the tables of A..B-1: changed-block tracking
   * costs no data reads.
   *
   * Every change is a journal record committed before it takes effect in memory; fold writes
   * the whole state as the next checkpoint generation and empties the journal. Ids come from
   * nextId, which only grows: it is in every checkpoint, and replaying a create raises it past
   * that create's id, so an id is never handed out twice (not after deleting the newest
   * snapshot, not after a revert, not after a crash).
   */
  /** The journal is folded into the checkpoint when it exceeds this. */
  static final long FOLD_BYTES = 64L << 20;
  /** Zeros to fill reads of zero entries; read-only. */
  static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(VolumeConfig.MAX_BLOCK_SIZE).asReadOnlyBuffer();

  private final Geometry geometry;
  private final Path dir;
  /** The volume's name, for messages and exceptions. */
  private final String volumeName;
  private final Locks locks;
  private final Journal journal;
  private final DiffArea diff;
  private final WriteBehind writeBehind;
  private final MappedFile origin;
  private final FileHandle originFile;
  /** Whether the origin is a regular file (it has holes) rather than a device. */
  private final boolean originIsFile;
  /**
   * (snapshot id, block) → diff location, for blocks a snapshot resolves to the diff area.
   * Such a resolution is stable until a delete or revert, which invalidate the cache; blocks
   * that resolve to the origin are not cached.
   */
  private final Cache<Long, Long> resolved = Caffeine.newBuilder().maximumSize(1 << 16).build();

  /** The snapshots, oldest first; replaced under the exclusive hold, never mutated. */
  private volatile List<Snapshot> snapshots;
  // changed only under the exclusive hold (or by the opening thread)
  /** Id of the next snapshot; only grows. */
  private long nextId;
  /** Generation of the checkpoint and journal. */
  private long generation;

  SnapshotChain(Geometry geometry, Path dir, String volumeName, Locks locks, Journal journal, DiffArea diff,
      WriteBehind writeBehind, MappedFile origin, FileHandle originFile, boolean originIsFile, Checkpoint.State state) {
    this.geometry = geometry;
    this.dir = dir;
    this.volumeName = volumeName;
    this.locks = locks;
    this.journal = journal;
    this.diff = diff;
    this.writeBehind = writeBehind;
    this.origin = origin;
    this.originFile = originFile;
    this.originIsFile = originIsFile;
    this.snapshots = List.copyOf(state.snapshots());
    this.nextId = state.nextId();
    this.generation = state.generation();
  }

  /** The snapshots, oldest first: an immutable list. */
  List<Snapshot> list() {
    return snapshots;
  }

  /** The newest snapshot, or null when there is none. */
  Snapshot newest() {
    List<Snapshot> snaps = snapshots;
    return snaps.isEmpty() ? null : snaps.get(snaps.size() - 1);
  }

  long nextId() {
    return nextId;
  }

  long generation() {
    return generation;
  }

  // ---------------------------------------------------------------- state transitions (in memory)

  /** Adds the snapshot a committed (or replayed) create record names. */
  Snapshot applyCreate(JournalRecord.Create c) {
    Snapshot s = new Snapshot(c.id(), c.name(), c.createdMillis(), c.setId(), c.members(), false,
        c.attributes(), new BlockTable());
    List<Snapshot> next = new ArrayList<>(snapshots);
    next.add(s);
    snapshots = List.copyOf(next);
    nextId = Math.max(nextId, c.id() + 1);
    return s;
  }

  /** Removes {@code s}, moving its entries to the next-older snapshot; returns freed slots. */
  int[] applyDelete(Snapshot s) {
    List<Snapshot> next = new ArrayList<>(snapshots);
    int idx = next.indexOf(s);
    Snapshot older = idx > 0 ? next.get(idx - 1) : null;
    int[][] freed = {new int[Math.max(4, s.entries())]};
    int[] count = {0};
    s.forEach((block, packed) -> {
      if (older != null && !older.contains(block)) {
        older.put(block, packed);
      } else if (!Snapshot.isZero(packed)) {
        freed[0][count[0]++] = Snapshot.slot(packed);
      }
    });
    next.remove(idx);
    snapshots = List.copyOf(next);
    resolved.invalidateAll();
    return Arrays.copyOf(freed[0], count[0]);
  }

  /** The origin now equals the target's view: its preserved copies are no longer needed. */
  int[] applyRevertEnd(Snapshot target) {
    int[] freed = new int[target.entries()];
    int[] count = {0};
    target.forEach((block, packed) -> {
      if (!Snapshot.isZero(packed)) {
        freed[count[0]++] = Snapshot.slot(packed);
      }
    });
    target.clear();
    resolved.invalidateAll();
    return Arrays.copyOf(freed, count[0]);
  }

  // ---------------------------------------------------------------- journaled changes

  /**
   * Commits {@code rec} and adds its snapshot. Caller holds the hold exclusively, with nothing
   * held behind.
   */
  Snapshot create(JournalRecord.Create rec) throws IOException {
    journal.commit(rec);
    return applyCreate(rec); // takes effect once durable
  }

  /**
   * Appends {@code rec} without waiting for it to be durable and applies it, putting its
   * sequence number in {@code seq[i]} for a later {@link Journal#sync}. Any later record (a
   * copy-on-write entry of the new snapshot) is written in the same or a later frame, so it is
   * never durable without this one. Caller holds the hold exclusively.
   */
  Snapshot createNotDurable(JournalRecord.Create rec, long[] seq, int i) {
    seq[i] = journal.append(rec);
    return applyCreate(rec);
  }

  /**
   * Commits the delete of {@code s}, then merges and frees. Caller holds the hold exclusively,
   * with nothing held behind.
   */
  void delete(Snapshot s) throws IOException {
    journal.commit(new JournalRecord.Delete(s.id));
    locks.awaitNoPins(); // a zero-copy send may still read the slots freed below
    for (int slot : applyDelete(s)) {
      diff.free(slot); // safe to reuse: the delete that freed it is durable
    }
    if (snapshots.isEmpty()) {
      diff.releaseAllIfEmpty();
    }
  }

  /**
   * Commits the replacement of {@code s}'s attributes by {@code checked} (from {@link
   * Attributes#checked}), then applies it. Caller holds the hold exclusively (held blocks may
   * stay held: the record names no block).
   */
  void setAttributes(Snapshot s, Map<String, String> checked) throws IOException {
    journal.commit(new JournalRecord.SetAttributes(s.id, checked));
    s.setAttributes(checked); // takes effect once durable
  }

  /**
   * Marks {@code s} as a member of a complete set and appends the record saying so; returns its
   * sequence number for {@link Journal#sync}. Caller holds the hold exclusively.
   */
  long markSetComplete(Snapshot s) {
    s.markSetComplete();
    return journal.append(new JournalRecord.SetComplete(s.id));
  }

  /** Folds when the journal has grown past {@link #FOLD_BYTES}. Caller holds the hold exclusively. */
  void maybeFold() throws IOException {
    if (journal.size() > FOLD_BYTES) {
      fold();
    }
  }

  /**
   * Writes the full state as checkpoint generation+1, then empties the journal. Caller holds
   * the hold exclusively (or is the opening thread).
   */
  void fold() throws IOException {
    writeBehind.drain(); // a held block's record must not be dropped with the journal
    long next = generation + 1;
    Checkpoint.write(dir, new Checkpoint.State(next, nextId, -1, snapshots));
    journal.reset(next);
    generation = next;
  }

  // ---------------------------------------------------------------- lookups

  /** What is known of {@code s}, counting its blocks held behind (see WriteBehind). */
  SnapshotInfo info(Snapshot s) {
    SnapshotInfo i;
    int held;
    synchronized (s) { // no block is published between the two counts
      i = s.info(geometry.blockSize);
      held = writeBehind.slotsHeldFor(s);
    }
    return held == 0 ? i : new SnapshotInfo(i.id(), i.name(), i.created(), i.diffBytes() + (long) held * geometry.blockSize,
        i.setId(), i.attributes());
  }

  Snapshot find(String name) {
    for (Snapshot s : snapshots) {
      if (s.name.equals(name)) {
        return s;
      }
    }
    return null;
  }

  /** The snapshot with id {@code id}, or null. */
  Snapshot findId(long id) {
    for (Snapshot s : snapshots) {
      if (s.id == id) {
        return s;
      }
    }
    return null;
  }

  Snapshot require(SnapshotRef ref) throws SnapshotNotFoundException {
    Snapshot s = ref.isId() ? findId(ref.id()) : find(ref.name());
    if (s == null) {
      throw ref.isId() ? new SnapshotNotFoundException(volumeName, ref.id()) : new SnapshotNotFoundException(volumeName, ref.name());
    }
    return s;
  }

  /** The snapshot {@code ref} names, or null. */
  Snapshot findRef(SnapshotRef ref) {
    return ref.isId() ? findId(ref.id()) : find(ref.name());
  }

  /** The snapshot with id {@code id}, which must exist (an internal invariant). */
  Snapshot byId(long id) {
    Snapshot s = findId(id);
    if (s == null) {
      throw new IllegalStateException("no snapshot with id " + id + " on " + dir);
    }
    return s;
  }

  // ---------------------------------------------------------------- queries (hold read-held, nothing held behind)

  /**
   * The parts of the blocks that differ between {@code a} and {@code b} (or the origin when
   * null) that lie in [offset, offset+length), merged, sorted and clipped to the window. Costs
   * the smaller of one lookup per block of the window per snapshot between and one pass over
   * the entries of those snapshots: a small window of a large volume never walks every entry.
   */
  List<Range> changedRanges(Snapshot a, Snapshot b, long offset, long length) {
    if (b != null && b.id < a.id) {
      Snapshot t = a;
      a = b;
      b = t;
    }
    List<Range> out = new ArrayList<>();
    if (length == 0) {
      return out;
    }
    int shift = geometry.blockShift;
    long first = offset >>> shift;
    long last = (offset + length - 1) >>> shift;
    List<Snapshot> between = new ArrayList<>();
    long entries = 0;
    for (Snapshot s : snapshots) {
      if (s.id >= a.id && (b == null || s.id < b.id)) {
        between.add(s);
        entries += s.entries();
      }
    }
    if (between.isEmpty()) {
      return out;
    }
    long windowBlocks = last - first + 1;
    if (windowBlocks <= entries / between.size()) {
      // probe the window's blocks, ascending: runs come out sorted
      long runStart = -1;
      for (long blk = first; blk <= last; blk++) {
        boolean changed = false;
        for (Snapshot s : between) {
          if (s.contains(blk)) {
            changed = true;
            break;
          }
        }
        if (changed && runStart < 0) {
          runStart = blk;
        } else if (!changed && runStart >= 0) {
          addClipped(out, runStart, blk - 1, offset, length);
          runStart = -1;
        }
      }
      if (runStart >= 0) {
        addClipped(out, runStart, last, offset, length);
      }
      return out;
    }
    BlockTable union = new BlockTable();
    boolean whole = first == 0 && last == (geometry.size - 1) >>> shift;
    for (Snapshot s : between) {
      s.forEach((blk, packed) -> {
        if (whole || blk >= first && blk <= last) {
          union.put(blk, 0);
        }
      });
    }
    long[] blocks = union.sortedBlocks();
    int i = 0;
    while (i < blocks.length) {
      int j = i;
      while (j + 1 < blocks.length && blocks[j + 1] == blocks[j] + 1) {
        j++;
      }
      addClipped(out, blocks[i], blocks[j], offset, length);
      i = j + 1;
    }
    return out;
  }

  /** Adds blocks [firstBlock, lastBlock] as a range clipped to the volume and to [offset, offset+length). */
  private void addClipped(List<Range> out, long firstBlock, long lastBlock, long offset, long length) {
    long start = Math.max(offset, firstBlock << geometry.blockShift);
    long end = Math.min(Math.min(geometry.size, offset + length), (lastBlock + 1) << geometry.blockShift);
    out.add(new Range(start, end - start));
  }

  /**
   * The allocation of [offset, offset+length) of the origin ({@code snap} null) or of
   * {@code snap}, as sorted, adjacent extents.
   */
  List<Extent> allocation(Snapshot snap, long offset, long length) throws IOException {
    List<Extent> out = new ArrayList<>();
    if (snap == null) {
      originAllocation(offset, offset + length, out);
      return out;
    }
    int shift = geometry.blockShift;
    List<Snapshot> snaps = snapshots;
    int from = snaps.indexOf(snap);
    long end = offset + length;
    long pos = offset;
    while (pos < end) {
      long b = pos >>> shift;
      int state = preservedState(snaps, from, b);
      long runEnd = Math.min(end, (b + 1) << shift);
      while (runEnd < end && preservedState(snaps, from, runEnd >>> shift) == state) {
        runEnd = Math.min(end, ((runEnd >>> shift) + 1) << shift);
      }
      if (state == 0) {
        originAllocation(pos, runEnd, out);
      } else {
        add(out, pos, runEnd - pos, state == 2);
      }
      pos = runEnd;
    }
    return out;
  }

  private void originAllocation(long pos, long end, List<Extent> out) throws IOException {
    if (!originIsFile) {
      add(out, pos, end - pos, false);
      return;
    }
    while (pos < end) {
      long data = originFile.nextData(pos);
      if (data < 0 || data >= end) {
        add(out, pos, end - pos, true);
        return;
      }
      if (data > pos) {
        add(out, pos, data - pos, true);
      }
      long next = originFile.nextHole(data);
      long hole = next < 0 ? end : Math.min(end, next);
      add(out, data, hole - data, false);
      pos = hole;
    }
  }

  /** Appends, merging with the previous extent when the state is the same. */
  private static void add(List<Extent> out, long offset, long length, boolean zero) {
    if (length <= 0) {
      return;
    }
    if (!out.isEmpty()) {
      Extent last = out.get(out.size() - 1);
      if (last.zero() == zero && last.end() == offset) {
        out.set(out.size() - 1, new Extent(last.offset(), last.length() + length, zero));
        return;
      }
    }
    out.add(new Extent(offset, length, zero));
  }

  /** 0: the snapshot reads the block from the origin; 1: from a diff slot; 2: it holds zeros. */
  private static int preservedState(List<Snapshot> snaps, int from, long block) {
    long packed = resolveIn(snaps, from, block);
    return packed == -1 ? 0 : Snapshot.isZero(packed) ? 2 : 1;
  }

  /** The diff location that snapshot {@code snaps[from]} reads {@code block} from, or -1. */
  static long resolveIn(List<Snapshot> snaps, int from, long block) {
    for (int i = from; i < snaps.size(); i++) {
      long packed = snaps.get(i).get(block);
      if (packed != -1) {
        return packed;
      }
    }
    return -1;
  }

  /**
   * See {@link Volume#pinSnapshotBytes}: the bytes of {@code snap} in [offset, offset + length)
   * as pinned views, or null when a part of them is not in memory, a run crosses a mapping
   * chunk, the snapshot is gone or the volume is closed (the caller then reads with a copy).
   */
  PinnedBytes pin(Snapshot snap, long offset, int length) {
    /*
     * Block by block under its stripe's read lock, as a snapshot read: blocks resolved to the
     * origin are pinned there (consecutive ones in one pin), so a writer, which takes the stripe
     * for writing, cannot overwrite them until the release; blocks in diff slots are covered by
     * one slot pin, which holds off the deletes and reverts that free slots. Adjacent pieces of
     * one file are merged into one buffer (a run of unchanged blocks is one view of the origin).
     * Residency is checked once per run at the end, with every pin already taken; a miss
     * releases them all: the caller copies instead, and that read waits for the disk.
     */
    if (length <= 0 || offset < 0 || offset > geometry.size - length) {
      return null;
    }
    Pinned p = new Pinned();
    boolean ok = false;
    locks.hold.readLock().lock();
    try {
      if (locks.isClosed()) {
        return null;
      }
      List<Snapshot> snaps = snapshots; // stable while the hold is read-held
      int from = snaps.indexOf(snap);
      if (from < 0) {
        return null; // the read reports the missing snapshot
      }
      int shift = geometry.blockShift; // locals: this loop runs once per block of every send
      int mask = geometry.blockSize - 1;
      Locks.Pin originPin = null;
      long pos = offset;
      long end = offset + length;
      while (pos < end) {
        long b = pos >>> shift;
        int within = (int) (pos & mask);
        int n = (int) Math.min(end - pos, geometry.blockLength(b) - within);
        ReentrantReadWriteLock stripe = locks.stripe(b);
        if (!stripe.readLock().tryLock()) {
          if (!p.pins.isEmpty()) {
            // a write holds this stripe and may be waiting for a pin this range already took (it holds its
            // blocks' stripes, then waits for their pins): waiting here would deadlock both. The pins taken go
            // (finally below) and the read copies as without zero-copy
            return null;
          }
          stripe.readLock().lock(); // no origin pin held yet: nothing a writer could be waiting for
        }
        try {
          long packed = resolve(snap, snaps, from, b);
          if (packed == -1) {
            if (originPin != null && originPin.last == b - 1) {
              locks.extendPin(originPin, b);
            } else {
              originPin = locks.pin(b, b);
              p.pins.add(originPin);
            }
            p.add(Pinned.ORIGIN, pos, n);
          } else if (Snapshot.isZero(packed)) {
            p.add(Pinned.ZERO, 0, n);
          } else {
            if (p.slotPin == null) {
              p.slotPin = locks.pinSlots();
            }
            p.add(Pinned.DIFF, diff.offset(Snapshot.slot(packed)) + within, n);
          }
        } finally {
          stripe.readLock().unlock();
        }
        pos += n;
      }
      ok = p.finish();
      return ok ? p : null;
    } finally {
      locks.hold.readLock().unlock();
      if (!ok) {
        p.release();
      }
    }
  }

  /** The pieces of one pinned range and the pins that hold them. */
  private final class Pinned implements PinnedBytes {
    static final int ORIGIN = 0;
    static final int DIFF = 1;
    static final int ZERO = 2;
    /** Origin pins taken, each released once. */
    final List<Locks.Pin> pins = new ArrayList<>(2);
    /** The slot pin, or null when no piece is in the diff area. */
    Locks.Pin slotPin;
    /** Runs: kind, file position, length; {@code runs} of them are in use. */
    private long[] run = new long[3 * 4];
    private int runs;
    /** The views, set by finish. */
    private ByteBuffer[] buffers;
    /** Set by the first release. */
    private final java.util.concurrent.atomic.AtomicBoolean released = new java.util.concurrent.atomic.AtomicBoolean();
    /** Set when the holder's callback has been called. */
    private final java.util.concurrent.atomic.AtomicBoolean told = new java.util.concurrent.atomic.AtomicBoolean();

    /** Appends a piece, merging it with the last run when it continues it in the same file. */
    void add(int kind, long at, int n) {
      if (runs > 0) {
        int i = 3 * (runs - 1);
        if (run[i] == kind && (kind == ZERO ? run[i + 2] + n <= ZEROS.capacity() : run[i + 1] + run[i + 2] == at)
            && run[i + 2] + n <= Integer.MAX_VALUE) {
          run[i + 2] += n;
          return;
        }
      }
      if (3 * runs == run.length) {
        run = Arrays.copyOf(run, run.length * 2);
      }
      int i = 3 * runs++;
      run[i] = kind;
      run[i + 1] = at;
      run[i + 2] = n;
    }

    /** Makes the views; false when a run is not resident or crosses a mapping chunk. */
    boolean finish() {
      ByteBuffer[] out = new ByteBuffer[runs];
      for (int k = 0; k < runs; k++) {
        int kind = (int) run[3 * k];
        long at = run[3 * k + 1];
        int n = (int) run[3 * k + 2];
        ByteBuffer v;
        if (kind == ZERO) {
          v = ZEROS.slice(0, n);
        } else if (kind == ORIGIN) {
          v = origin.isResident(at, n) ? origin.view(at, n) : null;
        } else {
          v = diff.isResident(at, n) ? diff.view(at, n) : null;
        }
        if (v == null) {
          return false;
        }
        out[k] = v;
      }
      buffers = out;
      return true;
    }

    @Override
    public ByteBuffer[] buffers() {
      return buffers;
    }

    @Override
    public void whenWanted(Runnable callback) {
      Runnable once = () -> {
        if (told.compareAndSet(false, true)) {
          callback.run();
        }
      };
      for (Locks.Pin pin : pins) {
        locks.whenWanted(pin, once);
      }
      if (slotPin != null) {
        locks.whenWanted(slotPin, once);
      }
    }

    @Override
    public void release() {
      if (!released.compareAndSet(false, true)) {
        return;
      }
      for (Locks.Pin pin : pins) {
        locks.unpin(pin);
      }
      if (slotPin != null) {
        locks.unpin(slotPin);
      }
    }
  }

  /** The diff location that {@code snap} (at {@code from} in {@code snaps}) reads {@code block} from, or -1; cached. */
  private long resolve(Snapshot snap, List<Snapshot> snaps, int from, long block) {
    long key = (snap.id << 40) | block;
    Long hit = resolved.getIfPresent(key);
    if (hit != null) {
      return hit;
    }
    long packed = resolveIn(snaps, from, block);
    if (packed != -1) {
      resolved.put(key, packed);
    }
    return packed;
  }

  /** A read-only view of {@code snap}; valid until the snapshot is deleted or the volume closed. */
  BlockSource view(Snapshot snap) {
    return new SnapshotView(snap);
  }

  /** Read-only view of one snapshot: each block from the first table that holds it, else the origin. */
  private final class SnapshotView implements BlockSource {
    private final Snapshot snap;

    SnapshotView(Snapshot snap) {
      this.snap = snap;
    }

    @Override
    public long size() {
      return geometry.size;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
      geometry.checkRange(offset, dst.remaining());
      locks.hold.readLock().lock();
      try {
        locks.ensureOpen();
        List<Snapshot> snaps = snapshots; // stable while the hold is read-held
        int from = snaps.indexOf(snap);
        if (from < 0) {
          throw new SnapshotNotFoundException(volumeName, snap.name);
        }
        locks.readByBlock(offset, dst, (b, within, at, piece) -> {
          long packed = resolve(snaps, from, b);
          if (packed == -1) {
            origin.read(at, piece);
          } else if (Snapshot.isZero(packed)) {
            piece.put(ZEROS.slice(0, piece.remaining()));
          } else {
            diff.read(Snapshot.slot(packed), within, piece);
          }
        });
      } finally {
        locks.hold.readLock().unlock();
      }
    }

    private long resolve(List<Snapshot> snaps, int from, long block) {
      return SnapshotChain.this.resolve(snap, snaps, from, block);
    }

    @Override
    public void close() {
      // nothing held: the volume owns every resource
    }

    @Override
    public String toString() {
      return "snapshot " + snap.name + " of " + geometry;
    }
  }
}
