package dev.shade.provider;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A {@link BlockSource} that can also be written, like a disk.
 *
 * <p>Every implementation must: accept writes at any byte offset and length inside
 * {@link #size()}; make every write that returned before a {@link #flush()} began durable
 * when that flush returns; make trimmed and zeroed ranges read back as zeros; be safe for
 * concurrent readers and writers (overlapping concurrent writes land in some order, as on a
 * disk).
 */
public interface BlockDevice extends BlockSource {
  /** Writes all of {@code src} at {@code offset} and advances {@code src}. */
  void write(long offset, ByteBuffer src) throws IOException;

  /** Makes every write that has returned durable (NBD FLUSH, fsync). */
  void flush() throws IOException;

  /** Discards the range; it reads back as zeros and may give its space back. */
  void trim(long offset, long length) throws IOException;

  /** Writes zeros to the range (NBD WRITE_ZEROES). */
  void writeZeroes(long offset, long length) throws IOException;
}
