package dev.shade.offhost.backup;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
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
    byte[] buf = new byte[chunkSize];
    long total = (long) chunkOffsets.size() * chunkSize;
    long done = 0;
    long dataBytes = 0;
    for (long offset : chunkOffsets) {
      int len = (int) Math.min(chunkSize, size - offset);
      if (len <= 0) {
        continue;
      }
      try {
        source.read(offset, ByteBuffer.wrap(buf, 0, len));
      } catch (IOException e) {
        throw new IOException("cannot read chunk " + ChunkEntry.memberName(offset) + " (offset " + offset + ", "
            + len + " bytes) of " + header.snapshot() + ": " + e.getMessage(), e);
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
