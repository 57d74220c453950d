package dev.shade.testing.live;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class AckLogTest {
  @Test
  void lastBefore_countsOnlyWhatHappenedBefore() throws InterruptedException {
    AckLog log = new AckLog();
    long before = System.nanoTime();
    Thread.sleep(2);
    for (int n = 1; n <= 3000; n++) { // past the first growth of the arrays
      log.issued(n);
      log.acked(n);
    }
    log.issued(3001);
    long middle = System.nanoTime();
    Thread.sleep(2);
    log.acked(3001);
    assertEquals(0, log.lastAckedBefore(before));
    assertEquals(3000, log.lastAckedBefore(middle));
    assertEquals(3001, log.lastIssuedBefore(middle));
    assertEquals(3001, log.lastAckedBefore(System.nanoTime()));
    assertEquals(3001, log.lastAcked());
  }

  @Test
  void outOfOrder_isRefused() {
    AckLog log = new AckLog();
    assertThrows(IllegalStateException.class, () -> log.issued(2));
    log.issued(1);
    assertThrows(IllegalStateException.class, () -> log.issued(2));
    assertThrows(IllegalStateException.class, () -> log.acked(2));
  }
}
