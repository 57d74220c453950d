package dev.shade.offhost.backup;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
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

  /** Chunks read ahead of the one being written. */
  static final int READ_AHEAD = 4;

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
    TarArchiveOutputStream tar = new TarArchiveOutputStream(out, tarBlockSize, "UTF-8");
    tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
    tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
    member(tar, ImageManifest.HEADER_MEMBER, header.bytes(), mtime, true);
    List<ChunkEntry> chunks = new ArrayList<>();
    long total = (long) chunkOffsets.size() * chunkSize;
    long done = 0;
    long dataBytes = 0;
    // up to READ_AHEAD chunks in flight: the source reads while this thread checksums and writes
    int window = Math.min(READ_AHEAD, Math.max(1, chunkOffsets.size()));
    byte[][] bufs = new byte[window][chunkSize];
    List<CompletableFuture<Void>> pending = new ArrayList<>();
    int next = 0;
    for (int i = 0; i < chunkOffsets.size(); i++) {
      while (next < chunkOffsets.size() && next < i + window) {
        long o = chunkOffsets.get(next);
        int l = (int) Math.max(0, Math.min(chunkSize, size - o));
        pending.add(source.readAsync(o, ByteBuffer.wrap(bufs[next % window], 0, l)));
        next++;
      }
      long offset = chunkOffsets.get(i);
      byte[] buf = bufs[i % window];
      int len = (int) Math.min(chunkSize, size - offset);
      CompletableFuture<Void> f = pending.set(i, null);
      if (len <= 0) {
        continue;
      }
      try {
        f.get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted reading chunk " + ChunkEntry.memberName(offset));
      } catch (ExecutionException e) {
        Throwable c = e.getCause();
        throw new IOException("cannot read chunk " + ChunkEntry.memberName(offset) + " (offset " + offset + ", "
            + len + " bytes) of " + header.snapshot() + ": " + c.getMessage(), c);
      }
      if (isZero(buf, len)) {
        if (incremental) {
          chunks.add(new ChunkEntry(offset, len, null, true));
        }
      } else {
        ChunkEntry c = new ChunkEntry(offset, len, Sha256.hex(buf, 0, len), false);
        TarArchiveEntry e = new TarArchiveEntry(c.member());
        e.setSize(len);
        e.setMode(0644);
        e.setModTime(mtime);
        e.setUserName("shade");
        e.setGroupName("shade");
        tar.putArchiveEntry(e);
        tar.write(buf, 0, len);
        tar.closeArchiveEntry();
        chunks.add(c);
        dataBytes += len;
      }
      done += chunkSize;
      progress.update(Math.min(done, total), total);
    }
    ImageManifest manifest = header.complete(Instant.ofEpochMilli(System.currentTimeMillis()), chunks);
    byte[] body = manifest.bytes();
    member(tar, ImageManifest.MANIFEST_MEMBER, body, mtime, false);
    tar.finish();
    return new Result(manifest, Sha256.hex(body, 0, body.length), tar.getBytesWritten(), dataBytes);
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
    int i = 0;
    for (; i + 8 <= len; i += 8) {
      if (b[i] != 0 || b[i + 1] != 0 || b[i + 2] != 0 || b[i + 3] != 0 || b[i + 4] != 0 || b[i + 5] != 0
          || b[i + 6] != 0 || b[i + 7] != 0) {
        return false;
      }
    }
    for (; i < len; i++) {
      if (b[i] != 0) {
        return false;
      }
    }
    return true;
  }
}
