package dev.shade.provider;

import dev.shade.nativeio.FileHandle;
import java.io.Closeable;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.locks.ReentrantLock;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The append-only, checksummed log of a volume's snapshot state changes, with group commit.
 *
 * <p>Thread-safe: any thread may {@link #append} and {@link #sync}; one of the syncing threads
 * writes and syncs everything appended so far for all of them.
 */
final class Journal implements Closeable {
  /*
   * File format: a sequence of frames, each
   *
   *   int magic 'SHJF' | int payloadLength | long generation | long frameSeq | int crc32c
   *   payload: records (JournalRecord encodings), back to back
   *
   * The CRC covers generation, frameSeq and the payload. One frame is what one group commit
   * wrote: the leader takes every record appended since the last frame, and forces the
   * diff-area range those records point to while it writes and fdatasyncs the frame (two
   * flushes at once instead of one after the other). Nobody waiting on the frame returns until
   * both are durable, and a frame is written only after the previous frame and its data are
   * durable, so after a crash only the last frame can be torn or name copies that did not
   * reach the disk. The volume checks the CRC32C of every copy the last frame names and drops
   * that frame if one does not match: its writers were never answered and the origin was never
   * written for it. On replay an invalid frame with no valid
   * frame after it is that torn tail and is cut off; an invalid frame followed by a valid one
   * is damage and the volume refuses to open (this is how PostgreSQL and SQLite treat the end
   * of their logs, too).
   *
   * The generation ties the journal to a checkpoint: writing checkpoint G+1 and then resetting
   * the journal to generation G+1 is the fold; a crash between the two leaves a journal of
   * generation G, which replay recognises as already folded.
   */
  static final int MAGIC = 0x53484a46;
  static final int HEADER = 28;
  /**
   * The file is kept this much longer than its frames, in zeros, so that appending a frame
   * does not change the file size and its fdatasync carries no metadata (measured: a sized,
   * reused file is what the group commit's sync costs least on). Replay stops at the zeros.
   */
  static final long PREALLOCATE = 256L << 10;
  /** A frame larger than this is not something we ever write: treat as garbage. */
  static final int MAX_PAYLOAD = 64 << 20;

  private static final Logger LOG = LoggerFactory.getLogger(Journal.class);

  /** Makes the diff-area bytes a frame names durable. */
  @FunctionalInterface
  interface ForceHook {
    /** Makes [lo, hi) durable by itself (it flushes the device). */
    void force(long lo, long hi) throws IOException;

    /**
     * Writes [lo, hi) to the device without a flush and returns true when the journal's own
     * fdatasync (same device, no metadata needed) will make it durable; false when the range
     * must be forced by itself instead.
     */
    default boolean writeBack(long lo, long hi) throws IOException {
      return false;
    }
  }

  private final FileHandle file;
  private final ForceHook forceHook;
  /** Runs the diff-area force while the leader syncs the frame. */
  private final ExecutorService forcer;
  /** Serialises frame writers; the holder is the group-commit leader. */
  private final ReentrantLock syncLock = new ReentrantLock();

  // guarded by this
  /** Encoded records not yet in a frame. */
  private ByteBuffer pending = ByteBuffer.allocate(64 * 1024);
  /** Sequence number of the last appended record. */
  private long appendedSeq;
  /** Lowest diff-area byte the pending records need durable, or Long.MAX_VALUE. */
  private long pendingLo = Long.MAX_VALUE;
  /** End of the highest diff-area range the pending records need durable, or -1. */
  private long pendingHi = -1;

  // guarded by syncLock
  /** Where the next frame goes. */
  private long end;
  /** File size: frames up to {@link #end}, zeros after. */
  private long allocated;
  /** Sequence number of the next frame within this generation. */
  private long frameSeq;
  /** Generation of this journal; equals the checkpoint's. */
  private long generation;
  /** Set when an fdatasync failed: the kernel may have dropped pages, nothing more is trusted. */
  private IOException failure;

  /** Sequence number of the last record known durable; written by the leader. */
  private volatile long durableSeq;

  Journal(FileHandle file, long generation, long end, long frameSeq, ForceHook forceHook) throws IOException {
    this.file = file;
    this.generation = generation;
    this.end = end;
    this.allocated = Math.max(end, file.size());
    this.frameSeq = frameSeq;
    this.forceHook = forceHook;
    this.forcer = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "journal-force " + file.path());
      t.setDaemon(true);
      return t;
    });
  }

  /** Bytes in the journal file. */
  long size() {
    return end;
  }

  /** Appends a record that needs no diff-area data durable first. Returns its sequence number. */
  long append(JournalRecord r) {
    return append(r, Long.MAX_VALUE, -1);
  }

  /** Appends a record whose diff-area bytes [lo, hi) must be durable before it. */
  synchronized long append(JournalRecord r, long lo, long hi) {
    if (pending.remaining() < r.maxSize()) {
      ByteBuffer bigger = ByteBuffer.allocate(Math.max(pending.capacity() * 2, pending.position() + r.maxSize()));
      pending.flip();
      bigger.put(pending);
      pending = bigger;
    }
    r.encode(pending);
    pendingLo = Math.min(pendingLo, lo);
    pendingHi = Math.max(pendingHi, hi);
    return ++appendedSeq;
  }

  /** Appends {@code r} and returns once it is durable. */
  void commit(JournalRecord r) throws IOException {
    sync(append(r));
  }

  /** Returns once the record with sequence number {@code seq} (and all before it) is durable. */
  void sync(long seq) throws IOException {
    if (durableSeq >= seq) {
      return;
    }
    syncLock.lock();
    try {
      if (failure != null) {
        throw new IOException("journal is unusable after an earlier sync failure: " + file.path(), failure);
      }
      if (durableSeq >= seq) {
        return; // a leader before us wrote our record in its frame
      }
      byte[] payload;
      long last;
      long lo;
      long hi;
      synchronized (this) {
        payload = new byte[pending.position()];
        pending.flip();
        pending.get(payload);
        pending.clear();
        last = appendedSeq;
        lo = pendingLo;
        hi = pendingHi;
        pendingLo = Long.MAX_VALUE;
        pendingHi = -1;
      }
      Future<?> forced = null;
      if (hi > lo && !forceHook.writeBack(lo, hi)) {
        long flo = lo;
        long fhi = hi;
        forced = forcer.submit(() -> {
          forceHook.force(flo, fhi); // the data, while the frame that names it is written
          return null;
        });
      }
      ByteBuffer frame = frame(generation, frameSeq, payload);
      try {
        if (end + frame.capacity() > allocated) {
          long to = (end + frame.capacity() + PREALLOCATE - 1) / PREALLOCATE * PREALLOCATE;
          file.writeZeros(allocated, to - allocated); // made durable by the sync below
          allocated = to;
        }
        file.writeFully(end, frame);
      } catch (IOException e) {
        // nothing of this frame counts; cut off whatever part of it reached the file
        try {
          file.truncate(end);
          allocated = end;
        } catch (IOException suppressed) {
          e.addSuppressed(suppressed);
        }
        failure = e;
        awaitQuietly(forced);
        throw e;
      }
      try {
        file.fdatasync();
      } catch (IOException e) {
        failure = e;
        awaitQuietly(forced);
        throw e;
      }
      if (forced != null) {
        try {
          forced.get();
        } catch (ExecutionException e) {
          failure = e.getCause() instanceof IOException ? (IOException) e.getCause() : new IOException(e.getCause());
          throw failure;
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          failure = new InterruptedIOException("interrupted while forcing the diff area");
          throw failure;
        }
      }
      end += frame.capacity();
      frameSeq++;
      durableSeq = last; // publish after the frame is durable
    } finally {
      syncLock.unlock();
    }
  }

  private static void awaitQuietly(Future<?> f) {
    if (f == null) {
      return;
    }
    try {
      f.get();
    } catch (ExecutionException | InterruptedException e) {
      // the frame failed already; this outcome changes nothing
    }
  }

  /**
   * Empties the journal and starts {@code newGeneration}. Call only when no other thread
   * appends (the volume holds its exclusive lock) and every pending record is one the new
   * checkpoint already reflects ("set complete" appended by a set commit): such records stay
   * pending and go into the new generation's first frame, where replaying them changes nothing.
   */
  void reset(long newGeneration) throws IOException {
    syncLock.lock();
    try {
      file.truncate(0); // the old generation's frames go; zeros from here on
      file.writeZeros(0, PREALLOCATE);
      file.fsync();
      allocated = PREALLOCATE;
      generation = newGeneration;
      end = 0;
      frameSeq = 0;
    } finally {
      syncLock.unlock();
    }
  }

  static ByteBuffer frame(long generation, long seq, byte[] payload) {
    ByteBuffer f = ByteBuffer.allocateDirect(HEADER + payload.length).order(ByteOrder.BIG_ENDIAN);
    f.putInt(MAGIC).putInt(payload.length).putLong(generation).putLong(seq);
    CRC32C crc = new CRC32C();
    crc.update(f.duplicate().position(8).limit(24));
    crc.update(payload);
    f.putInt((int) crc.getValue()).put(payload).flip();
    return f;
  }

  /**
   * What replay found: the records, where the last frame starts (as an index into records and
   * as a file offset), and what was cut off.
   */
  record Replay(List<JournalRecord> records, long end, long frames, long droppedBytes, boolean stale,
      int lastFrameRecord, long lastFrameOffset) {

    /** The same replay without its last frame (whose copies did not all reach the disk). */
    Replay withoutLastFrame() {
      return new Replay(List.copyOf(records.subList(0, lastFrameRecord)), lastFrameOffset, frames - 1,
          droppedBytes + (end - lastFrameOffset), stale, lastFrameRecord, lastFrameOffset);
    }
  }

  /**
   * Reads every valid frame of {@code generation}. A journal of an older generation is stale
   * (already folded into the checkpoint). Cuts off a torn tail; throws on damage.
   */
  static Replay read(FileHandle file, long generation) throws IOException {
    long size = file.size();
    if (size > Integer.MAX_VALUE - 16) {
      throw new VolumeException("journal is implausibly large (" + size + " bytes): " + file.path());
    }
    ByteBuffer all = ByteBuffer.allocate((int) size);
    file.readFully(0, all);
    all.flip();
    List<JournalRecord> records = new ArrayList<>();
    long pos = 0;
    long seq = 0;
    int lastFrameRecord = 0;
    long lastFrameOffset = 0;
    while (pos < size) {
      Frame f = parse(all, (int) pos);
      if (f == null) {
        break;
      }
      if (f.generation < generation && pos == 0) {
        return new Replay(List.of(), 0, 0, size, true, 0, 0);
      }
      if (f.generation != generation || f.seq != seq) {
        throw new VolumeException("journal is damaged at offset " + pos + " (frame of generation "
            + f.generation + " seq " + f.seq + ", expected " + generation + "/" + seq + "): " + file.path());
      }
      lastFrameRecord = records.size();
      lastFrameOffset = pos;
      ByteBuffer p = ByteBuffer.wrap(all.array(), f.payloadOffset, f.payloadLength);
      try {
        while (p.hasRemaining()) {
          records.add(JournalRecord.decode(p));
        }
      } catch (RuntimeException e) {
        throw new VolumeException("journal is damaged at offset " + pos + " (a checksummed frame holds an undecodable record): " + file.path(), e);
      }
      pos = f.payloadOffset + (long) f.payloadLength;
      seq++;
    }
    long dropped = allZero(all, (int) pos) ? 0 : size - pos;
    if (dropped > 0) {
      for (long p = pos + 1; p + HEADER <= size; p++) {
        Frame later = parse(all, (int) p);
        if (later != null && later.generation == generation) {
          throw new VolumeException("journal is damaged at offset " + pos
              + ": an unreadable frame is followed by a valid one at offset " + p + ": " + file.path());
        }
      }
      LOG.warn("{}: dropping {} bytes of an unfinished journal write at offset {} (the process stopped while writing it)",
          file.path(), dropped, pos);
      file.truncate(pos);
      file.fsync();
    }
    return new Replay(records, pos, seq, dropped, false, lastFrameRecord, lastFrameOffset);
  }

  private static boolean allZero(ByteBuffer all, int from) {
    for (int i = from; i < all.limit(); i++) {
      if (all.get(i) != 0) {
        return false;
      }
    }
    return true;
  }

  private record Frame(long generation, long seq, int payloadOffset, int payloadLength) {}

  /** Parses and verifies the frame at {@code pos}, or returns null if there is none. */
  private static Frame parse(ByteBuffer all, int pos) {
    int limit = all.limit();
    if (pos + HEADER > limit || all.getInt(pos) != MAGIC) {
      return null;
    }
    int len = all.getInt(pos + 4);
    if (len < 0 || len > MAX_PAYLOAD || pos + HEADER + (long) len > limit) {
      return null;
    }
    CRC32C crc = new CRC32C();
    crc.update(all.array(), pos + 8, 16);
    crc.update(all.array(), pos + HEADER, len);
    if ((int) crc.getValue() != all.getInt(pos + 24)) {
      return null;
    }
    return new Frame(all.getLong(pos + 8), all.getLong(pos + 16), pos + HEADER, len);
  }

  /** Cuts the file back to {@code offset} (dropping a last frame on open). */
  static void truncate(FileHandle file, long offset) throws IOException {
    file.truncate(offset);
    file.fsync();
  }

  @Override
  public void close() throws IOException {
    forcer.shutdown();
    file.close();
  }

  @Override
  public String toString() {
    return "Journal(" + file.path() + ", generation " + generation + ", " + end + " bytes)";
  }
}
