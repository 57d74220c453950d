package dev.shade.provider;

import dev.shade.nativeio.FileHandle;
import dev.shade.nativeio.MappedFile;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A copy-on-write volume: an origin, a diff area of old block contents, and the snapshots
 * that share it.
 *
 * <p>Thread-safe: any number of threads may read, write, flush and read snapshots at once;
 * snapshot creation, deletion and revert briefly hold all I/O. One process opens a volume at a
 * time (an exclusive {@code flock} on {@code DIR/lock}).
 */
public final class Volume implements BlockDevice {
  /*
   * Copy-on-write, after the VSS software provider's diff area and dm-snapshot's exception
   * store, with dm-snapshot's classic N-copies-per-write cost removed: the first write to a
   * block after the newest snapshot was taken copies the block's old contents once, into the
   * NEWEST snapshot's table only, so write cost is one lookup and at most one copy whatever the
   * number of snapshots.
   *
   * This class is the facade: it opens and closes the files and hands each call to the part
   * whose one job it is (all package-private, final):
   *
   *   CowWriter      origin reads and copy-on-write writes, write-behind, flush, making room
   *   SnapshotChain  the snapshots and their tables: create/delete/merge, lookups, snapshot
   *                  views, changed ranges, allocation, journal fold into the checkpoint
   *   Reverter       revert to a snapshot, and finishing an interrupted one
   *   Recovery       what open does after a crash (last frame check, replay, slot map)
   *   SnapshotSet /
   *   PreparedSnapshotSet   snapshots of several volumes at one instant, and reconciliation
   *   Locks          the hold, the stripes and the closed state
   *
   * Every lock of the package, what it guards and the order they are taken in: the table in
   * package-info.java.
   */
  private static final Logger LOG = LoggerFactory.getLogger(Volume.class);

