package dev.shade.offhost.backup;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;

/**
 * An input stream that tells a {@link BackupProgress} how many bytes were read of a known total
 * (a files archive's pieces, read by a files restore).
 *
 * <p>Not thread-safe: one reading thread.
 */
final class ProgressInputStream extends FilterInputStream {
  /** Told after each read. */
  private final BackupProgress progress;
  /** The bytes expected in all; 0 when unknown. */
  private final long total;
  /** Bytes read so far. */
  private long done;

  ProgressInputStream(InputStream in, long total, BackupProgress progress) {
    this(in, 0, total, progress);
  }

  /** A stream whose first byte is byte {@code before} of the total (a later piece of an archive). */
  ProgressInputStream(InputStream in, long before, long total, BackupProgress progress) {
    super(in);
    this.done = before;
    this.total = total;
    this.progress = progress;
  }

  @Override
  public int read() throws IOException {
    int b = super.read();
    if (b >= 0) {
      advance(1);
    }
    return b;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    int n = super.read(b, off, len);
    if (n > 0) {
      advance(n);
    }
    return n;
  }

  @Override
  public long skip(long n) throws IOException {
    long skipped = super.skip(n);
    if (skipped > 0) {
      advance(skipped);
    }
    return skipped;
  }

  private void advance(long n) {
    done += n;
    progress.update(done, Math.max(total, done));
  }
}
