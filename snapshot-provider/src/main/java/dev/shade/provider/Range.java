package dev.shade.provider;

/** A byte range {@code [offset, offset + length)} of a volume. */
public record Range(long offset, long length) {
  public Range {
    if (offset < 0 || length < 0) {
      throw new IllegalArgumentException("offset and length must be non-negative: " + offset + "+" + length);
    }
  }

  public long end() {
    return offset + length;
  }
}
