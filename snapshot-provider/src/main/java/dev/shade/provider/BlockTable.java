package dev.shade.provider;

import java.util.Arrays;

/**
 * A snapshot's exception table: block number → packed diff-area location, as an
 * open-addressing hash map of primitive longs.
 *
 * <p>Not thread-safe: the owning {@link Snapshot} guards it.
 */
final class BlockTable {
  /*
   * Linear probing over two parallel long arrays; an empty slot has key -1 (block numbers are
   * never negative). The table doubles at 5/8 load. Removal uses backward-shift deletion, so
   * there are no tombstones and lookups stay short after merges.
   */
  private static final long EMPTY = -1;

  /** Keys (block numbers), EMPTY where free. */
  private long[] keys;
  /** Values, parallel to keys. */
  private long[] values;
  /** Number of entries. */
  private int size;
  /** keys.length - 1; the capacity is a power of two. */
  private int mask;

  BlockTable() {
    this(16);
  }

  BlockTable(int expected) {
    int cap = Integer.highestOneBit(Math.max(16, (int) Math.min(1 << 30, expected * 2L)) - 1) << 1;
    keys = new long[cap];
    Arrays.fill(keys, EMPTY);
    values = new long[cap];
    mask = cap - 1;
  }

  int size() {
    return size;
  }

  /** The value for {@code block}, or -1 when absent. */
  long get(long block) {
    long[] k = keys; // local copy: the arrays are replaced on growth
    int m = mask;
    for (int i = hash(block) & m; ; i = (i + 1) & m) {
      long key = k[i];
      if (key == block) {
        return values[i];
      }
      if (key == EMPTY) {
        return -1;
      }
    }
  }

  boolean contains(long block) {
    return get(block) != -1;
  }

  /** Sets the value for {@code block}; returns the previous value or -1. */
  long put(long block, long value) {
    if (block < 0) {
      throw new IllegalArgumentException("block is negative: " + block);
    }
    for (int i = hash(block) & mask; ; i = (i + 1) & mask) {
      long key = keys[i];
      if (key == block) {
        long old = values[i];
        values[i] = value;
        return old;
      }
      if (key == EMPTY) {
        keys[i] = block;
        values[i] = value;
        if (++size * 8L > keys.length * 5L) {
          grow();
        }
        return -1;
      }
    }
  }

  /** Removes {@code block}; returns its value or -1. */
  long remove(long block) {
    for (int i = hash(block) & mask; ; i = (i + 1) & mask) {
      long key = keys[i];
      if (key == EMPTY) {
        return -1;
      }
      if (key == block) {
        long old = values[i];
        shiftBack(i);
        size--;
        return old;
      }
    }
  }

  private void shiftBack(int hole) {
    int i = hole;
    while (true) {
      i = (i + 1) & mask;
      long key = keys[i];
      if (key == EMPTY) {
        keys[hole] = EMPTY;
        return;
      }
      int home = hash(key) & mask;
      // move key into the hole if its home is not cyclically within (hole, i]
      boolean between = hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
      if (!between) {
        keys[hole] = key;
        values[hole] = values[i];
        hole = i;
      }
    }
  }

  void clear() {
    Arrays.fill(keys, EMPTY);
    size = 0;
  }

  /** Calls {@code action} for every entry, in no particular order. */
  void forEach(Entry action) {
    long[] k = keys;
    long[] v = values;
    for (int i = 0; i < k.length; i++) {
      if (k[i] != EMPTY) {
        action.accept(k[i], v[i]);
      }
    }
  }

  /** The block numbers, sorted ascending. */
  long[] sortedBlocks() {
    long[] out = new long[size];
    int n = 0;
    for (long key : keys) {
      if (key != EMPTY) {
        out[n++] = key;
      }
    }
    Arrays.sort(out);
    return out;
  }

  private void grow() {
    long[] oldKeys = keys;
    long[] oldValues = values;
    keys = new long[oldKeys.length * 2];
    Arrays.fill(keys, EMPTY);
    values = new long[oldKeys.length * 2];
    mask = keys.length - 1;
    size = 0;
    for (int i = 0; i < oldKeys.length; i++) {
      if (oldKeys[i] != EMPTY) {
        put(oldKeys[i], oldValues[i]);
      }
    }
  }

  private static int hash(long block) {
    long h = block * 0x9E3779B97F4A7C15L; // Fibonacci hashing spreads sequential block numbers
    return (int) (h ^ (h >>> 32));
  }

  /** Receives one entry. */
  @FunctionalInterface
  interface Entry {
    void accept(long block, long value);
  }
}
