package dev.shade.offhost.tape;

import dev.shade.nativeio.AtomicFile;
import dev.shade.nativeio.FileHandle;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A virtual cartridge: one file holding a sequence of records and filemarks, crash-safe.
 *
 * <p>Not thread-safe: owned by one library, used by one thread at a time.
 */
final class CartridgeFile implements Closeable {
  /*
   * Format (all integers big-endian):
   *
   *   header, 64 bytes:
   *     0  magic "SHADETAP"
   *     8  u32 format version (1)
   *    12  u32 header size (64)
   *    16  u64 capacity: bytes of records the cartridge holds
   *    24  u64 early-warning zone: bytes before the capacity where the early warning starts
   *    32  u64 created, milliseconds since the epoch
   *    40  20 bytes zero
   *    60  u32 CRC-32C of bytes 0..59
   *   frames, one after the other from offset 64:
   *     0  u8 type: 'R' record, 'F' filemark
   *     1  3 bytes zero
   *     4  u32 payload length (0 for a filemark)
   *     8  u32 CRC-32C of the payload (0 for a filemark)
   *    12  u32 CRC-32C of bytes 0..11 of this frame header
   *    16  payload
   *
   * The end of the file is the end of data. Frames are only ever appended (writing in the middle
   * of the tape first truncates the file there, as a real tape makes everything after a write
   * unreadable), so after a crash only the last frame can be incomplete. Opening scans the frame
   * headers (the index of frames is rebuilt from them, never stored), checks every header CRC
   * and the last frame's payload CRC, and cuts the file after the last good frame: a torn tail
   * (a record whose write the crash interrupted) disappears, and every record written before it
   * reads back. Reads check each record's CRC and report a mismatch as a medium error.
   *
   * Records are written with one pwrite each into the page cache; a filemark (and sync, close)
   * makes everything before it durable with fdatasync, as a filemark is the synchronization
   * point of a real drive. So a killed process loses nothing that was written; a power cut may
   * lose the records after the last filemark, never the ones before it.
   *
   * The frame index of a closed cartridge is kept beside it, in CARTRIDGE.index, so that the next
   * open need not read every frame header (5,000 of them for 1.3 GB of 256 KiB records), with the
   * notes the library keeps on its tape files (what each closed tape file holds). It is a cache:
   * written whole (AtomicFile) by close, after the frames it covers are durable, and trusted at
   * open only when its CRC holds, it names this cartridge (creation time and capacity) and the
   * frame it ends with is still the cartridge's frame at that offset; the frames after it are
   * scanned as without it. A cut of the tape below its end deletes it first, so an index never
   * covers frames that were cut and written again. Any doubt means a full scan, as before.
   *
   *   index, all integers big-endian:
   *     0  magic "SHADEIDX"
   *     8  u32 version (1)
   *    12  u64 the cartridge's creation time, u64 its capacity
   *    28  u32 frames N, u64 end offset E (where the frame after the last indexed one starts)
   *    40  16 bytes: the header of frame N-1 as on the cartridge (zeros when N is 0)
   *    56  N x i32 payload length (-1 for a filemark)
   *        u32 notes M, M x (u32 frame, u16 length, UTF-8 text)
   *        u32 CRC-32C of everything before it
   */

  private static final Logger LOG = LoggerFactory.getLogger(CartridgeFile.class);

  static final byte[] MAGIC = "SHADETAP".getBytes(StandardCharsets.US_ASCII);
  static final int VERSION = 1;
  static final int HEADER_SIZE = 64;
  static final int FRAME_HEADER = 16;
  static final byte RECORD = 'R';
  static final byte FILEMARK = 'F';

  /** The cartridge file, for messages. */
  private final Path path;
  /** The open file. */
  private final FileHandle file;
  /** Bytes of records the cartridge holds. */
  private final long capacity;
  /** Size of the early-warning zone before the capacity. */
  private final long earlyWarningZone;
  /** When the cartridge was made. */
  private final Instant created;

