package dev.shade.offhost.backup;

/** {@code length} bytes from {@code offset} of an image. */
public record Range(long offset, long length) {
  public Range {
    if (offset < 0 || length < 0) {
      throw new IllegalArgumentException("range [" + offset + ", +" + length + ") is negative");
    }
  }

  /** The first byte after the range. */
  public long end() {
    return offset + length;
  }
}
