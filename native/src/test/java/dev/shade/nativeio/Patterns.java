package dev.shade.nativeio;

import java.nio.ByteBuffer;
import java.util.SplittableRandom;

/** Test data and read-back helpers shared by the tests of this package. */
final class Patterns {
  private Patterns() {}

  /** {@code length} reproducible bytes for {@code seed}, none of them zero (so holes show). */
  static byte[] nonZero(long seed, int length) {
    SplittableRandom rnd = new SplittableRandom(seed);
    byte[] b = new byte[length];
    for (int i = 0; i < length; i++) {
      b[i] = (byte) (1 + rnd.nextInt(255));
    }
    return b;
  }

  /** Reads {@code length} bytes at {@code pos} through the mapping into a heap or direct buffer. */
  static byte[] readMapped(MappedFile m, long pos, int length, boolean direct)
      throws java.io.IOException {
    ByteBuffer b = direct ? ByteBuffer.allocateDirect(length) : ByteBuffer.allocate(length);
    m.read(pos, b);
    return drain(b, length);
  }

  /** Reads {@code length} bytes at {@code pos} with {@code pread} into a heap or direct buffer. */
  static byte[] readFile(FileHandle f, long pos, int length, boolean direct)
      throws java.io.IOException {
    ByteBuffer b = direct ? ByteBuffer.allocateDirect(length) : ByteBuffer.allocate(length);
    f.readFully(pos, b);
    return drain(b, length);
  }

  private static byte[] drain(ByteBuffer b, int length) {
    if (b.hasRemaining()) {
      throw new AssertionError("buffer not filled: " + b.remaining() + " of " + length + " left");
    }
    b.flip();
    byte[] out = new byte[length];
    b.get(out);
    return out;
  }

  /** The index of the first non-zero byte, or -1 if all are zero. */
  static int firstNonZero(byte[] b) {
    for (int i = 0; i < b.length; i++) {
      if (b[i] != 0) {
        return i;
      }
    }
    return -1;
  }
}