  /** Number of frames. */
  private int frames;
  /** File offset of each frame; entry {@code frames} is the end of data. */
  private long[] offsets = new long[64];
  /** Payload length of each frame, -1 for a filemark. */
  private int[] lengths = new int[64];
  /** Record bytes before each frame; entry {@code frames} is the total. */
  private long[] bytesBefore = new long[64];
  /** Frames appended or cut so far: a change of the index shows as a new count. */
  private long changes;
  /** Whether writes since the last fdatasync are not yet durable. */
  private boolean dirty;
  /**
   * A frame (header and payload) on its way to or from the file, reused and grown as records
   * need: direct, so the file's pread and pwrite use it without a copy into native memory and
   * CRC-32C reads it in place (a new heap buffer per 256 KiB record cost an allocation and two
   * copies each; docs/performance.md, "Off-host backup").
   */
  private ByteBuffer frameBuffer = ByteBuffer.allocateDirect(FRAME_HEADER + 256 * 1024);
  /** File offset from which appended frames have not had their writeback started. */
  private long unstarted = -1;
  /** Where the frame index is kept between opens. */
  private final Path indexPath;
  /** {@link #changes} when the index on disk was read or written; -1: it does not match this index. */
  private long indexedChanges = -1;
  /** Frames the index on disk covers (0 when there is none). */
  private int indexedFrames;
  /** The library's notes on tape files, by the frame the file starts at; kept in the index. */
  private final TreeMap<Integer, String> notes = new TreeMap<>();
  /** Test hook: frame headers the last open read from the cartridge (the index spares the others). */
  int headersScanned;

  /** Index version written. */
  static final int INDEX_VERSION = 1;
  static final byte[] INDEX_MAGIC = "SHADEIDX".getBytes(StandardCharsets.US_ASCII);

  /**
   * Appended bytes after which their writeback is started (sync_file_range WRITE), so the
   * filemark's fdatasync finds little left to write: the disk writes while the archive is still
   * being made, instead of all of it at its end.
   */
  static final long WRITEBACK_BYTES = 8L << 20;

  private CartridgeFile(Path path, FileHandle file, long capacity, long earlyWarningZone, Instant created) {
    this.path = path;
    this.file = file;
    this.capacity = capacity;
    this.earlyWarningZone = earlyWarningZone;
    this.created = created;
    this.indexPath = indexPath(path);
    offsets[0] = HEADER_SIZE;
  }

  /** Where the index of the cartridge at {@code path} is kept. */
  static Path indexPath(Path path) {
    return path.resolveSibling(path.getFileName() + ".index");
  }

  /** Creates a blank cartridge at {@code path}, which must not exist. */
  static CartridgeFile create(Path path, long capacity, long earlyWarningZone) throws IOException {
    if (capacity <= 0 || earlyWarningZone <= 0 || earlyWarningZone >= capacity) {
      throw new IllegalArgumentException("capacity " + capacity + " and early-warning zone " + earlyWarningZone
          + " must be positive, the zone smaller: " + path);
    }
    if (Files.exists(path)) {
      throw new TapeException("cartridge file already exists: " + path);
    }
    Instant created = Instant.ofEpochMilli(System.currentTimeMillis());
    ByteBuffer h = ByteBuffer.allocate(HEADER_SIZE);
    h.put(MAGIC).putInt(VERSION).putInt(HEADER_SIZE).putLong(capacity).putLong(earlyWarningZone)
        .putLong(created.toEpochMilli());
    h.putInt(60, crc(h.array(), 0, 60));
    Files.deleteIfExists(indexPath(path)); // of a cartridge that was here before: it would not match anyway
    FileHandle f = FileHandle.open(path, FileHandle.O_RDWR | FileHandle.O_CREAT | FileHandle.O_EXCL, 0600);
    try {
      f.writeFully(0, h.clear());
      f.fdatasync();
    } catch (IOException | RuntimeException e) {
      f.close();
      throw e;
    }
    return new CartridgeFile(path, f, capacity, earlyWarningZone, created);
  }

  /** Opens the cartridge at {@code path}, rebuilding its index and cutting a torn tail. */
  static CartridgeFile open(Path path) throws IOException {
    FileHandle f = FileHandle.openReadWrite(path);
    try {
      ByteBuffer h = ByteBuffer.allocate(HEADER_SIZE);
      if (f.size() < HEADER_SIZE) {
        throw new TapeException("not a shade cartridge (shorter than its header): " + path);
      }
      f.readFully(0, h);
      byte[] magic = Arrays.copyOf(h.array(), MAGIC.length);
      if (!Arrays.equals(magic, MAGIC)) {
        throw new TapeException("not a shade cartridge (bad magic): " + path);
      }
      if (h.getInt(60) != crc(h.array(), 0, 60)) {
        throw new TapeException("cartridge header is corrupt (CRC mismatch): " + path);
      }
      if (h.getInt(8) != VERSION) {
        throw new TapeException("cartridge format version " + h.getInt(8) + " is not supported (expected "
            + VERSION + "): " + path);
      }
      CartridgeFile c = new CartridgeFile(path, f, h.getLong(16), h.getLong(24), Instant.ofEpochMilli(h.getLong(32)));
      c.scan();
      return c;
    } catch (IOException | RuntimeException e) {
      f.close();
      throw e;
    }
  }

