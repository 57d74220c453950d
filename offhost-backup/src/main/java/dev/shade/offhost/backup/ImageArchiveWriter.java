package dev.shade.offhost.backup;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.HexFormat;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * Writes one image archive, a POSIX (PAX) tar stream: {@code shade-image.json} (the header), the
 * chunks that are not all zeros as {@code data/OFFSET} (16 hex digits), then
 * {@code manifest.json} with every chunk's SHA-256. docs/tape-format.md describes the layout.
 *
 * <p>Not thread-safe; one archive per instance use.
 */
public final class ImageArchiveWriter {
  /** What was written. */
  public record Result(ImageManifest manifest, String manifestSha256, long archiveBytes, long dataBytes) {}

  /*
   * The data path is a pipeline of three stages on three threads, so that reading, checksumming
   * and writing overlap instead of taking turns:
   *
   *   read   adjacent chunks are read together, in runs of up to READ_BYTES (one NBD request
   *          each, which the client splits at the server's largest payload), up to
   *          READ_AHEAD_BYTES ahead of the run being written: the bounded queue that keeps the
   *          tape streaming while the network stalls. The source completes each read on its own
   *          thread (the NBD client's reply reader);
   *   hash   each run, once read, is checked for zero chunks and SHA-256'd chunk by chunk on a
   *          hashing thread (HASH_THREADS of them, runs in parallel);
   *   write  the calling thread takes the runs in order, writes their tar members and issues the
   *          read that reuses the buffer it has just finished with.
   *
   * Buffers: READ_AHEAD_BYTES / the run size of them (at least two), reused round robin: a
   * buffer is read into again only after its run is written. shade bench backup measures the
   * path (docs/performance.md, "Off-host backup"): before, with 64 KiB chunks each read as a
   * request of its own, four in flight, and hashed on the writing thread, a full backup of a
   * 256 MiB volume reached 0.40 x nbdcopy of the same snapshot on an idle machine; on a busy
   * one the full is CPU-bound either way (SHA-256 of every byte), and this path spends about
   * 10 % less CPU per full.
   */

