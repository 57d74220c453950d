package dev.shade.bench;

/**
 * What one sequential pass measured.
 *
 * @param bytes bytes written (less than asked when the pass hit its time cap)
 * @param nanos wall time of the pass: of its own slices when it ran interleaved with others
 * @param writeNanos time inside the write calls
 * @param syncNanos time inside the fdatasync / flush calls
 * @param truncated true if the pass stopped at its time cap
 */
record PassResult(long bytes, long nanos, long writeNanos, long syncNanos, boolean truncated) {

  /** Throughput in MiB per second of wall time. */
  double mibPerSecond() {
    return (bytes / (double) BenchSettings.MIB) / (nanos / 1e9);
  }
}
