package dev.shade.offhost.tape;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;

/**
 * Writes a byte stream as one tape file: full records of the drive's block size, a last record
 * as long as what remains, then a filemark on {@link #close()}. The drive stays open.
 *
 * <p>A record the drive refuses ({@link EarlyWarningException}, {@link EndOfMediumException})
 * stays buffered and the exception reaches the caller; the next write or close tries it again,
 * then in the trailer allowance. {@link #flush()} writes nothing: a partial record would break
 * the stream into records shorter than the block size.
 *
 * <p>Not thread-safe.
 */
public final class TapeOutputStream extends OutputStream {
  /** Where the records go. */
  private final TapeDrive drive;
  /** The record being filled; written when full. */
  private final ByteBuffer record;
  /** Bytes accepted so far. */
  private long bytes;
  /** Records written so far. */
  private long records;
  /** Set by close. */
  private boolean closed;

  public TapeOutputStream(TapeDrive drive) {
    this.drive = drive;
    this.record = ByteBuffer.allocate(drive.blockSize());
  }

  @Override
  public void write(int b) throws IOException {
    write(new byte[] {(byte) b}, 0, 1);
  }

  @Override
  public void write(byte[] b, int off, int len) throws IOException {
    if (closed) {
      throw new TapeException("tape file stream is closed: " + drive);
    }
    while (len > 0) {
      if (!record.hasRemaining()) {
        emit();
      }
      if (record.position() == 0 && len >= record.capacity()) {
        // a whole record with nothing buffered (tar writes in blocks of the record size): to the
        // drive as it is, without a copy into the record buffer
        int n = record.capacity();
        drive.write(ByteBuffer.wrap(b, off, n));
        records++;
        off += n;
        len -= n;
        bytes += n;
        continue;
      }
      int n = Math.min(len, record.remaining());
      record.put(b, off, n);
      off += n;
      len -= n;
      bytes += n;
    }
  }

  /** Writes the buffered record; it stays buffered if the drive refuses it. */
  private void emit() throws IOException {
    record.flip();
    try {
      drive.write(record);
      records++;
      record.clear();
    } catch (IOException | RuntimeException e) {
      record.position(record.limit()).limit(record.capacity());
      throw e;
    }
  }

  @Override
  public void flush() {
    // records go out when full; see the class comment
  }

  /** Bytes written to the stream so far. */
  public long bytes() {
    return bytes;
  }

  /** Records written to the drive so far. */
  public long records() {
    return records;
  }

  /** Writes the last record and one filemark. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    if (record.position() > 0) {
      emit();
    }
    drive.writeFilemarks(1);
    closed = true;
  }
}