  /**
   * Bytes of adjacent chunks asked for in one read (a run is at least one chunk); the system
   * property {@code shade.backup.readBytes} changes it.
   */
  static final int READ_BYTES = Math.max(4096, Integer.getInteger("shade.backup.readBytes", 4 << 20));
  /** Bytes read ahead of the run being written: the bound of the read-ahead queue. */
  static final long READ_AHEAD_BYTES = 64L << 20;
  /** Threads that checksum runs: half the processors, at least one, at most four. */
  static final int HASH_THREADS = Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors() / 2));

  /** Adjacent chunks read in one request: {@code count} chunks from {@code first} of the offset list. */
  record Run(int first, int count, long offset, int length) {}

  private ImageArchiveWriter() {}

  /** The offsets of the chunks of {@code chunkSize} that {@code ranges} touch, below {@code size}, in order. */
  public static List<Long> chunksOf(List<Range> ranges, int chunkSize, long size) {
    TreeSet<Long> offsets = new TreeSet<>();
    for (Range r : ranges) {
      long end = Math.min(r.end(), size);
      for (long c = r.offset() / chunkSize * chunkSize; c < end; c += chunkSize) {
        offsets.add(c);
      }
    }
    return new ArrayList<>(offsets);
  }

  /** Groups {@code offsets} into runs of adjacent chunks of at most {@code max(READ_BYTES, chunkSize)} bytes. */
  static List<Run> runsOf(List<Long> offsets, int chunkSize, long size) {
    int most = Math.max(1, READ_BYTES / chunkSize);
    List<Run> runs = new ArrayList<>();
    int i = 0;
    while (i < offsets.size()) {
      long o = offsets.get(i);
      if (o >= size) {
        i++;
        continue;
      }
      int n = 1;
      while (n < most && i + n < offsets.size() && offsets.get(i + n) == o + (long) n * chunkSize
          && offsets.get(i + n) < size) {
        n++;
      }
      long end = Math.min(size, o + (long) n * chunkSize);
      runs.add(new Run(i, n, o, (int) (end - o)));
      i += n;
    }
    return runs;
  }

  /**
   * Writes the archive of {@code header}'s snapshot to {@code out} (which the caller closes),
   * reading the chunks at {@code chunkOffsets} from {@code source}. A chunk that reads as zeros
   * is left out of the archive; an incremental lists it in the manifest as a zero chunk.
   */
  public static Result write(OutputStream out, int tarBlockSize, ImageManifest header, List<Long> chunkOffsets,
      SnapshotSource source, BackupProgress progress) throws IOException {
    long size = header.snapshot().size();
    int chunkSize = header.chunkSize();
    boolean incremental = ImageManifest.INCREMENTAL.equals(header.level());
    long mtime = header.snapshot().created().toEpochMilli();
    // whole seconds: a time with milliseconds costs every chunk a PAX header of its own (1 KiB,
    // 1.6 % of a 64 KiB chunk), which tar's ustar header cannot hold
    long chunkMtime = Math.floorDiv(mtime, 1000) * 1000;
    TarArchiveOutputStream tar = new TarArchiveOutputStream(out, tarBlockSize, "UTF-8");
    tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
    tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
    member(tar, ImageManifest.HEADER_MEMBER, header.bytes(), mtime, true);
    List<ChunkEntry> chunks = new ArrayList<>();
    long total = (long) chunkOffsets.size() * chunkSize;
    long done = 0;
    long dataBytes = 0;
    List<Run> runs = runsOf(chunkOffsets, chunkSize, size);
    int runBytes = Math.max(READ_BYTES / chunkSize, 1) * chunkSize;
    int window = (int) Math.max(2, Math.min(runs.size(), READ_AHEAD_BYTES / runBytes));
    window = Math.max(1, Math.min(window, runs.size()));
    byte[][] bufs = new byte[window][];
    List<CompletableFuture<String[]>> pending = new ArrayList<>();
    ExecutorService hasher = Executors.newFixedThreadPool(HASH_THREADS, r -> {
      Thread t = new Thread(r, "shade-backup-hash");
      t.setDaemon(true);
      return t;
    });
    try {
      int next = 0;
      for (int i = 0; i < runs.size(); i++) {
        while (next < runs.size() && next < i + window) {
          Run run = runs.get(next);
          int slot = next % window;
          if (bufs[slot] == null) {
            bufs[slot] = new byte[runBytes];
          }
          byte[] buf = bufs[slot];
          pending.add(source.readAsync(run.offset(), ByteBuffer.wrap(buf, 0, run.length()))
              .thenApplyAsync(v -> hash(buf, run, chunkSize), hasher));
          next++;
        }
        Run run = runs.get(i);
        byte[] buf = bufs[i % window];
        String[] shas;
        try {
          shas = pending.set(i, null).get();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new InterruptedIOException("interrupted reading chunk " + ChunkEntry.memberName(run.offset()));
        } catch (ExecutionException e) {
          Throwable c = e.getCause() instanceof CompletionException && e.getCause().getCause() != null
              ? e.getCause().getCause() : e.getCause();
          throw new IOException("cannot read chunk " + ChunkEntry.memberName(run.offset()) + (run.count() > 1
              ? " or the " + (run.count() - 1) + " after it" : "") + " (offset " + run.offset() + ", " + run.length()
              + " bytes) of " + header.snapshot() + ": " + c.getMessage(), c);
        }
        for (int k = 0; k < run.count(); k++) {
          long offset = run.offset() + (long) k * chunkSize;
          int at = k * chunkSize;
          int len = (int) Math.min(chunkSize, size - offset);
          if (shas[k] == null) {
            if (incremental) {
              chunks.add(new ChunkEntry(offset, len, null, true));
            }
          } else {
            ChunkEntry c = new ChunkEntry(offset, len, shas[k], false);
            TarArchiveEntry e = new TarArchiveEntry(c.member());
            e.setSize(len);
            e.setMode(0644);
            e.setModTime(chunkMtime);
            e.setUserName("shade");
            e.setGroupName("shade");
            tar.putArchiveEntry(e);
            tar.write(buf, at, len);
            tar.closeArchiveEntry();
            chunks.add(c);
            dataBytes += len;
          }
          done += chunkSize;
        }
        progress.update(Math.min(done, total), total);
      }
    } finally {
      hasher.shutdownNow();
    }
    ImageManifest manifest = header.complete(Instant.ofEpochMilli(System.currentTimeMillis()), chunks);
    byte[] body = manifest.bytes();
    member(tar, ImageManifest.MANIFEST_MEMBER, body, mtime, false);
    tar.finish();
    return new Result(manifest, Sha256.hex(body, 0, body.length), tar.getBytesWritten(), dataBytes);
  }

  /** The SHA-256 of each chunk of {@code run} in {@code buf}, null for a chunk of zeros. */
  private static String[] hash(byte[] buf, Run run, int chunkSize) {
    String[] out = new String[run.count()];
    MessageDigest d = Sha256.digest();
    HexFormat hex = HexFormat.of();
    for (int k = 0; k < run.count(); k++) {
      int at = k * chunkSize;
      int len = Math.min(chunkSize, run.length() - at);
      if (!isZero(buf, at, len)) {
        d.update(buf, at, len);
        out[k] = hex.formatHex(d.digest());
      }
    }
    return out;
  }

  private static void member(TarArchiveOutputStream tar, String name, byte[] body, long mtime, boolean pax)
      throws IOException {
    TarArchiveEntry e = new TarArchiveEntry(name);
    e.setSize(body.length);
    e.setMode(0644);
    e.setModTime(mtime);
    e.setUserName("shade");
    e.setGroupName("shade");
    if (pax) {
      // a POSIX extended header first, so the archive is PAX as every shade tape file
      e.addPaxHeader("comment", "shade image archive " + ImageManifest.FORMAT);
    }
    tar.putArchiveEntry(e);
    tar.write(body);
    tar.closeArchiveEntry();
  }

  static boolean isZero(byte[] b, int len) {
    return isZero(b, 0, len);
  }

  /** Zeros that {@link #isZero} compares with ({@code Arrays.mismatch} is vectorized). */
  private static final byte[] ZEROS = new byte[64 * 1024];

  /** True if {@code b[off, off + len)} is all zeros. */
  static boolean isZero(byte[] b, int off, int len) {
    for (int at = off, end = off + len; at < end; at += ZEROS.length) {
      int n = Math.min(ZEROS.length, end - at);
      if (Arrays.mismatch(b, at, at + n, ZEROS, 0, n) >= 0) {
        return false;
      }
    }
    return true;
  }
}
