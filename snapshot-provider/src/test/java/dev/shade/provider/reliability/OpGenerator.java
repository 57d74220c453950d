package dev.shade.provider.reliability;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Generates reproducible random operation scripts for a volume of a given size and block size.
 *
 * <p>Writes come in four shapes so every code path of a copy-on-write block layer is hit:
 * unaligned offset and length (up to two blocks), a run that crosses a block boundary by a
 * few bytes, whole aligned blocks, and tiny writes of a few bytes. Trims and write-zeroes are
 * half aligned, half not. Snapshot creates are capped at {@code maxLive} live snapshots;
 * deletes pick a random live one, oldest or not.
 */
final class OpGenerator {
  private OpGenerator() {}

  /**
   * A script of {@code count} operations.
   *
   * @param seed the whole script follows from it
   * @param namePrefix snapshot names are {@code namePrefix + opIndex}, unique per prefix
   * @param existing snapshots the volume already has, oldest first; deletes may pick them
   */
  static List<Op> generate(
      long seed, String namePrefix, long size, int blockSize, List<String> existing, int count, int maxLive) {
    SplittableRandom rnd = new SplittableRandom(seed);
    List<String> live = new ArrayList<>(existing);
    List<Op> ops = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      int p = rnd.nextInt(100);
      Op op;
      if (p < 55) {
        op = randomWrite(rnd, size, blockSize);
      } else if (p < 64) {
        op = Op.flush();
      } else if (p < 73 && live.size() < maxLive) {
        String name = namePrefix + i;
        live.add(name);
        op = Op.create(name);
      } else if (p < 80 && !live.isEmpty()) {
        op = Op.delete(live.remove(rnd.nextInt(live.size())));
      } else if (p < 91) {
        long[] r = randomRange(rnd, size, blockSize);
        op = Op.trim(r[0], r[1]);
      } else if (p < 96) {
        long[] r = randomRange(rnd, size, blockSize);
        op = Op.zero(r[0], r[1]);
      } else {
        op = randomWrite(rnd, size, blockSize);
      }
      ops.add(op);
    }
    return ops;
  }

  /** One write of one of the four shapes, inside {@code [0, size)}. */
  static Op randomWrite(SplittableRandom rnd, long size, int blockSize) {
    long blocks = (size + blockSize - 1) / blockSize;
    int shape = rnd.nextInt(100);
    long offset;
    long length;
    if (shape < 35) {
      length = 1 + rnd.nextInt(2 * blockSize);
      offset = rnd.nextLong(Math.max(1, size - length + 1));
    } else if (shape < 60 && blocks > 1) {
      // ends r bytes past a block boundary's left side and runs into the next block
      long boundary = (1 + rnd.nextLong(blocks - 1)) * blockSize;
      int r = 1 + rnd.nextInt(Math.min(blockSize, 4096));
      offset = boundary - r;
      length = r + 1 + rnd.nextInt(blockSize);
    } else if (shape < 85) {
      offset = rnd.nextLong(blocks) * blockSize;
      length = (1 + rnd.nextInt(4)) * (long) blockSize;
    } else {
      length = 1 + rnd.nextInt(16);
      offset = rnd.nextLong(Math.max(1, size - length + 1));
    }
    return Op.write(offset, clamp(offset, length, size), rnd.nextLong());
  }

  /** {@code {offset, length}} inside {@code [0, size)}: half whole blocks, half unaligned. */
  static long[] randomRange(SplittableRandom rnd, long size, int blockSize) {
    long blocks = (size + blockSize - 1) / blockSize;
    long offset;
    long length;
    if (rnd.nextBoolean()) {
      offset = rnd.nextLong(blocks) * blockSize;
      length = (1 + rnd.nextInt(8)) * (long) blockSize;
    } else {
      length = 1 + rnd.nextInt(3 * blockSize);
      offset = rnd.nextLong(Math.max(1, size - length + 1));
    }
    return new long[] {offset, clamp(offset, length, size)};
  }

  private static long clamp(long offset, long length, long size) {
    return Math.max(1, Math.min(length, size - offset));
  }
}
