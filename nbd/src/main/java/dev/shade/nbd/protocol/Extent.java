package dev.shade.nbd.protocol;

/**
 * A run of bytes {@code [offset, offset + length)} with one status in one meta context: the
 * {@code flags} of an NBD block status descriptor ({@link Nbd#STATE_HOLE} and
 * {@link Nbd#STATE_ZERO} in {@code base:allocation}, {@link Nbd#STATE_CHANGED} in
 * {@code shade:changed:}, whatever another context defines).
 */
public record Extent(long offset, long length, int flags) {
  public Extent {
    if (offset < 0 || length <= 0 || offset + length < 0) {
      throw new IllegalArgumentException("bad extent: offset " + offset + " length " + length);
    }
  }

  /** The first byte after the extent. */
  public long end() {
    return offset + length;
  }
}
