package dev.shade.offhost.tape;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;

/**
 * Reads one tape file, from the drive's position to the next filemark (which it consumes, so the
 * drive is left at the start of the next file) or the end of data. The drive stays open.
 *
 * <p>Not thread-safe.
 */
public final class TapeInputStream extends InputStream {
  /** Where the records come from. */
  private final TapeDrive drive;
  /** The current record, drained by reads. */
  private final ByteBuffer record;
  /** True once the filemark or the end of data was reached. */
  private boolean ended;
  /** True if the file ended at the end of data rather than at a filemark. */
  private boolean endOfData;
  /** Records read. */
  private long records;

  public TapeInputStream(TapeDrive drive) {
    this.drive = drive;
    this.record = ByteBuffer.allocate(drive.blockSize());
    record.limit(0);
  }

  @Override
  public int read() throws IOException {
    byte[] one = new byte[1];
    return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    if (len == 0) {
      return 0;
    }
    if (!record.hasRemaining() && !fill()) {
      return -1;
    }
    int n = Math.min(len, record.remaining());
    record.get(b, off, n);
    return n;
  }

  private boolean fill() throws IOException {
    while (!ended) {
      record.clear();
      int n = drive.read(record);
      if (n > 0) {
        records++;
        record.flip();
        return true;
      }
      ended = true;
      endOfData = n < 0;
      record.limit(0);
    }
    return false;
  }

  /** True if the file ended at the end of data (no filemark after it). */
  public boolean endedAtEndOfData() {
    return endOfData;
  }

  /** Records read so far. */
  public long records() {
    return records;
  }

  /** Reads to the end of the file, so the drive is left at the start of the next one. */
  public void skipToEnd() throws IOException {
    record.limit(0);
    while (fill()) {
      record.limit(0);
    }
  }

  @Override
  public void close() {
    // the drive stays where it is
  }
}
