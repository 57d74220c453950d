package dev.shade.provider;

/**
 * The fixed shape of a volume: its size and block size, and the arithmetic on block numbers.
 *
 * <p>Immutable, so thread-safe.
 */
final class Geometry {
  /** Bytes of the volume. */
  final long size;
  /** Bytes of a block, a power of two. */
  final int blockSize;
  /** log2 of {@link #blockSize}. */
  final int blockShift;
  /** What the volume calls itself in messages, e.g. {@code Volume(/srv/vol)}. */
  private final String resource;

  Geometry(long size, int blockSize, String resource) {
    this.size = size;
    this.blockSize = blockSize;
    this.blockShift = Integer.numberOfTrailingZeros(blockSize);
    this.resource = resource;
  }

  /** Bytes of block {@code block}: the block size, or less for the volume's short last block. */
  int blockLength(long block) {
    return (int) Math.min(blockSize, size - (block << blockShift));
  }

  /** Throws unless [offset, offset+length) lies inside the volume. */
  void checkRange(long offset, long length) {
    if (offset < 0 || length < 0 || offset > size - length) {
      throw new IllegalArgumentException("range out of bounds (offset=" + offset + " length=" + length
          + " size=" + size + "): " + resource);
    }
  }

  @Override
  public String toString() {
    return resource;
  }
}
