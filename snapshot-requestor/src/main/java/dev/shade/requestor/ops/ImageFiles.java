package dev.shade.requestor.ops;

import dev.shade.provider.BlockDevice;
import dev.shade.provider.BlockSource;
import dev.shade.provider.Progress;
import java.io.EOFException;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/** Copies between plain image files and volumes or snapshots. */
public final class ImageFiles {
  /*
   * Both directions move 1 MiB at a time through one direct buffer. An export writes to a
   * temporary file beside the target and renames it into place once it is complete and
   * durable, so a failed export leaves no half-written image behind; pages (4 KiB) that read as
   * zeros are not written at all, so the image is as sparse as the volume's data allows.
   */

  /** Bytes moved per read and write. */
  static final int CHUNK = 1 << 20;
  /** Granularity of the all-zero test of an export: the page size of Linux file systems. */
  static final int PAGE = 4096;
  private static final ByteBuffer ZERO_PAGE = ByteBuffer.allocateDirect(PAGE).asReadOnlyBuffer();

  private ImageFiles() {}

  /** What an export did. */
  public record Exported(long size, long dataBytes) {}

  /**
   * Writes {@code length} bytes of {@code file} to {@code device} at {@code offset} through
   * {@link BlockDevice#write}, then flushes. The caller has checked that they fit.
   */
  public static void copyIn(FileChannel file, long length, BlockDevice device, long offset, Progress progress)
      throws IOException {
    ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK);
    long done = 0;
    while (done < length) {
      buf.clear().limit((int) Math.min(CHUNK, length - done));
      while (buf.hasRemaining()) {
        if (file.read(buf, done + buf.position()) < 0) {
          throw new EOFException("file shrank while being read, at byte " + (done + buf.position())
              + " of " + length);
        }
      }
      int n = buf.flip().remaining();
      device.write(offset + done, buf);
      done += n;
      progress.update(done, length);
    }
    device.flush();
  }

  /**
   * Writes all of {@code source} to {@code target} as a sparse image file. {@code target} must
   * not exist unless {@code replace}; it must be a plain file if it does.
   */
  public static Exported copyOut(BlockSource source, Path target, boolean replace, Progress progress)
      throws IOException {
    if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
      if (!Files.isRegularFile(target, LinkOption.NOFOLLOW_LINKS)) {
        throw new ImageExistsException(target, target + " exists and is not a plain file; exports go to plain files only");
      }
      if (!replace) {
        throw new ImageExistsException(target, target + " exists");
      }
    }
    Path dir = target.toAbsolutePath().getParent();
    if (!Files.isDirectory(dir)) {
      throw new java.io.FileNotFoundException("directory of " + target + " does not exist: " + dir);
    }
    // 0600 until renamed: an image holds the volume's data
    Path tmp = Files.createTempFile(dir, "." + target.getFileName() + ".", ".part");
    boolean complete = false;
    try {
      long size = source.size();
      long data = 0;
      try (RandomAccessFile raf = new RandomAccessFile(tmp.toFile(), "rw");
          FileChannel out = raf.getChannel()) {
        ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK);
        for (long pos = 0; pos < size; pos += buf.limit()) {
          buf.clear().limit((int) Math.min(CHUNK, size - pos));
          source.read(pos, buf);
          data += writeNonZeroPages(out, buf.flip(), pos);
          progress.update(pos + buf.limit(), size);
        }
        raf.setLength(size);
        out.force(true);
      }
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
      complete = true;
      return new Exported(size, data);
    } finally {
      if (!complete) {
        Files.deleteIfExists(tmp);
      }
    }
  }

  /** Writes the runs of pages of {@code buf} that are not all zeros at {@code pos} onward; returns bytes written. */
  private static long writeNonZeroPages(FileChannel out, ByteBuffer buf, long pos) throws IOException {
    int n = buf.limit();
    long written = 0;
    int runStart = -1;
    for (int page = 0, len = -1; len != 0; page += len) {
      len = Math.min(PAGE, n - page); // 0 past the end closes the last run
      boolean zero = len == 0 || buf.slice(page, len).mismatch(ZERO_PAGE.slice(0, len)) < 0;
      if (!zero && runStart < 0) {
        runStart = page;
      } else if (zero && runStart >= 0) {
        ByteBuffer run = buf.slice(runStart, page - runStart);
        written += run.remaining();
        while (run.hasRemaining()) {
          out.write(run, pos + runStart + run.position());
        }
        runStart = -1;
      }
    }
    return written;
  }
}
