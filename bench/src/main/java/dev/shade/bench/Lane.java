package dev.shade.bench;

import java.io.IOException;
import java.nio.ByteBuffer;

/** One target of a pass: a sink written sequentially from offset 0, with its own timings. */
final class Lane {
  /** Where the writes go. */
  private final Sink sink;
  /** Bytes this lane writes in all. */
  private final long bytes;
  /** Stamped into the data so no two passes write the same bytes. */
  private final long pass;
  /** The next offset to write; equals {@link #bytes} when done. */
  private long position;
  /** Wall time spent on this lane's slices, stamping included. */
  private long nanos;
  /** Time inside {@link Sink#write} calls. */
  private long writeNanos;
  /** Time inside {@link Sink#sync} calls. */
  private long syncNanos;

  Lane(Sink sink, long bytes, long pass) {
    if (bytes <= 0 || bytes % SequentialPass.WRITE_SIZE != 0) {
      throw new IllegalArgumentException("pass size must be a positive multiple of 1 MiB: " + bytes);
    }
    this.sink = sink;
    this.bytes = bytes;
    this.pass = pass;
  }

  boolean done() {
    return position >= bytes;
  }

  /** Writes up to {@code slice} more bytes, one {@link SequentialPass#WRITE_SIZE} write and one sync at a time. */
  void step(ByteBuffer buf, long slice) throws IOException {
    long end = Math.min(bytes, position + slice);
    long start = System.nanoTime();
    while (position < end) {
      SequentialPass.stamp(buf, pass, position);
      ByteBuffer src = buf.duplicate().clear();
      long t0 = System.nanoTime();
      sink.write(position, src);
      long t1 = System.nanoTime();
      sink.sync();
      long t2 = System.nanoTime();
      writeNanos += t1 - t0;
      syncNanos += t2 - t1;
      position += SequentialPass.WRITE_SIZE;
    }
    nanos += System.nanoTime() - start;
  }

  /** What the lane measured; {@code truncated} if it stopped before writing all its bytes. */
  PassResult result() {
    return new PassResult(position, nanos, writeNanos, syncNanos, position < bytes);
  }
}
