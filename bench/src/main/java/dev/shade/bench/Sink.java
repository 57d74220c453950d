package dev.shade.bench;

import java.io.IOException;
import java.nio.ByteBuffer;

/** Where a sequential pass writes: a raw file or a shade volume. */
interface Sink {
  /** Writes all of {@code src} at {@code offset}. */
  void write(long offset, ByteBuffer src) throws IOException;

  /** Makes the writes so far durable: {@code fdatasync} for a file, {@code flush} for a volume. */
  void sync() throws IOException;
}
