package dev.shade.offhost.tape;

/**
 * The shape of a virtual tape library, fixed when it is created.
 *
 * @param slots cartridge slots, numbered from 1; each holds one cartridge
 * @param drives drives, numbered from 0
 * @param capacity bytes of records each cartridge holds
 * @param earlyWarningZone the last bytes of each cartridge's capacity where the early warning
 *     is given; at least two blocks, so a trailer of at least one block remains
 * @param blockSize the drives' largest record
 */
public record LibraryConfig(int slots, int drives, long capacity, long earlyWarningZone, int blockSize) {
  /** Most slots a library may have. */
  public static final int MAX_SLOTS = 9999;
  /** Most drives a library may have. */
  public static final int MAX_DRIVES = 16;

  public LibraryConfig {
    if (slots < 1 || slots > MAX_SLOTS) {
      throw new IllegalArgumentException("slots must be 1 to " + MAX_SLOTS + ": " + slots);
    }
    if (drives < 1 || drives > MAX_DRIVES) {
      throw new IllegalArgumentException("drives must be 1 to " + MAX_DRIVES + ": " + drives);
    }
    if (blockSize < 512 || blockSize > 16 << 20) {
      throw new IllegalArgumentException("block size must be 512 bytes to 16 MiB: " + blockSize);
    }
    if (earlyWarningZone < 2L * blockSize) {
      throw new IllegalArgumentException("early-warning zone must be at least two blocks (" + 2L * blockSize
          + " bytes): " + earlyWarningZone);
    }
    if (capacity < 2 * earlyWarningZone) {
      throw new IllegalArgumentException("capacity must be at least twice the early-warning zone of "
          + earlyWarningZone + " bytes (at least " + 4L * blockSize + " bytes with a block size of " + blockSize
          + "): " + capacity);
    }
  }

  /**
   * {@code slots} cartridges of {@code capacity} bytes, one drive, 256 KiB blocks and the
   * default early-warning zone.
   */
  public static LibraryConfig of(int slots, long capacity) {
    return of(slots, 1, capacity, TapeDrive.DEFAULT_BLOCK_SIZE);
  }

  /** The default early-warning zone: an eighth of the capacity, at most 64 MiB, at least two blocks. */
  public static LibraryConfig of(int slots, int drives, long capacity, int blockSize) {
    return new LibraryConfig(slots, drives, capacity, defaultEarlyWarningZone(capacity, blockSize), blockSize);
  }

  /** An eighth of the capacity, at most 64 MiB, at least two blocks. */
  public static long defaultEarlyWarningZone(long capacity, int blockSize) {
    return Math.max(2L * blockSize, Math.min(capacity / 8, 64L << 20));
  }

  /** Bytes of records accepted after the early warning: the zone less one block. */
  public long trailerBytes() {
    return earlyWarningZone - blockSize;
  }
}
