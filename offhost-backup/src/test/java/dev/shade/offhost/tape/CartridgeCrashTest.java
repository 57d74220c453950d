package dev.shade.offhost.tape;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.testing.ChildJvm;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A child JVM writes records and filemarks to a virtual cartridge, acknowledging each, and is
 * killed with SIGKILL at a random moment; the reopened library must read back every
 * acknowledged operation in order, at most one more (completed but not yet acknowledged), and
 * nothing torn.
 */
class CartridgeCrashTest {
  static final int BLOCK = 64 * 1024;

  @TempDir Path tmp;

  /** Operation {@code k} of trial {@code seed}: a filemark every seventh, else a record of a varying length. */
  static byte[] op(long seed, int k) {
    if (k % 7 == 6) {
      return null;
    }
    Random r = new Random(seed * 1_000_003L + k);
    byte[] b = new byte[1 + r.nextInt(BLOCK)];
    r.nextBytes(b);
    return b;
  }

  /** The child: {@code <library> <seed>}; writes operations until killed, printing "ACK k" after each. */
  public static void main(String[] args) throws Exception {
    long seed = Long.parseLong(args[1]);
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(Path.of(args[0]))) {
      TapeDrive d = lib.load(1);
      System.out.println("READY");
      for (int k = 0; ; k++) {
        byte[] b = op(seed, k);
        if (b == null) {
          d.writeFilemarks(1);
        } else {
          d.write(ByteBuffer.wrap(b));
        }
        System.out.println("ACK " + k);
      }
    }
  }

  @Test
  void sigkillMidWrite_leavesEveryAcknowledgedRecordReadable() throws Exception {
    int trials = Math.max(3, Integer.getInteger("shade.crash.trials", 50) / 10);
    Random random = new Random(42);
    for (int t = 0; t < trials; t++) {
      long seed = random.nextLong();
      int target = 5 + random.nextInt(60);
      Path dir = tmp.resolve("vtl-" + t);
      VirtualTapeLibrary.create(dir, LibraryConfig.of(1, 1, 1L << 30, BLOCK)).close();
      int acked;
      try (ChildJvm child = ChildJvm.start(tmp, CartridgeCrashTest.class, dir.toString(), Long.toString(seed))) {
        assertTrue(child.awaitAck(target, Duration.ofSeconds(60)), child::output);
        assertEquals(ChildJvm.SIGKILL_STATUS, child.kill(), child::output);
        acked = child.lastAck();
      }
      String trial = "trial " + t + " (seed " + seed + ", killed after ack " + acked + ")";
      try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(dir)) {
        assertEquals(1, lib.loadedSlot(0).getAsInt(), trial);
        TapeDrive d = lib.drive(0);
        int k = 0;
        ByteBuffer buf = ByteBuffer.allocate(BLOCK);
        while (true) {
          buf.clear();
          int n = d.read(buf);
          if (n < 0) {
            break;
          }
          byte[] expected = op(seed, k);
          if (expected == null) {
            assertEquals(0, n, trial + ": op " + k + " is a filemark");
          } else {
            assertArrayEquals(expected, Arrays.copyOf(buf.array(), n), trial + ": record of op " + k);
          }
          k++;
        }
        assertTrue(k >= acked + 1, trial + ": only " + k + " operations read back");
        assertTrue(k <= acked + 2, trial + ": " + k + " operations read back, more than were issued");
        // the reopened cartridge takes new writes after what survived
        d.seekEndOfData();
        d.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
        d.writeFilemarks(1);
      }
    }
  }
}