  /** Rebuilds the frame index from the kept index and the headers after it, and cuts the file after the last good frame. */
  private void scan() throws IOException {
    long size = file.size();
    long at = loadIndex(size);
    long fromIndex = changes;
    ByteBuffer h = ByteBuffer.allocate(FRAME_HEADER);
    String torn = null;
    while (at < size) {
      headersScanned++;
      if (at + FRAME_HEADER > size) {
        torn = "incomplete frame header";
        break;
      }
      file.readFully(at, h.clear());
      byte type = h.get(0);
      int length = h.getInt(4);
      if (h.getInt(12) != crc(h.array(), 0, 12) || (type != RECORD && type != FILEMARK) || length < 0
          || (type == FILEMARK && length != 0)) {
        torn = "bad frame header";
        break;
      }
      long end = at + FRAME_HEADER + length;
      if (end > size) {
        torn = "incomplete record (" + (size - at - FRAME_HEADER) + " of " + length + " bytes)";
        break;
      }
      if (end == size && type == RECORD) {
        ByteBuffer payload = ByteBuffer.allocate(length);
        file.readFully(at + FRAME_HEADER, payload);
        if (crc(payload.array(), 0, length) != h.getInt(8)) {
          torn = "last record fails its CRC";
          break;
        }
      }
      append(type == FILEMARK ? -1 : length);
      at = end;
    }
    if (torn != null) {
      LOG.warn("cartridge {}: cutting a torn tail at offset {} ({}), after frame {}; the {} frames before it are kept",
          path, at, torn, frames, frames);
      file.truncate(at);
      file.fdatasync();
    }
    if (changes != fromIndex) {
      indexedChanges = -1; // frames the index lacks: close writes it again
    }
  }

  /**
   * Takes the frames of the kept index when it can be trusted (see the format comment) and
   * returns the offset the scan goes on from; {@link #HEADER_SIZE} when there is none to trust.
   */
  private long loadIndex(long size) throws IOException {
    byte[] b;
    try {
      b = Files.readAllBytes(indexPath);
    } catch (java.nio.file.NoSuchFileException e) {
      return HEADER_SIZE;
    }
    String why = null;
    try {
      ByteBuffer x = ByteBuffer.wrap(b);
      if (b.length < 64 || !Arrays.equals(Arrays.copyOf(b, INDEX_MAGIC.length), INDEX_MAGIC)) {
        why = "not an index";
      } else if (x.getInt(b.length - 4) != crc(b, 0, b.length - 4)) {
        why = "CRC mismatch";
      } else if (x.getInt(8) != INDEX_VERSION) {
        why = "version " + x.getInt(8);
      } else if (x.getLong(12) != created.toEpochMilli() || x.getLong(20) != capacity) {
        why = "of another cartridge";
      } else {
        int n = x.getInt(28);
        long end = x.getLong(32);
        byte[] last = Arrays.copyOfRange(b, 40, 56);
        x.position(56);
        for (int i = 0; i < n; i++) {
          append(x.getInt());
        }
        int m = x.getInt();
        for (int i = 0; i < m; i++) {
          int frame = x.getInt();
          byte[] text = new byte[x.getShort() & 0xffff];
          x.get(text);
          notes.put(frame, new String(text, StandardCharsets.UTF_8));
        }
        if (offsets[frames] != end || end > size) {
          why = end > size ? "longer than the cartridge" : "inconsistent";
        } else if (n > 0) {
          ByteBuffer h = ByteBuffer.allocate(FRAME_HEADER);
          file.readFully(offsets[n - 1], h);
          if (!Arrays.equals(h.array(), last)) {
            why = "its last frame is not the cartridge's";
          }
        }
      }
    } catch (RuntimeException e) { // a short or garbled index: BufferUnderflowException and the like
      why = "unreadable (" + e + ")";
    }
    if (why != null) {
      LOG.debug("cartridge {}: not using its index {} ({}); scanning every frame", path, indexPath, why);
      frames = 0;
      changes = 0;
      notes.clear();
      return HEADER_SIZE;
    }
    indexedFrames = frames;
    indexedChanges = changes;
    return offsets[frames];
  }

