package dev.shade.bench;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.SplittableRandom;

/** Sequential passes of 1 MiB writes, each followed by a sync, over one or several interleaved lanes. */
final class SequentialPass {
  /* Lanes that are compared run interleaved: a slice of a few MiB of one lane, then of the
   * next, the starting lane rotating from slice to slice, until every lane has written all its
   * bytes. A virtual disk's throughput drifts by a factor of two or more within seconds (the
   * host's cache fills and drains, other work shares it), so whole passes run one after the
   * other would compare different conditions; slices of a fraction of a second see the same.
   * Each write is followed by its own sync, so no lane leaves dirty data to the next.
   *
   * The buffer is stamped before every write (pass number and offset at the start of every
   * 4 KiB) so no two passes write the same bytes and no layer below can skip a write as a
   * no-op; the rest of the buffer is random, never zero. */

  /** Size of one write. */
  static final int WRITE_SIZE = 1 << 20;

  /** Bytes one lane writes before the next lane's turn. */
  static final long SLICE = 4L * WRITE_SIZE;

  private SequentialPass() {}

  /** A direct buffer of {@link #WRITE_SIZE} random, non-zero bytes. */
  static ByteBuffer newBuffer(long seed) {
    return randomBuffer(WRITE_SIZE, seed);
  }

  static ByteBuffer randomBuffer(int size, long seed) {
    ByteBuffer buf = ByteBuffer.allocateDirect(size);
    SplittableRandom random = new SplittableRandom(seed);
    for (int i = 0; i < size; i += 8) {
      buf.putLong(i, random.nextLong() | 0x0101010101010101L);
    }
    return buf;
  }

  /** Writes the pass number and the file offset at the start of each 4 KiB of {@code buf}. */
  static void stamp(ByteBuffer buf, long pass, long offset) {
    for (int i = 0; i + 16 <= buf.capacity(); i += 4096) {
      buf.putLong(i, pass);
      buf.putLong(i + 8, offset + i);
    }
  }

  /**
   * Runs the lanes interleaved, {@link #SLICE} at a time, until all are done or
   * {@code capNanos} have passed (the lanes then report themselves truncated).
   */
  static void interleave(List<Lane> lanes, ByteBuffer buf, long capNanos) throws IOException {
    long start = System.nanoTime();
    for (int turn = 0; ; turn++) {
      boolean any = false;
      for (int i = 0; i < lanes.size(); i++) {
        Lane lane = lanes.get((turn + i) % lanes.size());
        if (!lane.done()) {
          lane.step(buf, SLICE);
          any = true;
        }
      }
      if (!any || System.nanoTime() - start > capNanos) {
        return;
      }
    }
  }

  /** One lane alone, without a time cap. */
  static PassResult run(Sink sink, long bytes, long pass, ByteBuffer buf) throws IOException {
    Lane lane = new Lane(sink, bytes, pass);
    interleave(List.of(lane), buf, Long.MAX_VALUE);
    return lane.result();
  }
}
