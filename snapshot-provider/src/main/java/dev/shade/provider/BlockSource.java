package dev.shade.provider;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A readable run of bytes of fixed size: a volume's origin, or one of its snapshots.
 *
 * <p>Every implementation must: fill all of {@code dst.remaining()} bytes or throw; reject a
 * range that is negative or extends past {@link #size()} with an {@link IllegalArgumentException}
 * naming the offset, the length and this source; be safe for concurrent readers; throw
 * {@link dev.shade.nativeio.AlreadyClosedException} once closed. There is deliberately no
 * "available" or streaming position: callers always say where they read.
 */
public interface BlockSource extends Closeable {
  /** Size in bytes; never changes while the source is open. */
  long size();

  /** Reads {@code dst.remaining()} bytes starting at {@code offset} and advances {@code dst}. */
  void read(long offset, ByteBuffer dst) throws IOException;
}
