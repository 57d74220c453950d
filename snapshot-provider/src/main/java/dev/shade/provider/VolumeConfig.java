package dev.shade.provider;

import java.nio.file.Path;

/**
 * How a volume is laid out; fixed when it is created.
 *
 * @param size volume size in bytes; the last block may be partial
 * @param blockSize copy-on-write granularity, a power of two in [4 KiB, 1 MiB]
 * @param diffMax the most bytes the diff area may hold; when a copy would exceed it the oldest
 *     snapshots are deleted
 * @param origin an existing file or block device to use as origin, or null for a file
 *     {@code origin.img} inside the volume directory
 * @param diffArea where the diff area file goes, or null for {@code diff.area} inside the
 *     volume directory
 */
public record VolumeConfig(long size, int blockSize, long diffMax, Path origin, Path diffArea) {
  public static final int MIN_BLOCK_SIZE = 4096;
  public static final int MAX_BLOCK_SIZE = 1 << 20;
  public static final int DEFAULT_BLOCK_SIZE = 64 * 1024;

  /** Whether {@code n} can be a volume's block size: a power of two from {@link #MIN_BLOCK_SIZE} to {@link #MAX_BLOCK_SIZE}. */
  public static boolean isBlockSize(long n) {
    return n >= MIN_BLOCK_SIZE && n <= MAX_BLOCK_SIZE && Long.bitCount(n) == 1;
  }

  public VolumeConfig {
    if (size <= 0) {
      throw new IllegalArgumentException("volume size must be positive: " + size);
    }
    if (!isBlockSize(blockSize)) {
      throw new IllegalArgumentException(
          "block size must be a power of two between 4K and 1M: " + blockSize);
    }
    if (diffMax < blockSize) {
      throw new IllegalArgumentException(
          "diff area limit must hold at least one block (" + blockSize + " bytes): " + diffMax);
    }
  }

  /** Default block size (64 KiB) and diff area limit (a tenth of the size, at least 16 blocks). */
  public static VolumeConfig of(long size) {
    return new VolumeConfig(size, DEFAULT_BLOCK_SIZE, defaultDiffMax(size, DEFAULT_BLOCK_SIZE), null, null);
  }

  /** A tenth of the volume, at least 16 blocks: what the diff area gets when not told. */
  public static long defaultDiffMax(long size, int blockSize) {
    return Math.max(size / 10, 16L * blockSize);
  }

  public VolumeConfig withBlockSize(int bs) {
    return new VolumeConfig(size, bs, diffMax, origin, diffArea);
  }

  public VolumeConfig withDiffMax(long max) {
    return new VolumeConfig(size, blockSize, max, origin, diffArea);
  }

  public VolumeConfig withOrigin(Path p) {
    return new VolumeConfig(size, blockSize, diffMax, p, diffArea);
  }

  public VolumeConfig withDiffArea(Path p) {
    return new VolumeConfig(size, blockSize, diffMax, origin, p);
  }
}
