package dev.shade.provider;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.shade.nativeio.AlreadyClosedException;
import dev.shade.nativeio.FileHandle;
import dev.shade.nativeio.MappedFile;
import dev.shade.nativeio.NoSpaceException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.CRC32C;
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
   * store, with dm-snapshot's classic N-copies-per-write cost removed:
   *
   * - The first write to a block after the newest snapshot was taken copies the block's old
   *   contents once, into the NEWEST snapshot's table only. Write cost is therefore one lookup
   *   and at most one copy whatever the number of snapshots.
   * - A read of snapshot S at block b walks S's table, then each newer snapshot's table, then
   *   the origin: if b was not written between S and S+1, S's content equals S+1's.
   * - Deleting S moves each of its entries to the next-older snapshot when that one lacks the
   *   block (the older one needs it, by the rule above) and frees the rest.
   * - Blocks that differ between snapshot A and B (or the origin) are exactly the keys of the
   *   tables of A..B-1: changed-block tracking costs no data reads.
   *
   * Crash safety (ordering of a first write): copy old block to a diff slot -> force that slot
   * range -> journal record (block, slot, CRC32C of the data) written and fdatasync'ed by a
   * group commit (Journal) -> only then the origin is written. Snapshot create/delete/revert
   * are journal records too, committed before they take effect in memory. The journal is
   * folded into a checkpoint on open, on close and when it grows large.
   *
   * I/O: reads go through shared memory mappings of the origin and the diff area (no system
   * call on a page-cache hit, one mapping per GiB chunk whatever the size); writes use pwrite,
   * because a store into a mapped page that writeback has cleaned takes a write fault, and
   * ext4's page_mkwrite made mapped stores of 1 MiB writes about 10x slower than pwrite here
   * (LMDB makes the same split by default). Both views share the page cache, so they agree.
   * pwrite also reports a full disk as ENOSPC, where a store into a mapped hole would be
   * SIGBUS.
   *
   * Locks: `hold` is read-held by every I/O and write-held by snapshot create/delete/revert
   * and close (flush-and-hold, bounded by a timeout for create). While snapshots exist, a
   * writer also write-locks the stripes of the blocks it touches, and a snapshot reader
   * read-locks the stripe of the block it resolves, so a reader never sees the origin between
   * a copy and the overwrite.
   */
  private static final Logger LOG = LoggerFactory.getLogger(Volume.class);

  static final String ORIGIN_FILE = "origin.img";
  static final String DIFF_FILE = "diff.area";
  static final String JOURNAL_FILE = "journal";
  static final String LOCK_FILE = "lock";
  private static final int STRIPES = 1024;
  /** Largest piece of one write handled under one set of locks. */
  private static final int MAX_PIECE = 8 << 20;
  /** The journal is folded into the checkpoint when it exceeds this. */
  private static final long FOLD_BYTES = 64L << 20;
  /** Zeros to compare old blocks with and to fill reads of zero entries; read-only. */
  private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(VolumeConfig.MAX_BLOCK_SIZE).asReadOnlyBuffer();
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}");
  /** First writes held in memory until their copies are durable, at most this many bytes (see WriteBehind). */
  static final long WRITE_BEHIND_BYTES = Long.getLong("shade.writeBehind.bytes", 64L << 20);
  /**
   * A copy the writer waits for is written directly (device speed, no writeback pass later).
   * A copy held behind is buffered when smaller than this: its writer returns after a memory
   * copy, and the committer writes back a whole batch of small copies with one sync; larger
   * ones are bandwidth, not latency, and go direct.
   */
  static final int DIRECT_COPY_MIN = 256 << 10;
  /** How long snapshot creation waits for in-flight I/O to drain before giving up. */
  static final long HOLD_TIMEOUT_MS = Long.getLong("shade.hold.timeout.ms", 5000);

  private final Path dir;
  private final VolumeMeta meta;
  private final VolumeConfig config;
  private final int blockSize;
  private final int blockShift;
  private final long size;
  /** Held (flock) for as long as this volume is open. */
  private final FileHandle lockFile;
  private final FileHandle originFile;
  private final MappedFile origin;
  private final Path originPath;
  /** Whether the origin is a regular file (trim punches holes) rather than a device. */
  private final boolean originIsFile;
  private final DiffArea diff;
  private final Path diffPath;
  private final Journal journal;
  private final WriteBehind writeBehind;
  /** Whether the diff area and the journal share a device: the journal's flush then covers direct copies. */
  private final boolean diffOnJournalDevice;
  private final ReentrantReadWriteLock hold = new ReentrantReadWriteLock(true);
  private final ReentrantReadWriteLock[] stripes = new ReentrantReadWriteLock[STRIPES];
  /**
   * (snapshot id, block) → diff location, for blocks a snapshot resolves to the diff area.
   * Such a resolution is stable until a delete or revert, which invalidate the cache; blocks
   * that resolve to the origin are not cached.
   */
  private final Cache<Long, Long> resolved = Caffeine.newBuilder().maximumSize(1 << 16).build();
  private final List<VolumeListener> listeners = new CopyOnWriteArrayList<>();
  /** Count of origin writes; a flush with nothing new skips the fdatasync. */
  private final AtomicLong writes = new AtomicLong();
  /** Value of {@link #writes} covered by the last completed flush. */
  private final AtomicLong flushedWrites = new AtomicLong();
  /** Per thread: a block for revert. */
  private final ThreadLocal<ByteBuffer> blockBuffers;
  /** Per thread: at least 1 MiB and one block, for copying runs of blocks. */
  private final ThreadLocal<ByteBuffer> copyBuffers;

  // changed only under hold's write lock
  /** The snapshots, oldest first; replaced, never mutated, so readers may iterate freely. */
  private volatile List<Snapshot> snapshots;
  /** Id of the next snapshot. */
  private long nextId;
  /** Generation of the checkpoint and journal. */
  private long generation;
  private volatile boolean closed;

  private Volume(Path dir, VolumeMeta meta, FileHandle lockFile, FileHandle originFile, MappedFile origin,
      Path originPath, boolean originIsFile, DiffArea diff, Path diffPath, FileHandle journalFile,
      Checkpoint.State state, Journal.Replay replay) throws IOException {
    this.dir = dir;
    this.meta = meta;
    this.config = meta.config();
    this.blockSize = config.blockSize();
    this.blockShift = Integer.numberOfTrailingZeros(blockSize);
    this.size = config.size();
    this.lockFile = lockFile;
    this.originFile = originFile;
    this.origin = origin;
    this.originPath = originPath;
    this.originIsFile = originIsFile;
    this.diff = diff;
    this.diffPath = diffPath;
    for (int i = 0; i < STRIPES; i++) {
      stripes[i] = new ReentrantReadWriteLock();
    }
    this.writeBehind = new WriteBehind(String.valueOf(dir.getFileName()), blockSize, WRITE_BEHIND_BYTES, this::commitHeld);
    int bs = blockSize;
    this.blockBuffers = ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(bs));
    this.copyBuffers = ThreadLocal.withInitial(() -> DiffArea.alignedBuffer(Math.max(bs, 1 << 20)));
    this.generation = state.generation();
    this.nextId = state.nextId();
    this.snapshots = List.copyOf(state.snapshots());
    if (!lastFrameCopiesIntact(replay, diff)) {
      LOG.warn("{}: the last journal frame names copies that did not reach the disk before the process stopped; dropping it (nobody was told it had succeeded)", dir);
      replay = replay.withoutLastFrame();
      Journal.truncate(journalFile, replay.end());
    }
    long revertPending = state.revertPending();
    for (JournalRecord r : replay.records()) {
      revertPending = replayRecord(r, revertPending, journalFile.path());
    }
    for (Snapshot s : snapshots) {
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
    boolean oneDevice = sameDevice(diffPath, journalFile.path());
    this.diffOnJournalDevice = oneDevice;
    this.journal = new Journal(journalFile, generation, replay.stale() ? 0 : replay.end(),
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
    if (replay.stale()) {
      journal.reset(generation);
    }
    if (revertPending >= 0) {
      Snapshot target = byId(revertPending);
      LOG.warn("{}: finishing the revert to snapshot {} that was interrupted", dir, target.name);
      finishRevert(target, Progress.NONE);
    }
    if (!replay.records().isEmpty()) {
      fold();
    }
  }

  /** Whether both files live on one block device (so one cache flush covers both). */
  private static boolean sameDevice(Path a, Path b) {
    try {
      return Files.getAttribute(a, "unix:dev").equals(Files.getAttribute(b, "unix:dev"));
    } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
      return false;
    }
  }

  /** Whether every copy named by the journal's last frame has the CRC32C its record says. */
  private boolean lastFrameCopiesIntact(Journal.Replay replay, DiffArea diff) throws IOException {
    List<JournalRecord> records = replay.records();
    ByteBuffer buf = ByteBuffer.allocateDirect(blockSize);
    CRC32C crc = new CRC32C();
    for (int i = replay.lastFrameRecord(); i < records.size(); i++) {
      if (records.get(i) instanceof JournalRecord.Cow c) {
        if (c.slot() < Snapshot.ZERO_SLOT || c.slot() >= diff.capacity() || c.block() < 0 || c.block() << blockShift >= size) {
          throw new VolumeException("journal is damaged: a record names block " + c.block() + " in slot " + c.slot()
              + ", outside the volume or the diff area: " + dir.resolve(JOURNAL_FILE));
        }
        if (c.slot() == Snapshot.ZERO_SLOT) {
          continue; // nothing was copied
        }
        buf.clear().limit(blockLength(c.block()));
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

  /** Folds the journal into the checkpoint, flushes and releases everything. Idempotent. */
  @Override
  public void close() throws IOException {
    hold.writeLock().lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      try {
        writeBehind.close();
        originFile.fdatasync();
        if (journal.size() > 0) {
          fold();
        }
      } finally {
        closeAll(origin, originFile, diff, journal, lockFile);
      }
    } finally {
      hold.writeLock().unlock();
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
    return size;
  }

  public int blockSize() {
    return blockSize;
  }

  /** Bytes of the diff area in use by snapshots now. */
  public long diffUsedBytes() {
    return diff.usedBytes();
  }

  /** Bytes of journal not yet folded into the checkpoint. */
  public long journalBytes() {
    return journal.size();
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
    checkRange(offset, dst.remaining());
    hold.readLock().lock();
    try {
      ensureOpen();
      if (writeBehind.isEmpty()) {
        origin.read(offset, dst);
      } else {
        readHeld(offset, dst);
      }
    } finally {
      hold.readLock().unlock();
    }
  }

  /** Reads held blocks from memory, the others from the origin. */
  private void readHeld(long offset, ByteBuffer dst) throws IOException {
    readByBlock(offset, dst, (b, within, at, piece) -> {
      WriteBehind.Entry e = writeBehind.get(b);
      if (e != null) {
        piece.put(0, e.data, within, piece.remaining());
      } else {
        origin.read(at, piece);
      }
    });
  }

  @FunctionalInterface
  private interface BlockRead {
    /** Fills {@code piece} with the bytes at {@code at}, which lie {@code within} bytes into block {@code b}. */
    void read(long b, int within, long at, ByteBuffer piece) throws IOException;
  }

  /**
   * Reads [offset, offset + dst.remaining()) block by block, each piece under its block's
   * stripe read lock, so a reader never sees a block between a copy and the overwrite (or a
   * held block half applied).
   */
  private void readByBlock(long offset, ByteBuffer dst, BlockRead read) throws IOException {
    while (dst.hasRemaining()) {
      long b = offset >>> blockShift;
      int within = (int) (offset & (blockSize - 1));
      int n = Math.min(dst.remaining(), blockLength(b) - within);
      ReentrantReadWriteLock stripe = stripe(b);
      stripe.readLock().lock();
      try {
        read.read(b, within, offset, dst.slice(dst.position(), n));
      } finally {
        stripe.readLock().unlock();
      }
      dst.position(dst.position() + n);
      offset += n;
    }
  }

  private ReentrantReadWriteLock stripe(long block) {
    return stripes[(int) (block & (STRIPES - 1))];
  }

  /**
   * Whether reading [offset, offset+length) of the origin would be served from memory. A hint
   * for servers deciding where to run a read; it can be stale by the time the read happens.
   */
  public boolean isCached(long offset, int length) {
    return !closed && origin.isResident(offset, length);
  }

  /**
   * A read-only view straight onto the origin's page cache for [offset, offset+length), or
   * null when that is not to be had cheaply (not all resident, writes held behind, crossing a
   * mapping chunk). For servers that send cached data without copying it first. The view is
   * valid until the volume is closed, and it is the live origin: a write that lands before the
   * view is read shows through, as for any read concurrent with a write.
   */
  public ByteBuffer residentView(long offset, int length) {
    if (closed || length <= 0 || offset < 0 || offset > size - length || !writeBehind.isEmpty()
        || !origin.isResident(offset, length)) {
      return null;
    }
    return origin.view(offset, length);
  }

  /**
   * Whether a write to the range would first have to preserve old contents (a copy, and for
   * large ones a journal sync) or lands on a block held behind. A hint, read without locks, for
   * servers deciding where to run a write; the write itself decides again under its locks.
   */
  public boolean needsCopy(long offset, long length) {
    List<Snapshot> snaps = snapshots;
    if (snaps.isEmpty() || length <= 0) {
      return false;
    }
    Snapshot newest = snaps.get(snaps.size() - 1);
    for (long b = offset >>> blockShift; b <= (offset + length - 1) >>> blockShift; b++) {
      if (!newest.contains(b)) {
        return true;
      }
    }
    return false;
  }

  @Override
  public void write(long offset, ByteBuffer src) throws IOException {
    long length = src.remaining();
    checkRange(offset, length);
    while (src.hasRemaining()) {
      int n = pieceLength(offset, src.remaining());
      ByteBuffer piece = src.slice(src.position(), n);
      long at = offset;
      change(offset, n, () -> writeOrigin(at, piece), piece);
      src.position(src.position() + n);
      offset += n;
    }
  }

  /**
   * Origin writes are issued in aligned pieces of at most this many bytes. The page cache sizes
   * the folios a write creates by the write's length (ext4 with large folios, Linux 6.x), and a
   * later small write into a large folio costs much more. Measured here with fio over NBD, 4 KiB
   * random writes on an origin filled with 1 MiB writes: 32k IOPS written whole, 50-54k in
   * 256 KiB pieces, 64-72k in 64 KiB pieces (80-108k with the cache dropped). 1 MiB rewrites
   * kept 0.93-0.95 of a raw file's speed in 256 KiB pieces, 0.87 in 64 KiB pieces.
   */
  static final int ORIGIN_PIECE = 256 << 10;

  /** Writes {@code src} to the origin at {@code at} in {@link #ORIGIN_PIECE}s, leaving {@code src} untouched. */
  private void writeOrigin(long at, ByteBuffer src) throws IOException {
    int len = src.remaining();
    for (int done = 0; done < len; ) {
      int n = (int) Math.min(len - done, ORIGIN_PIECE - ((at + done) & (ORIGIN_PIECE - 1)));
      originFile.writeFully(at + done, src.slice(src.position() + done, n));
      done += n;
    }
  }

  @Override
  public void writeZeroes(long offset, long length) throws IOException {
    inPieces(offset, length, originFile::writeZeros);
  }

  @Override
  public void trim(long offset, long length) throws IOException {
    inPieces(offset, length, this::discard);
  }

  @FunctionalInterface
  private interface RangeChange {
    void apply(long offset, long length) throws IOException;
  }

  /** Applies {@code action} to the range piece by piece, each through the copy-on-write path. */
  private void inPieces(long offset, long length, RangeChange action) throws IOException {
    checkRange(offset, length);
    while (length > 0) {
      int n = pieceLength(offset, length);
      long at = offset;
      change(offset, n, () -> action.apply(at, n), null);
      offset += n;
      length -= n;
    }
  }

  /** Zeroes the partial blocks at the edges; deallocates (or zeroes, on a device) whole ones. */
  private void discard(long offset, long length) throws IOException {
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
    while (true) {
      int shortBy;
      boolean diskFull = false;
      hold.readLock().lock();
      try {
        ensureOpen();
        List<Snapshot> snaps = snapshots;
        if (snaps.isEmpty()) {
          change.apply();
          writes.incrementAndGet();
          return;
        }
        Snapshot newest = snaps.get(snaps.size() - 1);
        int[] locked = lockStripes(first, last);
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
                  copyOld(newest, need, n, slots, crcs, direct, null);
                  commitCopies(newest, need, n, slots, crcs, direct);
                }
                change.apply();
                writes.incrementAndGet();
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
          unlockStripes(locked);
        }
      } finally {
        hold.readLock().unlock();
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
      if (!copyOld(newest, need, n, slots, crcs, direct, olds)) {
        commitCopies(newest, need, n, slots, crcs, direct);
        settleHeld(offset >>> blockShift, (offset + data.remaining() - 1) >>> blockShift);
        change.apply();
        writes.incrementAndGet();
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
        writes.incrementAndGet();
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
  private void commitHeld(List<WriteBehind.Entry> batch, long upToSeq) throws IOException {
    journal.sync(upToSeq); // every copy of the batch and its record are durable: the origin may change
    for (WriteBehind.Entry e : batch) {
      ReentrantReadWriteLock stripe = stripe(e.block);
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
    e.snap.put(e.block, Snapshot.pack(e.slot, e.crc));
    if (e.hi > e.lo) {
      originFile.writeFully((e.block << blockShift) + e.lo, e.data.slice(e.lo, e.hi - e.lo));
      writes.incrementAndGet();
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
  private boolean copyOld(Snapshot snap, long[] blocks, int n, int[] slots, int[] crcs, boolean[] direct, ByteBuffer[] olds)
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
          ByteBuffer old = src.slice((k - i) << blockShift, blockLength(blocks[k]));
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
    return journal.append(rec, at, at + blockLength(block));
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
    hold.writeLock().lock();
    try {
      ensureOpen();
      writeBehind.drain(); // held blocks belong to the newest snapshot, which may go
      if (diskFull && !snapshots.isEmpty()) {
        deleteOldestForSpace("the filesystem holding the diff area " + diffPath + " is full", slots);
      }
      while (!snapshots.isEmpty() && !diff.fits(slots)) {
        deleteOldestForSpace("the diff area is full (" + diff.usedBytes() + " of " + config.diffMax() + " bytes in use)", slots);
      }
    } finally {
      hold.writeLock().unlock();
    }
  }

  private void deleteOldestForSpace(String why, int slots) throws IOException {
    Snapshot oldest = snapshots.get(0);
    SnapshotInfo info = info(oldest);
    LOG.warn("{}: {}, {} more bytes needed: deleting the oldest snapshot '{}' so that writes can continue",
        name(), why, (long) slots * blockSize, oldest.name);
    deleteLocked(oldest);
    for (VolumeListener l : listeners) {
      l.snapshotDeletedForSpace(info, config.diffMax());
    }
  }

  /**
   * Makes every origin write that returned before this call durable. The origin's dirty pages
   * are in the page cache (shared mapping), so one fdatasync writes exactly those, however
   * large the volume; msync of a whole 64 GiB mapping would walk every page table entry.
   */
  @Override
  public void flush() throws IOException {
    hold.readLock().lock();
    try {
      ensureOpen();
      flushOrigin();
    } finally {
      hold.readLock().unlock();
    }
  }

  private void flushOrigin() throws IOException {
    writeBehind.drain();
    long upTo = writes.get();
    if (flushedWrites.get() >= upTo) {
      return;
    }
    originFile.fdatasync();
    flushedWrites.accumulateAndGet(upTo, Math::max);
  }

  // ---------------------------------------------------------------- snapshots

  /** Takes a snapshot now; {@code name} null gives {@code s<id>}. Returns once durable. */
  public SnapshotInfo createSnapshot(String name) throws IOException {
    return createSnapshotSet(List.of(this), name).get(0);
  }

  /**
   * Takes one snapshot on each volume at the same instant: all writes to all of them are held
   * while the snapshots are committed. The members share a set id and a name ({@code s<id>}
   * with one id for all when {@code name} is null).
   */
  public static List<SnapshotInfo> createSnapshotSet(List<Volume> volumes, String name) throws IOException {
    if (volumes.isEmpty()) {
      throw new IllegalArgumentException("a snapshot set needs at least one volume");
    }
    if (name != null) {
      checkName(name);
    }
    List<Volume> ordered = new ArrayList<>(volumes);
    ordered.sort(Comparator.comparing(v -> v.dir.toAbsolutePath().normalize().toString()));
    for (int i = 1; i < ordered.size(); i++) {
      if (ordered.get(i).dir.toAbsolutePath().normalize().equals(ordered.get(i - 1).dir.toAbsolutePath().normalize())) {
        throw new IllegalArgumentException("volume named twice in one snapshot set: " + ordered.get(i).dir);
      }
    }
    for (Volume v : ordered) {
      v.flush(); // flush ahead of the hold, so the hold only waits for what is written meanwhile
    }
    List<Volume> held = new ArrayList<>();
    try {
      for (Volume v : ordered) {
        boolean got;
        try {
          got = v.hold.writeLock().tryLock(HOLD_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new VolumeException("interrupted while holding writes on " + v.dir);
        }
        if (!got) {
          throw new VolumeException("could not hold the I/O of " + v.dir + " within " + HOLD_TIMEOUT_MS + " ms; no snapshot was taken");
        }
        held.add(v);
        v.ensureOpen();
      }
      long id = 0;
      for (Volume v : ordered) {
        id = Math.max(id, v.nextId);
      }
      String snapName = name != null ? name : "s" + id;
      for (Volume v : ordered) {
        if (v.find(snapName) != null) {
          throw new VolumeException("volume " + v.name() + " already has a snapshot named '" + snapName + "'");
        }
      }
      String setId = ordered.size() > 1 ? UUID.randomUUID().toString() : null;
      long now = System.currentTimeMillis();
      for (Volume v : ordered) {
        v.flushOrigin(); // what was written since the early flush
      }
      List<Volume> done = new ArrayList<>();
      try {
        for (Volume v : ordered) {
          JournalRecord.Create rec = new JournalRecord.Create(id, now, snapName, setId);
          v.journal.commit(rec);
          v.applyCreate(rec);
          done.add(v);
        }
      } catch (IOException | RuntimeException e) {
        for (Volume v : done) {
          try {
            v.deleteLocked(v.byId(id));
          } catch (IOException | RuntimeException suppressed) {
            e.addSuppressed(suppressed);
          }
        }
        throw e;
      }
      List<SnapshotInfo> out = new ArrayList<>();
      for (Volume v : volumes) {
        out.add(v.info(v.byId(id)));
      }
      return out;
    } finally {
      for (Volume v : held) {
        try {
          v.maybeFold();
        } catch (IOException e) {
          LOG.warn("{}: could not fold the journal into the checkpoint: {}", v.dir, e.getMessage());
        } finally {
          v.hold.writeLock().unlock();
        }
      }
    }
  }

  /** The snapshots, oldest first. */
  public List<SnapshotInfo> snapshots() {
    ensureOpen();
    List<SnapshotInfo> out = new ArrayList<>();
    for (Snapshot s : snapshots) {
      out.add(info(s));
    }
    return out;
  }

  public SnapshotInfo snapshot(String name) throws SnapshotNotFoundException {
    ensureOpen();
    return info(require(name));
  }

  public void deleteSnapshot(String name) throws IOException {
    hold.writeLock().lock();
    try {
      ensureOpen();
      writeBehind.drain();
      deleteLocked(require(name));
      maybeFold();
    } finally {
      hold.writeLock().unlock();
    }
  }

  /** Commits the delete, then merges and frees. Caller holds the exclusive hold. */
  private void deleteLocked(Snapshot s) throws IOException {
    journal.commit(new JournalRecord.Delete(s.id));
    int[] freed = applyDelete(s);
    for (int slot : freed) {
      diff.free(slot); // safe to reuse: the delete that freed it is durable
    }
    if (snapshots.isEmpty()) {
      diff.releaseAllIfEmpty();
    }
  }

  /** A read-only view of the snapshot; valid until the snapshot is deleted or the volume closed. */
  public BlockSource openSnapshot(String name) throws IOException {
    ensureOpen();
    return new SnapshotView(require(name));
  }

  /**
   * The ranges that may differ between snapshot {@code from} and snapshot {@code to} (or the
   * current origin when {@code to} is null), in block units, merged and sorted. Reads no data.
   */
  public List<Range> changedRanges(String from, String to) throws IOException {
    hold.readLock().lock();
    try {
      ensureOpen();
      writeBehind.drain(); // held blocks are changed but not yet in the tables
      Snapshot a = require(from);
      Snapshot b = to == null ? null : require(to);
      if (b != null && b.id < a.id) {
        Snapshot t = a;
        a = b;
        b = t;
      }
      BlockTable union = new BlockTable();
      for (Snapshot s : snapshots) {
        if (s.id >= a.id && (b == null || s.id < b.id)) {
          s.forEach((block, packed) -> union.put(block, 0));
        }
      }
      return toRanges(union.sortedBlocks());
    } finally {
      hold.readLock().unlock();
    }
  }

  private List<Range> toRanges(long[] blocks) {
    List<Range> out = new ArrayList<>();
    int i = 0;
    while (i < blocks.length) {
      int j = i;
      while (j + 1 < blocks.length && blocks[j + 1] == blocks[j] + 1) {
        j++;
      }
      long start = blocks[i] << blockShift;
      long end = Math.min(size, (blocks[j] + 1) << blockShift);
      out.add(new Range(start, end - start));
      i = j + 1;
    }
    return out;
  }

  /**
   * The allocation of [offset, offset+length) of the origin ({@code snapshot} null) or of a
   * snapshot, as sorted, adjacent extents. Holes of a sparse origin file are found with
   * SEEK_DATA/SEEK_HOLE; a snapshot's preserved blocks are data. Reads no data.
   */
  public List<Extent> allocation(String snapshot, long offset, long length) throws IOException {
    checkRange(offset, length);
    hold.readLock().lock();
    try {
      ensureOpen();
      writeBehind.drain();
      List<Extent> out = new ArrayList<>();
      if (snapshot == null) {
        originAllocation(offset, offset + length, out);
        return out;
      }
      Snapshot snap = require(snapshot);
      List<Snapshot> snaps = snapshots;
      int from = snaps.indexOf(snap);
      long end = offset + length;
      long pos = offset;
      while (pos < end) {
        long b = pos >>> blockShift;
        int state = preservedState(snaps, from, b);
        long runEnd = Math.min(end, (b + 1) << blockShift);
        while (runEnd < end && preservedState(snaps, from, runEnd >>> blockShift) == state) {
          runEnd = Math.min(end, ((runEnd >>> blockShift) + 1) << blockShift);
        }
        if (state == 0) {
          originAllocation(pos, runEnd, out);
        } else {
          add(out, pos, runEnd - pos, state == 2);
        }
        pos = runEnd;
      }
      return out;
    } finally {
      hold.readLock().unlock();
    }
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
  private static long resolveIn(List<Snapshot> snaps, int from, long block) {
    for (int i = from; i < snaps.size(); i++) {
      long packed = snaps.get(i).get(block);
      if (packed != -1) {
        return packed;
      }
    }
    return -1;
  }

  /** What {@link #revert} to {@code name} would do, without doing it. */
  public RevertPlan planRevert(String name) throws IOException {
    hold.readLock().lock();
    try {
      ensureOpen();
      writeBehind.drain(); // held blocks count among the bytes a revert copies back
      Snapshot target = require(name);
      List<SnapshotInfo> deleted = new ArrayList<>();
      for (Snapshot s : snapshots) {
        if (s.id > target.id) {
          deleted.add(info(s));
        }
      }
      long bytes = 0;
      for (Range r : changedRanges(name, null)) {
        bytes += r.length();
      }
      return new RevertPlan(info(target), deleted, bytes);
    } finally {
      hold.readLock().unlock();
    }
  }

  /**
   * Rolls the origin back to snapshot {@code name}: deletes every newer snapshot (merging their
   * entries down, so the target then holds every block changed since it was taken) and copies
   * those blocks back. Crash-safe and restartable: the journal marks the start, and an open
   * finishes an interrupted revert. The target snapshot remains.
   */
  public void revert(String name, Progress progress) throws IOException {
    hold.writeLock().lock();
    try {
      ensureOpen();
      Snapshot target = require(name);
      writeBehind.drain();
      journal.commit(new JournalRecord.RevertBegin(target.id));
      List<Snapshot> newer = new ArrayList<>();
      for (Snapshot s : snapshots) {
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
        for (int slot : applyDelete(s)) {
          diff.free(slot);
        }
      }
      finishRevert(target, progress);
      maybeFold();
    } finally {
      hold.writeLock().unlock();
    }
  }

  /** Copies the target's preserved blocks back to the origin; idempotent. */
  private void finishRevert(Snapshot target, Progress progress) throws IOException {
    long[] blocks = target.sortedBlocks();
    long total = (long) blocks.length * blockSize;
    ByteBuffer buf = blockBuffers.get();
    CRC32C crc = new CRC32C();
    long done = 0;
    for (long b : blocks) {
      long packed = target.get(b);
      int len = blockLength(b);
      if (Snapshot.isZero(packed)) {
        discard(b << blockShift, len);
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
      originFile.writeFully(b << blockShift, buf);
      done += blockSize;
      progress.update(Math.min(done, total), total);
    }
    originFile.fdatasync();
    writes.incrementAndGet();
    journal.commit(new JournalRecord.RevertEnd(target.id));
    int[] freed = applyRevertEnd(target);
    for (int slot : freed) {
      diff.free(slot);
    }
    if (diff.usedSlots() == 0) {
      diff.releaseAllIfEmpty();
    }
    progress.update(total, total);
  }

  // ---------------------------------------------------------------- state transitions

  /** Applies one journal record during open; returns the pending revert id (or -1). */
  private long replayRecord(JournalRecord r, long revertPending, Path journalPath) throws VolumeException {
    if (r instanceof JournalRecord.Create c) {
      applyCreate(c);
    } else if (r instanceof JournalRecord.Delete d) {
      applyDelete(byIdOrDamage(d.id(), journalPath));
    } else if (r instanceof JournalRecord.Cow c) {
      Snapshot s = byIdOrDamage(c.snapId(), journalPath);
      s.put(c.block(), Snapshot.pack(c.slot(), c.crc()));
    } else if (r instanceof JournalRecord.RevertBegin rb) {
      byIdOrDamage(rb.id(), journalPath);
      return rb.id();
    } else if (r instanceof JournalRecord.RevertEnd re) {
      applyRevertEnd(byIdOrDamage(re.id(), journalPath));
      return -1;
    }
    return revertPending;
  }

  private void applyCreate(JournalRecord.Create c) {
    List<Snapshot> next = new ArrayList<>(snapshots);
    next.add(new Snapshot(c.id(), c.name(), c.createdMillis(), c.setId(), new BlockTable()));
    snapshots = List.copyOf(next);
    nextId = Math.max(nextId, c.id() + 1);
  }

  /** Removes {@code s}, moving its entries to the next-older snapshot; returns freed slots. */
  private int[] applyDelete(Snapshot s) {
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
  private int[] applyRevertEnd(Snapshot target) {
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

  private void maybeFold() throws IOException {
    if (journal.size() > FOLD_BYTES) {
      fold();
    }
  }

  /** Writes the full state as checkpoint generation+1, then empties the journal. */
  private void fold() throws IOException {
    writeBehind.drain(); // a held block's record must not be dropped with the journal
    long next = generation + 1;
    Checkpoint.write(dir, new Checkpoint.State(next, nextId, -1, snapshots));
    journal.reset(next);
    generation = next;
  }

  // ---------------------------------------------------------------- lookups

  /** What is known of {@code s}, counting its blocks held behind (see WriteBehind). */
  private SnapshotInfo info(Snapshot s) {
    SnapshotInfo i;
    int held;
    synchronized (s) { // no block is published between the two counts
      i = s.info(blockSize);
      held = writeBehind.slotsHeldFor(s);
    }
    return held == 0 ? i : new SnapshotInfo(i.id(), i.name(), i.created(), i.diffBytes() + (long) held * blockSize, i.setId());
  }

  private Snapshot find(String name) {
    for (Snapshot s : snapshots) {
      if (s.name.equals(name)) {
        return s;
      }
    }
    return null;
  }

  private Snapshot require(String name) throws SnapshotNotFoundException {
    Snapshot s = find(name);
    if (s == null) {
      throw new SnapshotNotFoundException(name(), name);
    }
    return s;
  }

  private Snapshot byId(long id) {
    for (Snapshot s : snapshots) {
      if (s.id == id) {
        return s;
      }
    }
    throw new IllegalStateException("no snapshot with id " + id + " on " + dir);
  }

  private Snapshot byIdOrDamage(long id, Path journalPath) throws VolumeException {
    for (Snapshot s : snapshots) {
      if (s.id == id) {
        return s;
      }
    }
    throw new VolumeException("journal is damaged: it refers to snapshot id " + id + ", which does not exist: " + journalPath);
  }

  static void checkName(String name) {
    if (!NAME.matcher(name).matches()) {
      throw new IllegalArgumentException("invalid snapshot name '" + name
          + "': use 1-128 letters, digits and . _ : + - (starting with a letter or digit)");
    }
  }

  private int blockLength(long block) {
    return (int) Math.min(blockSize, size - (block << blockShift));
  }

  private void checkRange(long offset, long length) {
    if (offset < 0 || length < 0 || offset > size - length) {
      throw new IllegalArgumentException("range out of bounds (offset=" + offset + " length=" + length
          + " size=" + size + "): " + this);
    }
  }

  private void ensureOpen() {
    if (closed) {
      throw new AlreadyClosedException("volume is closed: " + this);
    }
  }

  private int[] lockStripes(long first, long last) {
    int[] idx;
    if (last - first + 1 >= STRIPES) {
      idx = new int[STRIPES];
      for (int i = 0; i < STRIPES; i++) {
        idx[i] = i;
      }
    } else {
      idx = new int[(int) (last - first + 1)];
      for (int i = 0; i < idx.length; i++) {
        idx[i] = (int) ((first + i) & (STRIPES - 1));
      }
      Arrays.sort(idx); // one global order: no deadlock between writers
    }
    for (int i : idx) {
      stripes[i].writeLock().lock();
    }
    return idx;
  }

  private void unlockStripes(int[] idx) {
    for (int i = idx.length - 1; i >= 0; i--) {
      stripes[idx[i]].writeLock().unlock();
    }
  }

  /** Read-only view of one snapshot: each block from the first table that holds it, else the origin. */
  private final class SnapshotView implements BlockSource {
    private final Snapshot snap;

    SnapshotView(Snapshot snap) {
      this.snap = snap;
    }

    @Override
    public long size() {
      return size;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
      checkRange(offset, dst.remaining());
      hold.readLock().lock();
      try {
        ensureOpen();
        List<Snapshot> snaps = snapshots; // stable while the hold is read-held
        int from = snaps.indexOf(snap);
        if (from < 0) {
          throw new SnapshotNotFoundException(name(), snap.name);
        }
        readByBlock(offset, dst, (b, within, at, piece) -> {
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
        hold.readLock().unlock();
      }
    }

    private long resolve(List<Snapshot> snaps, int from, long block) {
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

    @Override
    public void close() {
      // nothing held: the volume owns every resource
    }

    @Override
    public String toString() {
      return "snapshot " + snap.name + " of " + Volume.this;
    }
  }
}
