package dev.shade.testing.live;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LiveSqliteTest {
  @TempDir Path tmp;

  @Test
  void counter_inWalMode_recordsEveryCommittedNumber() throws Exception {
    Path db = tmp.resolve("app.db");
    LiveSqlite sqlite = LiveSqlite.start(db, 0);
    long t0 = System.nanoTime();
    Thread.sleep(300);
    sqlite.close();
    AckLog acks = sqlite.acks();
    assertTrue(acks.lastAcked() > 0, acks::toString);
    assertTrue(Files.exists(tmp.resolve("app.db-wal")) || Files.size(db) > 0, "WAL mode");
    assertEquals(acks.lastAcked(), LiveSqlite.maxCounter(db));
    assertEquals("ok", LiveSqlite.integrityCheck(db));
    assertEquals(0, acks.lastAckedBefore(t0 - 1_000_000_000L));
    assertEquals(acks.lastAcked(), acks.lastAckedBefore(System.nanoTime()));
  }
}