  static final String ORIGIN_FILE = "origin.img";
  static final String DIFF_FILE = "diff.area";
  static final String JOURNAL_FILE = "journal";
  static final String LOCK_FILE = "lock";
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}");
  /**
   * First writes held in memory until their copies are durable, at most this many bytes (see
   * WriteBehind). Every flush and snapshot first commits all of them, so this bounds what a
   * snapshot under a write load waits for: 64 MiB gave a p99 of 110 ms per creation under 4 KiB
   * random writes through the agent, 8 MiB 55-65 ms (docs/performance.md).
   */
  static final long WRITE_BEHIND_BYTES = Long.getLong("shade.writeBehind.bytes", 8L << 20);
  /**
   * Background writeback of the origin (see OriginWriteback) starts after this many bytes were
   * written since the last start ({@code shade.writeback.bytes}, 0 turns it off) ...
   */
  static final long WRITEBACK_BYTES = Long.getLong("shade.writeback.bytes", 1L << 20);
  /** ... or this many milliseconds after the first of them ({@code shade.writeback.ms}, 0 turns it off). */
  static final long WRITEBACK_MS = Long.getLong("shade.writeback.ms", 5);
  /** How long snapshot creation waits for in-flight I/O to drain before giving up. */
  static final long HOLD_TIMEOUT_MS = Long.getLong("shade.hold.timeout.ms", 5000);
  /** See {@link CowWriter#ORIGIN_PIECE}. */
  static final int ORIGIN_PIECE = CowWriter.ORIGIN_PIECE;

  private final Path dir;
  private final VolumeMeta meta;
  private final VolumeConfig config;
  private final Geometry geometry;
  /** Held (flock) for as long as this volume is open. */
  private final FileHandle lockFile;
  private final FileHandle originFile;
  private final MappedFile origin;
  private final Path originPath;
  private final DiffArea diff;
  private final Path diffPath;
  private final Journal journal;
  private final WriteBehind writeBehind;
  private final OriginWriteback writeback;
  private final Locks locks;
  private final SnapshotChain chain;
  private final CowWriter writer;
  private final Reverter reverter;
  private final List<VolumeListener> listeners = new CopyOnWriteArrayList<>();

  private Volume(Path dir, VolumeMeta meta, FileHandle lockFile, FileHandle originFile, MappedFile origin,
      Path originPath, boolean originIsFile, DiffArea diff, Path diffPath, FileHandle journalFile,
      Checkpoint.State state, Journal.Replay replay) throws IOException {
    this.dir = dir;
    this.meta = meta;
    this.config = meta.config();
    this.geometry = new Geometry(config.size(), config.blockSize(), "Volume(" + dir + ")");
    this.lockFile = lockFile;
    this.originFile = originFile;
    this.origin = origin;
    this.originPath = originPath;
    this.diff = diff;
    this.diffPath = diffPath;
    this.locks = new Locks(geometry);
    replay = Recovery.dropUncopiedLastFrame(replay, diff, geometry, journalFile, dir);
    boolean oneDevice = sameDevice(diffPath, journalFile.path());
    this.journal = new Journal(journalFile, state.generation(), replay.stale() ? 0 : replay.end(),
        replay.frames(), new Journal.ForceHook() {
          @Override
          public void force(long lo, long hi) throws IOException {
            diff.force(lo, hi);
          }

          @Override
          public boolean writeBack(long lo, long hi) throws IOException {
            if (!oneDevice) {
              return false;
            }
            // slots lie in the formatted prefix: overwrites that need no metadata, so the
            // journal's fdatasync flush of this device covers them (one flush, not two)
            diff.writeBack(lo, hi);
            return true;
          }
        });
    // the committer runs only once writes hold blocks, after the constructor has finished
    this.writeBehind = new WriteBehind(String.valueOf(dir.getFileName()), config.blockSize(), WRITE_BEHIND_BYTES,
        this::commitHeld);
    String name = name(dir);
    this.writeback = new OriginWriteback(String.valueOf(dir.getFileName()), originFile, WRITEBACK_BYTES, WRITEBACK_MS);
    this.chain = new SnapshotChain(geometry, dir, name, locks, journal, diff, writeBehind, origin, originFile,
        originIsFile, state);
    this.writer = new CowWriter(geometry, name, locks, chain, origin, originFile, originIsFile, diff, diffPath,
        config.diffMax(), journal, writeBehind, oneDevice, listeners, writeback);
    this.reverter = new Reverter(geometry, locks, chain, writer, writeBehind, journal, diff, diffPath, originFile);
    try {
      long revertPending = Recovery.replay(chain, state.revertPending(), replay.records(), journalFile.path());
      Recovery.markUsedSlots(chain, diff);
      if (replay.stale()) {
        journal.reset(state.generation());
      }
      if (revertPending >= 0) {
        Snapshot target = chain.byId(revertPending);
        LOG.warn("{}: finishing the revert to snapshot {} that was interrupted", dir, target.name);
        reverter.finish(target, Progress.NONE);
      }
      long keepPending = replay.stale() ? -1 : Recovery.pendingKeepRevert(chain, replay.records(), journalFile.path());
      if (keepPending >= 0) {
        Snapshot target = chain.byId(keepPending);
        LOG.warn("{}: finishing the revert to snapshot {} (keeping the newer snapshots) that was interrupted", dir, target.name);
        reverter.finishKeepingNewer(target, Progress.NONE);
      }
      if (!replay.records().isEmpty()) {
        chain.fold();
      }
    } catch (IOException | RuntimeException e) {
      writeback.close(); // the caller closes the files
      throw e;
    }
  }

  /** The committer of {@link #writeBehind}. */
  private void commitHeld(List<WriteBehind.Entry> batch, long upToSeq) throws IOException {
    writer.commitHeld(batch, upToSeq);
  }

  /** Whether both files live on one block device (so one cache flush covers both). */
  private static boolean sameDevice(Path a, Path b) {
    try {
      return Files.getAttribute(a, "unix:dev").equals(Files.getAttribute(b, "unix:dev"));
    } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
      return false;
    }
  }

  // ---------------------------------------------------------------- create / open / close

  /** Creates a new volume in {@code dir} (created if missing, must be empty otherwise). */
  public static Volume create(Path dir, VolumeConfig config) throws IOException {
    if (Files.exists(dir)) {
      if (!Files.isDirectory(dir)) {
        throw new VolumeException("not a directory: " + dir);
      }
      try (Stream<Path> s = Files.list(dir)) {
        if (s.findAny().isPresent()) {
          throw new VolumeException("directory is not empty: " + dir + " (a volume needs a directory of its own)");
        }
      }
    } else {
      Files.createDirectories(dir);
    }
    VolumeConfig c = config;
    List<Path> created = new ArrayList<>();
    try {
      if (c.origin() == null) {
        Path p = dir.resolve(ORIGIN_FILE);
        try (FileHandle fh = FileHandle.open(p, FileHandle.O_RDWR | FileHandle.O_CREAT | FileHandle.O_EXCL, 0600)) {
          created.add(p);
          fh.truncate(c.size());
        }
      } else {
        Path p = c.origin().toAbsolutePath();
        c = c.withOrigin(p);
        try (FileHandle fh = FileHandle.openReadWrite(p)) {
          long have = fh.size();
          if (have < c.size()) {
            if (!Files.isRegularFile(p)) {
              throw new VolumeException("origin " + p + " holds " + have + " bytes, less than the volume size " + c.size());
            }
            fh.truncate(c.size());
          }
        }
      }
      Path diffFile;
      if (c.diffArea() == null) {
        diffFile = dir.resolve(DIFF_FILE);
      } else {
        Path p = c.diffArea().toAbsolutePath();
        diffFile = Files.isDirectory(p) ? p.resolve(dir.toAbsolutePath().getFileName() + "-" + UUID.randomUUID().toString().substring(0, 8) + ".diff") : p;
        c = c.withDiffArea(diffFile);
      }
      try (FileHandle fh = FileHandle.open(diffFile, FileHandle.O_RDWR | FileHandle.O_CREAT | FileHandle.O_EXCL, 0600)) {
        created.add(diffFile);
        long diffLen = c.diffMax() / c.blockSize() * c.blockSize();
        fh.truncate(diffLen);
        DiffArea.formatNew(fh, diffLen);
      }
      Path journal = dir.resolve(JOURNAL_FILE);
      try (FileHandle fh = FileHandle.open(journal, FileHandle.O_RDWR | FileHandle.O_CREAT | FileHandle.O_EXCL, 0600)) {
        created.add(journal);
        fh.fsync();
      }
      created.add(dir.resolve(Checkpoint.FILE));
      Checkpoint.write(dir, new Checkpoint.State(1, 1, -1, List.of()));
      created.add(dir.resolve(VolumeMeta.FILE));
      VolumeMeta.fresh(c).store(dir); // last: its presence means the volume is complete
    } catch (IOException | RuntimeException e) {
      for (Path p : created) {
        try {
          Files.deleteIfExists(p);
        } catch (IOException suppressed) {
          e.addSuppressed(suppressed);
        }
      }
      throw e;
    }
    return open(dir);
  }

  /** True if {@code dir} holds a volume's metadata. */
  public static boolean isVolume(Path dir) {
    return VolumeMeta.exists(dir);
  }

  /** Opens an existing volume, recovering from a crash if needed. One process at a time. */
  public static Volume open(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new VolumeException("no such volume directory: " + dir);
    }
    VolumeMeta meta = VolumeMeta.load(dir);
    VolumeConfig c = meta.config();
    List<AutoCloseable> opened = new ArrayList<>();
    try {
      FileHandle lock = FileHandle.create(dir.resolve(LOCK_FILE));
      opened.add(lock);
      if (!lock.lock(true, false)) {
        throw new VolumeException("volume is in use by another process: " + dir);
      }
      Path originPath = c.origin() == null ? dir.resolve(ORIGIN_FILE) : c.origin();
      FileHandle originFile = FileHandle.openReadWrite(originPath);
      opened.add(originFile);
      if (originFile.size() < c.size()) {
        throw new VolumeException("origin " + originPath + " holds " + originFile.size()
            + " bytes, less than the volume size " + c.size() + " (truncated?)");
      }
      MappedFile origin = MappedFile.map(originFile, c.size(), true, MappedFile.DEFAULT_CHUNK_POWER);
      opened.add(origin);
      Path diffPath = c.diffArea() == null ? dir.resolve(DIFF_FILE) : c.diffArea();
      FileHandle diffFile = FileHandle.openReadWrite(diffPath);
      opened.add(diffFile);
      long diffLen = c.diffMax() / c.blockSize() * c.blockSize();
      if (diffFile.size() < diffLen) {
        throw new VolumeException("diff area " + diffPath + " holds " + diffFile.size()
            + " bytes, less than its configured " + diffLen + " (truncated?)");
      }
      MappedFile diffMap = MappedFile.map(diffFile, diffLen, true, MappedFile.DEFAULT_CHUNK_POWER);
      opened.add(diffMap);
      FileHandle diffDirect = DiffArea.openDirect(diffPath);
      if (diffDirect != null) {
        opened.add(diffDirect);
      }
      DiffArea diff = new DiffArea(diffFile, diffDirect, diffMap, c.blockSize(), c.diffMax());
      Checkpoint.State state = Checkpoint.read(dir);
      Path journalPath = dir.resolve(JOURNAL_FILE);
      if (!Files.exists(journalPath)) {
        throw new VolumeException("volume journal is missing: " + journalPath + " does not exist; the volume cannot be opened safely");
      }
      FileHandle journalFile = FileHandle.openReadWrite(journalPath);
      opened.add(journalFile);
      Journal.Replay replay = Journal.read(journalFile, state.generation());
      return new Volume(dir, meta, lock, originFile, origin, originPath, Files.isRegularFile(originPath),
          diff, diffPath, journalFile, state, replay);
    } catch (IOException | RuntimeException e) {
      Collections.reverse(opened);
      for (AutoCloseable a : opened) {
        try {
          a.close();
        } catch (Exception suppressed) {
          e.addSuppressed(suppressed);
        }
      }
      if (e instanceof IllegalStateException && e.getCause() instanceof VolumeException) {
        throw new VolumeException(e.getCause().getMessage() + " (volume " + dir + ")", e.getCause());
      }
      throw e;
    }
  }

  /**
   * Opens the volumes of {@code dirs} (in that order) and reconciles their snapshot sets (see
   * {@link SnapshotSet#reconcile}): a set that a crash left on some of its members only is
   * deleted from those that have it. Sets with members outside {@code dirs} are kept; ask
   * {@link SnapshotSet#reconcile} again for the list of them. On failure every volume opened so
   * far is closed again.
   */
  public static List<Volume> openAll(List<Path> dirs) throws IOException {
    List<Volume> opened = new ArrayList<>();
    try {
      for (Path d : dirs) {
        opened.add(open(d));
      }
      SnapshotSet.reconcile(opened);
      return opened;
    } catch (IOException | RuntimeException e) {
      Collections.reverse(opened);
      for (Volume v : opened) {
        try {
          v.close();
        } catch (IOException | RuntimeException suppressed) {
          e.addSuppressed(suppressed);
        }
      }
      throw e;
    }
  }

  /** Folds the journal into the checkpoint, flushes and releases everything. Idempotent. */
  @Override
  public void close() throws IOException {
    locks.hold.writeLock().lock();
    try {
      if (locks.isClosed()) {
        return;
      }
      locks.markClosed();
      try {
        locks.awaitNoPins(); // no zero-copy send may read a mapping after it is unmapped
        writeBehind.close();
        originFile.fdatasync();
        if (journal.size() > 0) {
          chain.fold();
        }
      } finally {
        closeAll(writeback, origin, originFile, diff, journal, lockFile);
      }
    } finally {
      locks.hold.writeLock().unlock();
    }
  }

  /** Closes every one of {@code all}, then throws the first failure (later ones suppressed). */
  private static void closeAll(AutoCloseable... all) throws IOException {
    IOException first = null;
    for (AutoCloseable a : all) {
      try {
        a.close();
      } catch (Exception e) {
        if (first == null) {
          first = e instanceof IOException ? (IOException) e : new IOException(e);
        } else {
          first.addSuppressed(e);
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }

  // ---------------------------------------------------------------- description

  public Path directory() {
    return dir;
  }

  /** The volume's name: its directory's file name. */
  public String name() {
    return name(dir);
  }

  private static String name(Path dir) {
    return dir.toAbsolutePath().normalize().getFileName().toString();
  }

  public VolumeConfig config() {
    return config;
  }

  /** The volume's unique id, fixed at creation. */
  public String uuid() {
    return meta.uuid();
  }

  public Path originPath() {
    return originPath;
  }

  public Path diffAreaPath() {
    return diffPath;
  }

  @Override
  public long size() {
    return geometry.size;
  }

  public int blockSize() {
    return geometry.blockSize;
  }

  /** Bytes of the diff area in use by snapshots now. */
  public long diffUsedBytes() {
    return diff.usedBytes();
  }

  /** Bytes of journal not yet folded into the checkpoint. */
  public long journalBytes() {
    return journal.size();
  }

  /** Whether {@link #close} has run. */
  public boolean isClosed() {
    return locks.isClosed();
  }

  public void addListener(VolumeListener listener) {
    listeners.add(listener);
  }

  @Override
  public String toString() {
    return "Volume(" + dir + ")";
  }

  // ---------------------------------------------------------------- origin I/O

  @Override
  public void read(long offset, ByteBuffer dst) throws IOException {
    writer.read(offset, dst);
  }

  /**
   * Whether reading [offset, offset+length) of the origin would be served from memory. A hint
   * for servers deciding where to run a read; it can be stale by the time the read happens.
   */
  public boolean isCached(long offset, int length) {
    return writer.isCached(offset, length);
  }

  /**
   * A read-only view straight onto the origin's page cache for [offset, offset+length), or
   * null when that is not to be had cheaply (not all resident, writes held behind, crossing a
   * mapping chunk). For servers that send cached data without copying it first. The view is
   * valid until the volume is closed, and it is the live origin: a write that lands before the
   * view is read shows through, as for any read concurrent with a write.
   */
  public ByteBuffer residentView(long offset, int length) {
    return writer.residentView(offset, length);
  }

  /**
   * The snapshot's bytes in [offset, offset+length) as read-only views of the page cache of the
   * volume's files (the diff area where the snapshot holds a copy, the origin where the block is
   * unchanged since) and of zeros, pinned: they stay the snapshot's bytes until
   * {@link PinnedBytes#release}, even when the origin is written meanwhile (such a write waits
   * for the release after preserving the old contents). Null when that is not to be had cheaply:
   * a part not in memory, a run crossing a mapping chunk, an unknown snapshot, a closed volume;
   * the caller then reads through {@link #openSnapshot}. For servers that send snapshot data
   * without copying it first; the caller must release soon and exactly once.
   */
  public PinnedBytes pinSnapshotBytes(SnapshotRef ref, long offset, int length) {
    Snapshot s = locks.isClosed() ? null : chain.findRef(ref);
    return s == null ? null : chain.pin(s, offset, length);
  }

  /**
   * Whether a write to the range would first have to preserve old contents (a copy, and for
   * large ones a journal sync) or lands on a block held behind. A hint, read without locks, for
   * servers deciding where to run a write; the write itself decides again under its locks.
   */
  public boolean needsCopy(long offset, long length) {
    return writer.needsCopy(offset, length);
  }

  @Override
  public void write(long offset, ByteBuffer src) throws IOException {
    writer.write(offset, src);
  }

  @Override
  public void writeZeroes(long offset, long length) throws IOException {
    writer.writeZeroes(offset, length);
  }

  @Override
  public void trim(long offset, long length) throws IOException {
    writer.trim(offset, length);
  }

  /**
   * Makes every origin write that returned before this call durable. The origin's dirty pages
   * are in the page cache (shared mapping), so one fdatasync writes exactly those, however
   * large the volume; msync of a whole 64 GiB mapping would walk every page table entry.
   */
  @Override
  public void flush() throws IOException {
    writer.flush();
  }

  // ---------------------------------------------------------------- snapshots

  /** Takes a snapshot now; {@code name} null gives {@code s<id>}. Returns once durable. */
  public SnapshotInfo createSnapshot(String name) throws IOException {
    return createSnapshot(name, Map.of());
  }

  /**
   * Takes a snapshot now with {@code attributes} (null: none), recorded in the snapshot's own
   * create record: after a crash the snapshot exists with them or not at all. {@code name} null
   * gives {@code s<id>}. Returns once durable.
   *
   * @throws IllegalArgumentException for an invalid name, key, or attributes over 256 KiB
   *     encoded (see {@link #setSnapshotAttributes})
   */
  public SnapshotInfo createSnapshot(String name, Map<String, String> attributes) throws IOException {
    return createSnapshotSet(List.of(this), name, attributes).get(0);
  }

  /**
   * Takes one snapshot on each volume at the same instant: all writes to all of them are held
   * while the snapshots are committed. The members share a set id and a name ({@code s<id>}
   * with one id for all when {@code name} is null). The same as {@link SnapshotSet#prepare}
   * and then {@link PreparedSnapshotSet#commit} with the default hold timeout
   * ({@code shade.hold.timeout.ms}, 5 s); returns each member's snapshot in the order of
   * {@code volumes}.
   */
  public static List<SnapshotInfo> createSnapshotSet(List<Volume> volumes, String name) throws IOException {
    return createSnapshotSet(volumes, name, Map.of());
  }

  /**
   * {@link #createSnapshotSet(List, String)} giving every member's snapshot {@code attributes}
   * (null: none), in each member's create record (see {@link
   * PreparedSnapshotSet#commit(String, Duration, Map)}).
   */
  public static List<SnapshotInfo> createSnapshotSet(List<Volume> volumes, String name, Map<String, String> attributes)
      throws IOException {
    Map<String, String> checked = Attributes.checked(attributes); // before the flushes of prepare
    try (PreparedSnapshotSet set = SnapshotSet.prepare(volumes)) {
      return set.commit(name, Duration.ofMillis(HOLD_TIMEOUT_MS), checked);
    }
  }

  /**
   * Replaces the whole attribute map of a snapshot with {@code attributes} (null or empty:
   * none); durable when it returns, and kept across reopen, crash recovery, deletes of other
   * snapshots (a merge leaves the surviving snapshot's own attributes), a revert to it or to a
   * newer one, and reconciliation. Holds the volume's I/O for one journal commit, as a delete
   * does. Returns the snapshot as it now is.
   *
   * <p>Keys are 1 to 200 characters of {@code [A-Za-z0-9._-]}; values are any text (valid
   * UTF-16, so that it encodes to UTF-8), of any length; the whole map of one snapshot must
   * encode to at most 256 KiB (per entry: key and value bytes in UTF-8 plus 6).
   *
   * @throws IllegalArgumentException naming the key that is invalid or makes the map too large
   * @throws SnapshotNotFoundException when the volume has no such snapshot
   */
  public SnapshotInfo setSnapshotAttributes(SnapshotRef ref, Map<String, String> attributes) throws IOException {
    Map<String, String> checked = Attributes.checked(attributes);
    locks.hold.writeLock().lock();
    try {
      locks.ensureOpen();
      Snapshot s = chain.require(ref);
      chain.setAttributes(s, checked);
      chain.maybeFold();
      return chain.info(s);
    } finally {
      locks.hold.writeLock().unlock();
    }
  }

  /** The snapshots, oldest first. */
  public List<SnapshotInfo> snapshots() {
    locks.ensureOpen();
    List<SnapshotInfo> out = new ArrayList<>();
    for (Snapshot s : chain.list()) {
      out.add(chain.info(s));
    }
    return out;
  }

  public SnapshotInfo snapshot(String name) throws SnapshotNotFoundException {
    return snapshot(SnapshotRef.ofName(name));
  }

  /** The snapshot with id {@code id}; ids are never reused within a volume. */
  public SnapshotInfo snapshotById(long id) throws SnapshotNotFoundException {
    return snapshot(SnapshotRef.ofId(id));
  }

  public SnapshotInfo snapshot(SnapshotRef ref) throws SnapshotNotFoundException {
    locks.ensureOpen();
    return chain.info(chain.require(ref));
  }

  public void deleteSnapshot(String name) throws IOException {
    deleteSnapshot(SnapshotRef.ofName(name));
  }

  public void deleteSnapshot(SnapshotRef ref) throws IOException {
    locks.hold.writeLock().lock();
    try {
      locks.ensureOpen();
      writeBehind.drain();
      chain.delete(chain.require(ref));
      chain.maybeFold();
    } finally {
      locks.hold.writeLock().unlock();
    }
  }

  /** A read-only view of the snapshot; valid until the snapshot is deleted or the volume closed. */
  public BlockSource openSnapshot(String name) throws IOException {
    return openSnapshot(SnapshotRef.ofName(name));
  }

  /** A read-only view of the snapshot; valid until the snapshot is deleted or the volume closed. */
  public BlockSource openSnapshot(SnapshotRef ref) throws IOException {
    locks.ensureOpen();
    return chain.view(chain.require(ref));
  }

  /**
   * The ranges that may differ between snapshot {@code from} and snapshot {@code to} (or the
   * current origin when {@code to} is null), in block units, merged and sorted. Reads no data.
   */
  public List<Range> changedRanges(String from, String to) throws IOException {
    return changedRanges(SnapshotRef.ofName(from), SnapshotRef.nameOrNull(to));
  }

  /** {@link #changedRanges(String, String)} by reference ({@code to} null: the origin). */
  public List<Range> changedRanges(SnapshotRef from, SnapshotRef to) throws IOException {
    return changedRanges(from, to, 0, geometry.size);
  }

  /**
   * The part of {@link #changedRanges(String, String)} that lies in [offset, offset+length):
   * its ranges that overlap the window, clipped to it. Costs what the window holds, not what
   * the volume holds (for NBD BLOCK_STATUS, which asks one window per request).
   */
  public List<Range> changedRanges(String from, String to, long offset, long length) throws IOException {
    return changedRanges(SnapshotRef.ofName(from), SnapshotRef.nameOrNull(to), offset, length);
  }

  /** {@link #changedRanges(String, String, long, long)} by reference ({@code to} null: the origin). */
  public List<Range> changedRanges(SnapshotRef from, SnapshotRef to, long offset, long length) throws IOException {
    geometry.checkRange(offset, length);
    locks.hold.readLock().lock();
    try {
      locks.ensureOpen();
      writeBehind.drain(); // held blocks are changed but not yet in the tables
      Snapshot a = chain.require(from);
      Snapshot b = to == null ? null : chain.require(to);
      return chain.changedRanges(a, b, offset, length);
    } finally {
      locks.hold.readLock().unlock();
    }
  }

  /**
   * The allocation of [offset, offset+length) of the origin ({@code snapshot} null) or of a
   * snapshot, as sorted, adjacent extents. Holes of a sparse origin file are found with
   * SEEK_DATA/SEEK_HOLE; a snapshot's preserved blocks are data. Reads no data.
   */
  public List<Extent> allocation(String snapshot, long offset, long length) throws IOException {
    return allocationOf(SnapshotRef.nameOrNull(snapshot), offset, length);
  }

  /**
   * {@link #allocation(String, long, long)} by reference ({@code snapshot} null: the origin).
   * Named apart so that {@code allocation(null, ...)} stays unambiguous.
   */
  public List<Extent> allocationOf(SnapshotRef snapshot, long offset, long length) throws IOException {
    geometry.checkRange(offset, length);
    locks.hold.readLock().lock();
    try {
      locks.ensureOpen();
      writeBehind.drain();
      return chain.allocation(snapshot == null ? null : chain.require(snapshot), offset, length);
    } finally {
      locks.hold.readLock().unlock();
    }
  }

  /** What {@link #revert} to {@code name} would do, without doing it. */
  public RevertPlan planRevert(String name) throws IOException {
    return reverter.plan(SnapshotRef.ofName(name));
  }

  /** What {@link #revert(SnapshotRef, Progress)} would do, without doing it. */
  public RevertPlan planRevert(SnapshotRef ref) throws IOException {
    return reverter.plan(ref);
  }

  /**
   * Rolls the origin back to snapshot {@code name}: deletes every newer snapshot (merging their
   * entries down, so the target then holds every block changed since it was taken) and copies
   * those blocks back. Crash-safe and restartable: the journal marks the start, and an open
   * finishes an interrupted revert. The target snapshot remains.
   */
  public void revert(String name, Progress progress) throws IOException {
    reverter.revert(SnapshotRef.ofName(name), progress);
  }

  /** {@link #revert(String, Progress)} by reference. */
  public void revert(SnapshotRef ref, Progress progress) throws IOException {
    reverter.revert(ref, progress);
  }

  /** What {@link #revert(SnapshotRef, boolean, Progress)} would do, without doing it. */
  public RevertPlan planRevert(SnapshotRef ref, boolean keepNewer) throws IOException {
    return reverter.plan(ref, keepNewer);
  }

  /**
   * Rolls the origin back to snapshot {@code ref}; with {@code keepNewer} false this is
   * {@link #revert(SnapshotRef, Progress)}. With {@code keepNewer} true no snapshot is deleted:
   * the target's contents are written into the origin as ordinary copy-on-write writes, so the
   * newest snapshot receives the contents the revert overwrites and every snapshot still reads
   * back what it held (take a snapshot just before, and reverting to it undoes this revert).
   * Only blocks whose contents differ are written. Refused, changing nothing, when the diff
   * area may lack room for those copies ({@link #planRevert(SnapshotRef, boolean)} tells how
   * much at most). Crash-safe and restartable: an open finishes an interrupted one.
   */
  public void revert(SnapshotRef ref, boolean keepNewer, Progress progress) throws IOException {
    reverter.revert(ref, keepNewer, progress);
  }

  // ---------------------------------------------------------------- parts, for SnapshotSet

  Locks locks() {
    return locks;
  }

  SnapshotChain chain() {
    return chain;
  }

  CowWriter writer() {
    return writer;
  }

  Journal journal() {
    return journal;
  }

  OriginWriteback writeback() {
    return writeback;
  }

  WriteBehind writeBehind() {
    return writeBehind;
  }

  static void checkName(String name) {
    if (!NAME.matcher(name).matches()) {
      throw new IllegalArgumentException("invalid snapshot name '" + name
          + "': use 1-128 letters, digits and . _ : + - (starting with a letter or digit)");
    }
  }
}
