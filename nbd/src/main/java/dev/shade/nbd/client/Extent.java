package dev.shade.nbd.client;

/**
 * One block status descriptor: {@code length} bytes from {@code offset} with the context's
 * status {@code flags} (for {@code base:allocation}: {@code Nbd.STATE_HOLE}, {@code Nbd.STATE_ZERO};
 * for {@code qemu:allocation-depth}: the depth, 0 for unallocated).
 */
public record Extent(long offset, long length, int flags) {
  public Extent {
    if (offset < 0 || length < 0) {
      throw new IllegalArgumentException("extent [" + offset + ", +" + length + ") is negative");
    }
  }

  /** The first byte after the extent. */
  public long end() {
    return offset + length;
  }

  /** True when the {@code base:allocation} ZERO flag is set: the extent reads as zeroes. */
  public boolean zero() {
    return (flags & dev.shade.nbd.protocol.Nbd.STATE_ZERO) != 0;
  }

  /** True when the {@code base:allocation} HOLE flag is set: no storage is allocated. */
  public boolean hole() {
    return (flags & dev.shade.nbd.protocol.Nbd.STATE_HOLE) != 0;
  }
}
