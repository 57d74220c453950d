package dev.shade.bench;

import java.nio.file.Path;

/**
 * The sizes, counts and time caps of one run of the copy-on-write benchmark.
 *
 * @param baseDir where the temporary working directory goes; must be a real disk, not tmpfs
 * @param regionBytes bytes each sequential pass writes (the raw file and the volume are this big)
 * @param rounds measured rounds (after one cold round), each running raw and shade passes
 *     interleaved
 * @param manySnapshots the snapshot count of the "many snapshots" first-write pass
 * @param throughputCapNanos time budget of all throughput rounds; each group of interleaved
 *     passes gets its weighted share of what is left and stops early (and says so) at its end
 * @param createCount snapshot creations recorded in the latency histogram
 * @param createWarmup snapshot creations done first and not recorded
 * @param createKeep the most snapshots kept during the creation test; older ones are deleted
 * @param createPauseMillis pause between two creations, so the writer copies blocks in between
 * @param createCapNanos the creation test stops early (and says so) once it has run this long
 * @param createVolumeBytes size of the sparse volume of the creation test
 * @param createDiffMax diff area limit of that volume
 * @param writerFlushEvery the background writer flushes after this many 64 KiB writes
 */
record BenchSettings(
    Path baseDir,
    long regionBytes,
    int rounds,
    int manySnapshots,
    long throughputCapNanos,
    int createCount,
    int createWarmup,
    int createKeep,
    int createPauseMillis,
    long createCapNanos,
    long createVolumeBytes,
    long createDiffMax,
    int writerFlushEvery) {

  static final long MIB = 1L << 20;
  static final long GIB = 1L << 30;
  static final long SECOND = 1_000_000_000L;

  BenchSettings {
    if (regionBytes < MIB || regionBytes % MIB != 0) {
      throw new IllegalArgumentException("region must be a positive whole number of MiB: " + regionBytes);
    }
    if (rounds < 1) {
      throw new IllegalArgumentException("rounds must be at least 1: " + rounds);
    }
    if (createKeep < 1) {
      throw new IllegalArgumentException("snapshots to keep must be at least 1: " + createKeep);
    }
  }

  /**
   * The defaults, sized for a run of about 90 s on two cores; {@code shade.bench.dir},
   * {@code shade.bench.mib}, {@code shade.bench.rounds} and {@code shade.bench.creates}
   * system properties override them.
   */
  static BenchSettings fromSystemProperties() {
    return new BenchSettings(
        Path.of(System.getProperty("shade.bench.dir", "/var/tmp")),
        Long.getLong("shade.bench.mib", 256) * MIB,
        Integer.getInteger("shade.bench.rounds", 9),
        64,
        90 * SECOND,
        Integer.getInteger("shade.bench.creates", 200),
        10,
        32,
        5,
        30 * SECOND,
        64 * GIB,
        4 * GIB,
        8);
  }
}
