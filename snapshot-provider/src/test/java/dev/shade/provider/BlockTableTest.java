package dev.shade.provider;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

class BlockTableTest {
  @Test
  void randomPutsAndRemoves_matchTreeMap() {
    Random rnd = new Random(7);
    BlockTable t = new BlockTable();
    TreeMap<Long, Long> ref = new TreeMap<>();
    for (int i = 0; i < 200_000; i++) {
      long block = rnd.nextInt(5000) * (rnd.nextBoolean() ? 1L : 1L << 33);
      if (rnd.nextInt(3) == 0) {
        Long old = ref.remove(block);
        assertEquals(old == null ? -1 : old, t.remove(block));
      } else {
        long v = rnd.nextLong() & Long.MAX_VALUE;
        Long old = ref.put(block, v);
        assertEquals(old == null ? -1 : old, t.put(block, v));
      }
      if (i % 10_000 == 0) {
        for (long k = 0; k < 5000; k++) {
          Long want = ref.get(k);
          assertEquals(want == null ? -1 : want, t.get(k), "block " + k);
        }
      }
    }
    assertEquals(ref.size(), t.size());
    assertArrayEquals(ref.keySet().stream().mapToLong(Long::longValue).toArray(), t.sortedBlocks());
  }

  @Test
  void clear_emptiesTheTable() {
    BlockTable t = new BlockTable(4);
    for (long b = 0; b < 100; b++) {
      t.put(b, b + 1);
    }
    t.clear();
    assertEquals(0, t.size());
    assertEquals(-1, t.get(5));
  }
}
