package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.testing.CloseAfterEach;
import dev.shade.testing.Command;
import dev.shade.testing.live.AckLog;
import dev.shade.testing.live.Counter;
import dev.shade.testing.live.LivePostgres;
import dev.shade.testing.live.LoopMount;
import dev.shade.testing.live.NbdMount;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Acceptance: PostgreSQL 15 with its data directory on ext4 on one shade volume and {@code
 * pg_wal} on a second (both served by {@code shade agent}, attached with nbdfuse and a loop
 * device), under pgbench load plus a counter table committed in a loop: the agent's schedule
 * takes {@value #SNAPSHOTS} snapshot sets of both volumes with the postgres and fs writers
 * during the load, and every one of them, attached as a copy with its writer metadata written
 * back, starts as a PostgreSQL cluster from its {@code backup_label}, passes pg_amcheck and holds
 * exactly the counter values committed before its freeze.
 *
 * <p><b>The clock is compressed:</b> the schedule is {@code "every": "every 2s"} (a production
 * schedule is hourly or daily), so the {@value #SNAPSHOTS} runs fall within a minute of load; the
 * runs are the same scheduled runs (names from their slots, attribute {@code shade.schedule},
 * retention {@code keep last 30}, so none is pruned).
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class AcceptancePostgresScheduleIT {
  /*
   * Why "exactly": the postgres writer ends its backup (pg_backup_stop) in its freeze step,
   * before the filesystems freeze, so the end-of-backup record is in the snapshot's WAL and the
   * copy, started with its backup_label, replays from the backup's checkpoint to the end of the
   * snapshot's WAL without an archive. A snapshot's "created" is taken during the provider's
   * commit, while both filesystems are frozen: a counter commit acknowledged before it was
   * written before the freeze (a commit needs its WAL fsync, and writes to a frozen ext4 wait),
   * and one issued after it could only write once the filesystems were thawed, after the
   * snapshot. With one committing thread the two bounds differ by at most the one commit in
   * flight. "created" has millisecond precision, so the upper bound is taken a millisecond
   * later.
   *
   * The originals are taken down (server stopped, filesystems unmounted, agent stopped) before
   * the copies are checked, so that the schedule takes no more snapshots and the checks do not
   * compete with it; the volumes are then opened by the shade commands themselves.
   */
  private static final String SIZE = "1G";
  private static final String DIFF_MAX = "3G";
  private static final int SNAPSHOTS = 20;
  /** How long pgbench runs: the schedule's 20 runs at 2 s, and some slack. */
  private static final int LOAD_SECONDS = 48;

  @TempDir Path tmp;
  @RegisterExtension final CloseAfterEach teardown = new CloseAfterEach();

  @Test
  void scheduledSnapshotSetsWithWriters_underLoad_eachStartsFromItsBackupLabelWithExactlyTheCommittedCounter()
      throws Exception {
    NbdMount.requireTools();
    LivePostgres.requireTools();
    long t0 = System.nanoTime();
    NanoClock clock = NanoClock.now();
    Path data = tmp.resolve("volumes/data");
    Path wal = tmp.resolve("volumes/wal");
    for (Path v : List.of(data, wal)) {
      Cli.run("volume", "create", v, "--size", SIZE, "--diff-max", DIFF_MAX).ok();
    }
    Path nbdSock = tmp.resolve("nbd.sock");
    Path control = tmp.resolve("control.sock");
    Path dataMnt = tmp.resolve("mnt/data");
    Path walMnt = tmp.resolve("mnt/wal");
    int port = LivePostgres.freePort();
    String pgSpec = "postgres:host=127.0.0.1 port=" + port + " user=postgres dbname=postgres";
    Path config = tmp.resolve("agent.json");
    Map<String, Object> schedule = Map.of("name", "e2e", "volumes", List.of(data.toString(), wal.toString()),
        "writers", List.of(pgSpec, "fs:" + dataMnt, "fs:" + walMnt), "every", "every 2s", "timeZone", "UTC",
        "keep", Map.of("last", 30), "freezeTimeout", "5s");
    Cli.JSON.writeValue(config.toFile(), Map.of("control", control.toString(),
        "volumes", List.of(data.toString(), wal.toString()), "nbd", Map.of("socket", nbdSock.toString()),
        "schedules", List.of(schedule)));
    // until the server answers on its port, the schedule's runs fail (identify) and take nothing
    AgentProcess agent = AgentProcess.start(tmp, List.of("--config", config), control);
    teardown.push(() -> {
      if (agent.process().isAlive()) {
        assertEquals(0, agent.stop(), agent::toString);
      }
    });
    NbdMount dataMount = teardown.push(NbdMount.open("nbd+unix:///data?socket=" + nbdSock, tmp.resolve("nbd-data"),
        dataMnt, true));
    NbdMount walMount = teardown.push(NbdMount.open("nbd+unix:///wal?socket=" + nbdSock, tmp.resolve("nbd-wal"),
        walMnt, true));
    LivePostgres pg = teardown.push(LivePostgres.initdb(dataMnt.resolve("pgdata"), walMnt.resolve("pg_wal"),
        tmp.resolve("run")));
    // a fast checkpoint at every pg_backup_start: keep the WAL volume from filling up
    pg.start(port, "max_wal_size=256MB");
    pg.pgbenchInit(2);
    long mounted = System.nanoTime();

    Counter counter = pg.counter("postgres", 0);
    teardown.push(counter::stop);
    // the snapshots counted are those after loadStart: each must find a counter commit acknowledged before it
    long firstAckDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (counter.acks().lastAcked() == 0) {
      assertTrue(counter.failure() == null, () -> "the counter failed: " + counter.failure());
      assertTrue(System.nanoTime() < firstAckDeadline, "the counter's first commit was not acknowledged within 30 s");
      Thread.sleep(5);
    }
    LivePostgres.PgBench bench = pg.pgbench(2, LOAD_SECONDS);
    long loadStart = System.nanoTime();
    List<JsonNode> taken = awaitScheduled(data, clock, loadStart, agent);
    long loadSnapshotsDone = System.nanoTime();
    double tps = bench.await();
    counter.stop();
    AckLog acks = counter.acks();
    List<JsonNode> walTaken = new ArrayList<>();
    Cli.run("snapshot", "list", wal, "--json").ok().json().forEach(walTaken::add);
    // take the originals down: no more scheduled runs, nothing competing with the checks
    pg.stop();
    dataMount.close();
    walMount.close();
    assertEquals(0, agent.stop(), agent::toString);
    String agentLog = agent.err();
    long loaded = System.nanoTime();

    Path copies = tmp.resolve("copy");
    Files.createDirectories(copies);
    List<String> rows = new ArrayList<>();
    String recoveryLog = "";
    double[] seconds = new double[6]; // export, fsck, mount+metadata, start, amcheck, counter+teardown
    for (int i = 0; i < taken.size(); i++) {
      JsonNode snap = taken.get(i);
      String name = snap.get("name").asText();
      assertTrue(walTaken.stream().anyMatch(w -> w.get("name").asText().equals(name)
              && w.get("setId").asText().equals(snap.get("setId").asText())),
          () -> "the WAL volume has " + name + " of the same set: " + walTaken);
      Instant created = Instant.parse(snap.get("created").asText());
      long t = System.nanoTime();
      Path dataImg = copies.resolve("data.img");
      Path walImg = copies.resolve("wal.img");
      Cli.run("snapshot", "export", data, name, dataImg, "--force").ok();
      Cli.run("snapshot", "export", wal, name, walImg, "--force").ok();
      t = lap(seconds, 0, t);
      for (Path img : List.of(dataImg, walImg)) {
        Command fsck = Command.run("e2fsck", "-fn", img.toString());
        assertEquals(0, fsck.exitCode(), () -> name + ": the frozen filesystem in " + img + " is clean: " + fsck);
      }
      t = lap(seconds, 1, t);
      try (CloseAfterEach copy = new CloseAfterEach()) {
        LoopMount dataCopy = copy.push(LoopMount.mount(dataImg, copies.resolve("mnt/data"), false, ""));
        LoopMount walCopy = copy.push(LoopMount.mount(walImg, copies.resolve("mnt/wal"), false, ""));
        Cli.run("snapshot", "metadata", data, name, "--write-to", dataCopy.mountPoint()).ok();
        Path dataDir = dataCopy.mountPoint().resolve("pgdata");
        assertTrue(Files.isRegularFile(dataDir.resolve("backup_label")), name + ": backup_label written back");
        // existing(): points the copy's pg_wal link at the copy's WAL, removes the copy's postmaster.pid
        LivePostgres restored = copy.push(LivePostgres.existing(dataDir, walCopy.mountPoint().resolve("pg_wal"),
            tmp.resolve("run-copy-" + i)));
        t = lap(seconds, 2, t);
        restored.start();
        String log = Files.readString(restored.log());
        // "completed backup recovery": the end-of-backup record was in the snapshot's WAL
        assertTrue(log.contains("starting backup recovery") && log.contains("redo starts")
                && log.contains("completed backup recovery"),
            () -> name + ": the copy recovered from its backup label:\n" + log);
        assertTrue(Files.exists(dataDir.resolve("backup_label.old")), name + ": the label was used");
        if (i == 0) {
          recoveryLog = log;
        }
        t = lap(seconds, 3, t);
        restored.amcheck();
        t = lap(seconds, 4, t);
        assertEquals("200000", restored.psql("postgres", "SELECT count(*) FROM pgbench_accounts"), name);
        long max = restored.maxCounter("postgres");
        long count = Long.parseLong(restored.psql("postgres", "SELECT count(*) FROM counter"));
        long ackedBefore = acks.lastAckedBefore(clock.toNanos(created));
        long issuedBefore = acks.lastIssuedBefore(clock.toNanos(created.plusMillis(1)));
        assertEquals(max, count, () -> name + ": the counter has no gaps");
        assertTrue(ackedBefore > 0, () -> name + " was taken while the counter ran: " + acks);
        assertTrue(max >= ackedBefore, () -> name + " lost commits: its counter reaches " + max + ", but "
            + ackedBefore + " was acknowledged before its creation at " + created + " (" + acks + ")");
        assertTrue(max <= issuedBefore, () -> name + " holds counter " + max + ", issued only after its creation at "
            + created + " (last issued before: " + issuedBefore + ")");
        // the commit in flight at "created" waited for the freeze: its latency bounds the freeze seen by the application
        double stallMs = (acks.ackedAt(ackedBefore + 1) - acks.issuedAt(ackedBefore + 1)) / 1e6;
        rows.add(String.format("%s created %s: counter %d (acknowledged before: %d, issued before: %d), "
            + "commit in flight %.1f ms", name, created, max, ackedBefore, issuedBefore, stallMs));
        restored.stop();
      }
      Files.delete(dataImg);
      Files.delete(walImg);
      lap(seconds, 5, t);
    }
    long checked = System.nanoTime();

    System.out.printf("postgres schedule: %d snapshot sets in %.1f s of load, pgbench %.0f tps, counter %d commits;"
            + " seconds: setup %.1f, load %.1f, checks %.1f (%.1f per copy: export %.1f, e2fsck %.1f, mount and "
            + "metadata %.1f, start %.1f, pg_amcheck %.1f, counter and unmount %.1f)%n%s%nthe agent logged %d failed "
            + "runs (before the server answered, and when it stopped) and %d runs that outlasted a slot%n",
        taken.size(), (loadSnapshotsDone - loadStart) / 1e9, tps, acks.lastAcked(), (mounted - t0) / 1e9,
        (loaded - mounted) / 1e9, (checked - loaded) / 1e9, (checked - loaded) / 1e9 / taken.size(),
        seconds[0] / taken.size(), seconds[1] / taken.size(), seconds[2] / taken.size(), seconds[3] / taken.size(),
        seconds[4] / taken.size(), seconds[5] / taken.size(), String.join("\n", rows),
        agentLog.lines().filter(l -> l.contains("schedule e2e failed")).count(),
        agentLog.lines().filter(l -> l.contains("slots until then are skipped")).count());
    System.out.println("the first copy's server log:\n" + recoveryLog);
  }

  /**
   * Waits for {@value #SNAPSHOTS} snapshots of the schedule on {@code volume} created after
   * {@code after} (a {@link System#nanoTime}) and returns them, oldest first.
   */
  private static List<JsonNode> awaitScheduled(Path volume, NanoClock clock, long after, AgentProcess agent)
      throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(LOAD_SECONDS + 40);
    while (true) {
      List<JsonNode> found = new ArrayList<>();
      for (JsonNode s : Cli.run("snapshot", "list", volume, "--json").ok().json()) {
        if ("e2e".equals(s.path("attributes").path("shade.schedule").asText())
            && clock.toNanos(Instant.parse(s.get("created").asText())) > after) {
          found.add(s);
        }
      }
      found.sort(Comparator.comparingLong(s -> s.get("id").asLong()));
      if (found.size() >= SNAPSHOTS) {
        return found.subList(0, SNAPSHOTS);
      }
      assertTrue(System.nanoTime() < deadline, () -> "the schedule took " + found.size() + " of " + SNAPSHOTS
          + " snapshots within " + (LOAD_SECONDS + 40) + " s: " + agent);
      Thread.sleep(500);
    }
  }

  /** Adds the seconds since {@code t} to {@code seconds[i]} and returns now. */
  private static long lap(double[] seconds, int i, long t) {
    long now = System.nanoTime();
    seconds[i] += (now - t) / 1e9;
    return now;
  }
}