  /** Writes the index of the frames as they are now; the caller has made them durable. A failure is logged: it is a cache. */
  private void writeIndex() {
    try {
      java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream(64 + 4 * frames);
      java.io.DataOutputStream o = new java.io.DataOutputStream(bytes);
      o.write(INDEX_MAGIC);
      o.writeInt(INDEX_VERSION);
      o.writeLong(created.toEpochMilli());
      o.writeLong(capacity);
      o.writeInt(frames);
      o.writeLong(offsets[frames]);
      ByteBuffer h = ByteBuffer.allocate(FRAME_HEADER);
      if (frames > 0) {
        file.readFully(offsets[frames - 1], h);
      }
      o.write(h.array());
      for (int i = 0; i < frames; i++) {
        o.writeInt(lengths[i]);
      }
      o.writeInt(notes.size());
      for (Map.Entry<Integer, String> e : notes.entrySet()) {
        byte[] text = e.getValue().getBytes(StandardCharsets.UTF_8);
        o.writeInt(e.getKey());
        o.writeShort(text.length);
        o.write(text);
      }
      o.flush();
      byte[] b = bytes.toByteArray();
      byte[] all = Arrays.copyOf(b, b.length + 4);
      ByteBuffer.wrap(all).putInt(b.length, crc(b, 0, b.length));
      AtomicFile.write(indexPath, all, 0600);
      indexedFrames = frames;
      indexedChanges = changes;
    } catch (IOException | RuntimeException e) {
      LOG.warn("cartridge {}: could not keep its frame index in {} ({}); the next open scans every frame", path,
          indexPath, e.toString());
    }
  }

  /**
   * The library's note on the tape file that starts at {@code frame} (what it holds), kept with the
   * index; null when there is none. Notes go only on closed tape files, whose frames do not change
   * unless the tape is cut before their filemark, which drops them.
   */
  String note(int frame) {
    return notes.get(frame);
  }

  /** Keeps {@code text} (at most 200 characters) as the note of the closed tape file that starts at {@code frame}. */
  void note(int frame, String text) {
    if (text.length() > 200) {
      throw new IllegalArgumentException("a note is at most 200 characters: " + text.length());
    }
    if (!text.equals(notes.put(frame, text))) {
      indexedChanges = -1;
    }
  }

  /** Adds a frame of payload {@code length} (-1 filemark) to the index. */
  private void append(int length) {
    if (frames + 1 >= offsets.length) {
      int n = offsets.length * 2;
      offsets = Arrays.copyOf(offsets, n);
      lengths = Arrays.copyOf(lengths, n);
      bytesBefore = Arrays.copyOf(bytesBefore, n);
    }
    lengths[frames] = length;
    offsets[frames + 1] = offsets[frames] + FRAME_HEADER + Math.max(0, length);
    bytesBefore[frames + 1] = bytesBefore[frames] + Math.max(0, length);
    frames++;
    changes++;
  }

  Path path() {
    return path;
  }

  long capacity() {
    return capacity;
  }

  long earlyWarningZone() {
    return earlyWarningZone;
  }

  Instant created() {
    return created;
  }

  /** Frames on the cartridge; frame numbers are logical block numbers. */
  /** How often the frame index changed (a frame appended, the tape cut): equal counts, equal index. */
  long changes() {
    return changes;
  }

  int frames() {
    return frames;
  }

  boolean isFilemark(int frame) {
    return lengths[check(frame)] < 0;
  }

  /** Payload length of the record at {@code frame}. */
  int length(int frame) {
    return lengths[check(frame)];
  }

  /** Record bytes before {@code frame} (0..frames). */
  long bytesBefore(int frame) {
    if (frame < 0 || frame > frames) {
      throw new IndexOutOfBoundsException("frame " + frame + " of " + frames + ": " + this);
    }
    return bytesBefore[frame];
  }

  /** Record bytes on the cartridge. */
  long usedBytes() {
    return bytesBefore[frames];
  }

  private int check(int frame) {
    if (frame < 0 || frame >= frames) {
      throw new IndexOutOfBoundsException("frame " + frame + " of " + frames + ": " + this);
    }
    return frame;
  }

  /** Reads the record at {@code frame} into {@code dst} (which has room) and checks its CRC. */
  void readRecord(int frame, ByteBuffer dst) throws IOException {
    int length = length(frame);
    ByteBuffer f = frameBuffer(FRAME_HEADER + length);
    file.readFully(offsets[frame], f);
    f.flip();
    if (crc(f, FRAME_HEADER, length) != f.getInt(8)) {
      throw new TapeException("medium error: record at block " + frame + " fails its CRC (offset "
          + offsets[frame] + "): " + this);
    }
    dst.put(f.position(FRAME_HEADER));
  }

