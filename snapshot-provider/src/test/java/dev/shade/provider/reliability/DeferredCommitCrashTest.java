package dev.shade.provider.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.provider.BlockSource;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.testing.ChildJvm;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A snapshot set committed deferring its durability, with the process killed (SIGKILL) while
 * writes go on: before makeDurable the set is on both volumes or on neither, marked pending and
 * holding exactly what it held; after makeDurable it is always there.
 */
class DeferredCommitCrashTest {
  private static final long SIZE = 256 * DeferredCommitChild.BLOCK;
  private static final int TRIALS = 4;

  @TempDir Path tmp;

  @Test
  void killedBeforeMakeDurable_theSetIsWholeOrGoneAndHoldsWhatItHeld() throws Exception {
    int present = trials("deferred", false);
    System.out.println("deferred commit killed before makeDurable: the set survived in " + present + " of " + TRIALS);
  }

  @Test
  void killedAfterMakeDurable_theSetIsThere() throws Exception {
    assertEquals(TRIALS, trials("durable", true));
  }

  /** Runs the trials; returns in how many the set was there after the kill. */
  private int trials(String mode, boolean mustSurvive) throws Exception {
    Random rnd = new Random(42);
    int present = 0;
    for (int t = 0; t < TRIALS; t++) {
      Path work = tmp.resolve(mode + t);
      List<Path> dirs = List.of(work.resolve("a"), work.resolve("b"));
      for (Path d : dirs) {
        Volume.create(d, VolumeConfig.of(SIZE).withBlockSize(DeferredCommitChild.BLOCK).withDiffMax(4 * SIZE)).close();
      }
      try (ChildJvm child = ChildJvm.start(work, DeferredCommitChild.class, dirs.get(0) + "," + dirs.get(1), mode,
          Long.toString(t))) {
        String word = mustSurvive ? "DURABLE" : "COMMITTED";
        assertNotNull(child.awaitLine(word, Duration.ofSeconds(60)), child.output());
        Thread.sleep(rnd.nextInt(40));
        child.kill();
      }
      List<Volume> vs = Volume.openAll(dirs);
      try {
        List<SnapshotInfo> s1 = new ArrayList<>();
        for (Volume v : vs) {
          s1.add(v.snapshots().stream().filter(s -> s.name().equals("s1")).findFirst().orElse(null));
        }
        if (s1.get(0) == null || s1.get(1) == null) {
          assertNull(s1.get(0), "trial " + t + ": the set on one member only");
          assertNull(s1.get(1), "trial " + t + ": the set on one member only");
          assertTrue(!mustSurvive, "trial " + t + ": the set was lost after makeDurable");
          continue;
        }
        present++;
        for (int i = 0; i < vs.size(); i++) {
          assertEquals("pending", s1.get(i).attributes().get("shade.requestor"));
          try (BlockSource s = vs.get(i).openSnapshot("s1")) {
            byte[] b = new byte[DeferredCommitChild.BLOCK];
            for (long off = 0; off < SIZE; off += b.length) {
              s.read(off, ByteBuffer.wrap(b));
              for (byte x : b) {
                if (x != 1) {
                  throw new AssertionError("trial " + t + ": snapshot s1 of " + dirs.get(i) + " reads " + x
                      + " at offset " + off + " instead of what it held (1)");
                }
              }
            }
          }
        }
      } finally {
        for (Volume v : vs) {
          v.close();
        }
      }
    }
    return present;
  }
}
