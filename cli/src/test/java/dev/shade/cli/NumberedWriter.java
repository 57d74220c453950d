package dev.shade.cli;

import dev.shade.nbd.client.NbdClient;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * Writes numbered 4 KiB blocks to an NBD export, one request at a time, and records when each
 * was issued and acknowledged, so that a snapshot (or what survives a crash) can be checked
 * against exactly what was acknowledged before and issued after a given instant.
 *
 * <p>Write {@code seq} (1, 2, 3, ...) goes to slot {@code seq % slots} at byte {@code slot * 4096}
 * and fills the block with {@code seq} and the slot, repeated, so a torn or misplaced block is
 * recognised. One writer thread; the recorded times may be read once it has stopped.
 */
final class NumberedWriter implements Runnable {
  static final int BLOCK = 4096;

  private final NbdClient client;
  private final int slots;
  /** Flush after every this many writes (0: never), recording the last write each flush covers. */
  private final int flushEvery;
  /** System.nanoTime() before write seq was sent, by seq; index 0 unused. */
  final long[] issued;
  /** System.nanoTime() when write seq was acknowledged, by seq. */
  final long[] acked;
  /** The last seq covered by a completed flush; written by the writer thread. */
  volatile long flushedUpTo;
  /** The last seq acknowledged; written by the writer thread. */
  volatile long lastAcked;
  /** The last seq sent (acknowledged or not); written by the writer thread. */
  volatile long lastIssued;
  /** Set to stop the writer. */
  volatile boolean stop;
  /** Why the writer stopped early, if it did. */
  volatile Throwable failure;

  NumberedWriter(NbdClient client, int slots, int capacity, int flushEvery) {
    this.client = client;
    this.slots = slots;
    this.flushEvery = flushEvery;
    this.issued = new long[capacity + 1];
    this.acked = new long[capacity + 1];
  }

  @Override
  public void run() {
    ByteBuffer b = ByteBuffer.allocateDirect(BLOCK);
    try {
      for (long seq = 1; seq < issued.length && !stop; seq++) {
        int slot = (int) (seq % slots);
        fill(b, seq, slot);
        issued[(int) seq] = System.nanoTime();
        lastIssued = seq;
        client.write((long) slot * BLOCK, b, false);
        acked[(int) seq] = System.nanoTime();
        lastAcked = seq;
        if (flushEvery > 0 && seq % flushEvery == 0) {
          client.flush();
          flushedUpTo = seq;
        }
      }
    } catch (IOException | RuntimeException e) {
      failure = e;
    }
  }

  static void fill(ByteBuffer b, long seq, int slot) {
    b.clear();
    while (b.hasRemaining()) {
      b.putLong(seq).putLong(slot);
    }
    b.flip();
  }

  /** The seq held in {@code block} (0 for a block never written), checking it is whole and in its slot. */
  static long seqOf(ByteBuffer block, int slot) {
    long seq = block.getLong(0);
    long s = block.getLong(8);
    if (seq == 0 && s == 0) {
      for (int i = 0; i < BLOCK; i += 8) {
        if (block.getLong(i) != 0) {
          throw new AssertionError("slot " + slot + " is neither zeros nor one whole write");
        }
      }
      return 0;
    }
    if (s != slot) {
      throw new AssertionError("slot " + slot + " holds a block written for slot " + s + " (seq " + seq + ")");
    }
    for (int i = 0; i < BLOCK; i += 16) {
      if (block.getLong(i) != seq || block.getLong(i + 8) != slot) {
        throw new AssertionError("slot " + slot + " is torn: seq " + seq + " at 0 but " + block.getLong(i) + " at " + i);
      }
    }
    return seq;
  }

  /** The last seq whose acknowledgement came before {@code nanos}, or 0. */
  long lastAckedBefore(long nanos) {
    return lastBefore(acked, (int) Math.min(lastAcked, acked.length - 1), nanos);
  }

  /** The last seq issued before {@code nanos}, or 0. */
  long lastIssuedBefore(long nanos) {
    return lastBefore(issued, (int) Math.min(lastIssued, issued.length - 1), nanos);
  }

  /** The last seq in 1..n whose time in {@code times} is below {@code nanos}, or 0. */
  private static long lastBefore(long[] times, int n, long nanos) {
    // times are increasing in seq: the writer is sequential
    int i = Arrays.binarySearch(times, 1, n + 1, nanos);
    int insertion = i >= 0 ? i : -i - 1;
    return insertion - 1; // the last index whose time is below nanos (index 0 means none)
  }

  /** The last seq at {@code slot} that is at most {@code seq}, or 0. */
  long lastAtSlotUpTo(int slot, long seq) {
    if (seq < 1) {
      return 0;
    }
    long k = seq - Math.floorMod(seq - slot, slots);
    return k >= 1 ? k : 0;
  }

  /**
   * Checks that {@code image} (the writer's slots, read back) holds, in every slot, the last
   * write at that slot up to {@code mustHave} or a later one, and nothing issued after
   * {@code mayHave}; {@code what} names the image in failures.
   */
  void check(ByteBuffer image, long mustHave, long mayHave, String what) {
    for (int slot = 0; slot < slots; slot++) {
      ByteBuffer block = image.slice(slot * BLOCK, BLOCK);
      long seq = seqOf(block, slot);
      if (seq != 0 && seq % slots != slot) {
        throw new AssertionError(what + ": slot " + slot + " holds write " + seq + ", which belongs to slot " + seq % slots);
      }
      long floor = lastAtSlotUpTo(slot, mustHave);
      if (seq < floor) {
        throw new AssertionError(what + ": slot " + slot + " holds write " + seq + " but write " + floor
            + " was acknowledged before (" + (lastAtSlotUpTo(slot, mayHave)) + " is the newest it may hold)");
      }
      if (seq > mayHave) {
        throw new AssertionError(what + ": slot " + slot + " holds write " + seq + ", issued after the instant (the last "
            + "write issued before it is " + mayHave + ")");
      }
    }
  }
}