  /**
   * Reads the first {@code dst.remaining()} bytes (at most the record's) of the record at
   * {@code frame} into {@code dst}, without checking the record's CRC, which covers the whole
   * record: for a look at what a tape file holds, never for its data.
   */
  void readRecordPrefix(int frame, ByteBuffer dst) throws IOException {
    int n = Math.min(length(frame), dst.remaining());
    file.readFully(offsets[frame] + FRAME_HEADER, dst.slice(dst.position(), n));
    dst.position(dst.position() + n);
  }

  /** {@link #frameBuffer}, cleared, with room for {@code bytes} and its limit there. */
  private ByteBuffer frameBuffer(int bytes) {
    if (frameBuffer.capacity() < bytes) {
      frameBuffer = ByteBuffer.allocateDirect(bytes);
    }
    return frameBuffer.clear().limit(bytes);
  }

  /** Cuts the tape at {@code frame}: it and everything after it are gone. */
  void truncate(int frame) throws IOException {
    if (frame < 0 || frame > frames) {
      throw new IndexOutOfBoundsException("frame " + frame + " of " + frames + ": " + this);
    }
    if (frame == frames) {
      return;
    }
    if (frame < indexedFrames) {
      // first: an index must never cover frames that are cut here and then written again
      Files.deleteIfExists(indexPath);
      AtomicFile.syncDirectory(indexPath.toAbsolutePath().getParent());
      indexedFrames = 0;
    }
    // the tape file that frame is in is no longer the one its note was about, nor are those after it
    int fileStart = 0;
    for (int f = frame - 1; f >= 0; f--) {
      if (lengths[f] < 0) {
        fileStart = f + 1;
        break;
      }
    }
    notes.tailMap(fileStart, true).clear();
    file.truncate(offsets[frame]);
    frames = frame;
    changes++;
    indexedChanges = -1;
    dirty = true;
  }

  /** Appends a record of {@code src}'s remaining bytes at the end of data; advances {@code src}. */
  void appendRecord(ByteBuffer src) throws IOException {
    int length = src.remaining();
    ByteBuffer frame = frameBuffer(FRAME_HEADER + length);
    frame.put(RECORD).put((byte) 0).put((byte) 0).put((byte) 0).putInt(length).putInt(0).putInt(0);
    frame.put(src.duplicate());
    frame.putInt(8, crc(frame, FRAME_HEADER, length));
    frame.putInt(12, crc(frame, 0, 12));
    long at = offsets[frames];
    file.writeFully(at, frame.flip());
    append(length);
    if (unstarted < 0 || unstarted > at) {
      unstarted = at;
    }
    long end = at + FRAME_HEADER + length;
    if (end - unstarted >= WRITEBACK_BYTES) {
      file.startWriteBack(unstarted, end - unstarted);
      unstarted = end;
    }
    src.position(src.limit());
    dirty = true;
  }

  /** Appends {@code count} filemarks at the end of data. */
  void appendFilemarks(int count) throws IOException {
    if (count == 0) {
      return;
    }
    ByteBuffer marks = ByteBuffer.allocate(FRAME_HEADER * count);
    for (int i = 0; i < count; i++) {
      int base = i * FRAME_HEADER;
      marks.put(base, FILEMARK);
      marks.putInt(base + 12, crc(marks.array(), base, 12));
    }
    file.writeFully(offsets[frames], marks);
    for (int i = 0; i < count; i++) {
      append(-1);
    }
    dirty = true;
  }

  /** Makes every frame durable. */
  void sync() throws IOException {
    if (dirty) {
      file.fdatasync();
      dirty = false;
    }
  }

  /** CRC-32C of {@code b[off, off + len)}, whatever its position and limit. */
  private static int crc(ByteBuffer b, int off, int len) {
    CRC32C c = new CRC32C();
    c.update(b.duplicate().limit(off + len).position(off));
    return (int) c.getValue();
  }

  private static int crc(byte[] b, int off, int len) {
    CRC32C c = new CRC32C();
    c.update(b, off, len);
    return (int) c.getValue();
  }

  @Override
  public void close() throws IOException {
    try {
      sync();
      if (indexedChanges != changes) {
        writeIndex();
      }
    } finally {
      file.close();
    }
  }

  @Override
  public String toString() {
    return "cartridge " + path;
  }
}
