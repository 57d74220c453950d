package dev.shade.testing.live;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.testing.Command;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link LivePostgres} on plain directories: a cluster with its WAL elsewhere runs pgbench and
 * the counter, and a copy of both directories made while it runs (as a snapshot would, though
 * not atomically: the server is killed with SIGKILL first) starts elsewhere with crash
 * recovery and every acknowledged commit; so does the original after a crash.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class LivePostgresTest {
  @TempDir Path tmp;

  @Test
  void cluster_withWalElsewhere_runsLoadAndItsCopyRecovers() throws Exception {
    LivePostgres.requireTools();
    Path data = tmp.resolve("a/pgdata");
    Path wal = tmp.resolve("b/pg_wal");
    long acked;
    try (LivePostgres pg = LivePostgres.initdb(data, wal, tmp.resolve("run"))) {
      assertTrue(Files.isSymbolicLink(data.resolve("pg_wal")));
      pg.start();
      pg.pgbenchInit(1);
      Counter counter = pg.counter("postgres", 0);
      LivePostgres.PgBench load = pg.pgbench(2, 2);
      double tps = load.await();
      counter.stop();
      acked = counter.acks().lastAcked();
      assertTrue(tps > 0 && acked > 0, () -> tps + " tps, " + counter);
      assertEquals(acked, pg.maxCounter("postgres"));
      pg.amcheck();
      pg.crash(); // no shutdown checkpoint, postmaster.pid left behind
      assertTrue(Files.exists(data.resolve("postmaster.pid")));
      Command.run("cp", "-a", tmp.resolve("a").toString(), tmp.resolve("copy-a").toString()).requireSuccess();
      Command.run("cp", "-a", tmp.resolve("b").toString(), tmp.resolve("copy-b").toString()).requireSuccess();
    }
    try (LivePostgres copy = LivePostgres.existing(tmp.resolve("copy-a/pgdata"), tmp.resolve("copy-b/pg_wal"),
        tmp.resolve("run-copy"))) {
      assertEquals(tmp.resolve("copy-b/pg_wal"), Files.readSymbolicLink(tmp.resolve("copy-a/pgdata/pg_wal")));
      copy.start();
      assertTrue(Files.readString(copy.log()).contains("not properly shut down"), () -> "crash recovery ran");
      assertEquals(acked, copy.maxCounter("postgres"));
      copy.amcheck();
    }
    try (LivePostgres again = LivePostgres.existing(data, null, tmp.resolve("run"))) {
      again.start(); // the original, after its crash: the stale postmaster.pid is no obstacle
      assertEquals(acked, again.maxCounter("postgres"));
    }
  }
}
