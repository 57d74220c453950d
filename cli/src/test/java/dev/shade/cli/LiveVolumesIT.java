package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.testing.CloseAfterEach;
import dev.shade.testing.live.AckLog;
import dev.shade.testing.live.Counter;
import dev.shade.testing.live.LivePostgres;
import dev.shade.testing.live.LoopMount;
import dev.shade.testing.live.NbdMount;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * End to end on real volumes: {@code shade agent} serves two volumes over NBD, each carries
 * ext4 (nbdfuse, loop device) and together a PostgreSQL cluster (its data directory on one, its
 * WAL on the other) under pgbench load and a counter of acknowledged commits; snapshot sets of
 * both volumes taken through the agent without any writer (crash-consistent only) must restore
 * to a cluster that starts with crash recovery, passes pg_amcheck and holds every commit
 * acknowledged before the snapshot's creation began.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class LiveVolumesIT {
  /*
   * The restored copy's layout: initdb --waldir makes DATA/pg_wal a symbolic link to the WAL
   * volume's absolute path (mnt/wal/pg_wal). The copies are mounted elsewhere (copy/mnt/data,
   * copy/mnt/wal), so LivePostgres.existing points the copy's pg_wal link at the copy of the WAL
   * directory, as a restore to another place has to; and it removes the copy's postmaster.pid,
   * which names the original server, still running.
   */
  private static final String SIZE = "1G";
  private static final int SNAPSHOTS = 3;
  /** The snapshot of the set that is restored and checked. */
  private static final int CHECKED = 1;

  @TempDir Path tmp;
  /** What to take down after the test, newest first. */
  @RegisterExtension final CloseAfterEach teardown = new CloseAfterEach();

  @Test
  void snapshotSetWithoutWriters_ofPostgresDataAndWal_recoversWithEveryCommitAcknowledgedBefore() throws Exception {
    NbdMount.requireTools();
    LivePostgres.requireTools();
    long t0 = System.nanoTime();
    Path data = tmp.resolve("volumes/data");
    Path wal = tmp.resolve("volumes/wal");
    for (Path v : List.of(data, wal)) {
      Cli.run("volume", "create", v, "--size", SIZE, "--diff-max", SIZE).ok();
    }
    Path nbdSock = tmp.resolve("nbd.sock");
    Path control = tmp.resolve("control.sock");
    AgentProcess agent = AgentProcess.start(tmp, List.of(data, wal, "--control-socket", control, "--socket", nbdSock),
        control);
    teardown.push(() -> {
      if (agent.process().isAlive()) {
        assertEquals(0, agent.stop(), agent::toString);
      }
    });
    NbdMount dataMount = NbdMount.open("nbd+unix:///data?socket=" + nbdSock, tmp.resolve("nbd-data"),
        tmp.resolve("mnt/data"), true);
    teardown.push(dataMount);
    NbdMount walMount = NbdMount.open("nbd+unix:///wal?socket=" + nbdSock, tmp.resolve("nbd-wal"),
        tmp.resolve("mnt/wal"), true);
    teardown.push(walMount);
    long mounted = System.nanoTime();

    LivePostgres pg = LivePostgres.initdb(dataMount.mountPoint().resolve("pgdata"),
        walMount.mountPoint().resolve("pg_wal"), tmp.resolve("run"));
    teardown.push(pg);
    assertTrue(Files.isSymbolicLink(pg.dataDir().resolve("pg_wal")), "initdb --waldir made pg_wal a link");
    pg.start();
    pg.pgbenchInit(2);
    long loaded = System.nanoTime();

    Counter counter = pg.counter("postgres", 0);
    teardown.push(counter::stop);
    LivePostgres.PgBench bench = pg.pgbench(2, 8);
    Thread.sleep(1000);
    long[] begin = new long[SNAPSHOTS];
    long[] end = new long[SNAPSHOTS];
    for (int i = 0; i < SNAPSHOTS; i++) {
      begin[i] = System.nanoTime();
      Cli.Result r = Cli.run("snapshot", "create", data, wal, "--name", "s" + i, "--json");
      end[i] = System.nanoTime();
      JsonNode set = r.ok().json();
      assertFalse(set.get("setId").isNull(), set::toString);
      assertEquals(2, set.get("snapshots").size(), set::toString);
      Thread.sleep(1500);
    }
    double tps = bench.await();
    teardown.pop(); // the counter: stopped here, failing if it failed
    counter.stop();
    AckLog acks = counter.acks();
    assertTrue(acks.lastAckedBefore(begin[0]) > 0, () -> "the counter committed before the first snapshot: " + acks);
    long snapshotted = System.nanoTime();

    Path copies = tmp.resolve("copy");
    Files.createDirectories(copies);
    String name = "s" + CHECKED;
    Path dataImg = copies.resolve("data.img");
    Path walImg = copies.resolve("wal.img");
    Cli.run("snapshot", "export", data, name, dataImg).ok();
    Cli.run("snapshot", "export", wal, name, walImg).ok();
    LoopMount.fsck(dataImg);
    LoopMount.fsck(walImg);
    LoopMount dataCopy = LoopMount.mount(dataImg, copies.resolve("mnt/data"), false, "");
    teardown.push(dataCopy);
    LoopMount walCopy = LoopMount.mount(walImg, copies.resolve("mnt/wal"), false, "");
    teardown.push(walCopy);
    LivePostgres restored = LivePostgres.existing(dataCopy.mountPoint().resolve("pgdata"),
        walCopy.mountPoint().resolve("pg_wal"), tmp.resolve("run-copy"));
    teardown.push(restored);
    restored.start();
    String log = Files.readString(restored.log());
    assertTrue(log.contains("database system was not properly shut down") || log.contains("redo starts"),
        () -> "the copy started with crash recovery:\n" + log);
    restored.amcheck();
    assertEquals("200000", restored.psql("postgres", "SELECT count(*) FROM pgbench_accounts"));
    long max = restored.maxCounter("postgres");
    long ackedBefore = acks.lastAckedBefore(begin[CHECKED]);
    long issuedBefore = acks.lastIssuedBefore(end[CHECKED]);
    assertTrue(max >= ackedBefore, () -> "snapshot " + name + " lost commits: its counter reaches " + max
        + ", but " + ackedBefore + " was acknowledged before its creation began (" + acks + ")");
    assertTrue(max <= issuedBefore, () -> "snapshot " + name + " holds counter " + max + ", issued only after its "
        + "creation returned (last issued before: " + issuedBefore + ")");
    long checked = System.nanoTime();

    System.out.printf("live volumes: pgbench %.0f tps with %d snapshot sets; counter: %d commits, snapshot %s holds"
            + " %d (acknowledged before it began: %d, issued before it returned: %d); seconds: setup %.1f, initdb and "
            + "pgbench -i %.1f, load and snapshots %.1f, restore and checks %.1f%n", tps, SNAPSHOTS, acks.lastAcked(),
        name, max, ackedBefore, issuedBefore, (mounted - t0) / 1e9, (loaded - mounted) / 1e9,
        (snapshotted - loaded) / 1e9, (checked - snapshotted) / 1e9);
  }
}
