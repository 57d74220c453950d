package dev.shade.provider;

/**
 * A run of bytes with one allocation state.
 *
 * @param zero true when the run is a hole: it reads back as zeros and uses no space
 */
public record Extent(long offset, long length, boolean zero) {
  public long end() {
    return offset + length;
  }
}
