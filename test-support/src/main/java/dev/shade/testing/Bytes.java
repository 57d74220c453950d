package dev.shade.testing;

import java.util.Arrays;
import java.util.Random;

/** Test data: reproducible pseudo-random and constant byte arrays. */
public final class Bytes {
  private Bytes() {}

  /** {@code length} pseudo-random bytes, the same for the same {@code seed}. */
  public static byte[] random(long seed, int length) {
    byte[] b = new byte[length];
    new Random(seed).nextBytes(b);
    return b;
  }

  /** {@code length} copies of {@code value}. */
  public static byte[] filled(int value, int length) {
    byte[] b = new byte[length];
    Arrays.fill(b, (byte) value);
    return b;
  }
}
