package dev.shade.offhost.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What a restore does with the chunks of one archive of its chain: takes those this archive
 * wins (the newest archive that lists a chunk wins it, as the catalog says), checks each one's
 * length and checksum against the catalog, and writes it to the restore's {@link Output}.
 *
 * <p>Thread-safe: {@link #chunk} is called from {@link #threads()} worker threads of the
 * archive's read at once, in any order; each chunk is written once, at its own offset, so the
 * order of the writes does not matter.
 */
final class RestoreChunks implements ImageArchiveReader.Handler {
  /** Where a restore writes its chunks. */
  @FunctionalInterface
  interface Output {
    /**
     * Writes all of {@code data}'s remaining bytes at {@code offset} of the image. Called from
     * several threads at once, each with its own chunk; the chunks do not overlap.
     */
    void write(long offset, ByteBuffer data) throws IOException;
  }

  /*
   * Checksumming was what bounded a restore of SHA-256 chunks: 0.52 CPU s per GiB with the JDK's
   * SHA-NI intrinsic (CRC-32C, the default since, takes a tenth of it), and 0.2 more to write the chunk into the page cache, against 0.25-0.35 for reading the tape
   * file and parsing the tar. With one worker the reader waited for it; two workers on the
   * 2-core server bring checksumming and writing level with the reader (docs/performance.md,
   * "Restore speed").
   */

  /** Worker threads for the checksums and writes: the cores, at most 4, at least 2. */
  static final int THREADS = Math.max(2, Math.min(4, Runtime.getRuntime().availableProcessors()));

  /** This archive's index in the chain, full first. */
  private final int index;
  /** For each chunk offset, the index of the archive that wins it. */
  private final Map<Long, Integer> winner;
  /** For each chunk offset, the catalog's entry of the winning archive. */
  private final Map<Long, ChunkEntry> entries;
  /** Where the chunks go. */
  private final Output out;
  /** The archive's chunk checksum, for messages ({@code CRC-32C}, {@code SHA-256}). */
  private final ChunkChecksum checksum;
  /** Told how far the restore is; called under {@link #progressLock}. */
  private final BackupProgress progress;
  /** The bytes the whole restore writes, for {@link #progress}. */
  private final long totalBytes;
  /** Guards calls of {@link #progress}, so that they come one at a time with growing counts. */
  private final Object progressLock = new Object();
  /** The largest count {@link #progress} was told; guarded by progressLock. */
  private long reported;
  /** Chunks of this archive written. */
  private final AtomicInteger chunks = new AtomicInteger();
  /** Bytes written by the restore so far: the earlier archives' and this one's. */
  private final AtomicLong bytes;

  /**
   * The handler of archive {@code index} of the chain; {@code writtenBefore} bytes were written
   * from the archives before it; its chunks have the checksum {@code checksum}.
   */
  RestoreChunks(int index, Map<Long, Integer> winner, Map<Long, ChunkEntry> entries, Output out,
      BackupProgress progress, long writtenBefore, long totalBytes, ChunkChecksum checksum) {
    this.index = index;
    this.checksum = checksum;
    this.winner = winner;
    this.entries = entries;
    this.out = out;
    this.progress = progress;
    this.totalBytes = totalBytes;
    this.bytes = new AtomicLong(writtenBefore);
  }

  @Override
  public boolean wants(long offset) {
    Integer w = winner.get(offset);
    return w != null && w == index && !entries.get(offset).zero();
  }

  @Override
  public void chunk(long offset, byte[] data, int length, String got) throws IOException {
    ChunkEntry e = entries.get(offset);
    if (!got.equals(e.checksum()) || length != e.length()) {
      throw new ImageArchiveReader.ArchiveException(e.member(), "chunk " + e.member() + " is damaged: its "
          + length + " bytes have " + checksum + " " + got + ", the catalog says " + e.length() + " bytes with "
          + e.checksum(), null);
    }
    out.write(offset, ByteBuffer.wrap(data, 0, length));
    chunks.incrementAndGet();
    long done = bytes.addAndGet(length);
    synchronized (progressLock) {
      if (done > reported) { // another worker may have told a larger count already
        reported = done;
        progress.update(done, totalBytes);
      }
    }
  }

  @Override
  public int threads() {
    return THREADS;
  }

  /** Chunks written so far. */
  int chunks() {
    return chunks.get();
  }

  /** Bytes written by the restore so far, this archive's included. */
  long bytes() {
    return bytes.get();
  }
}
