package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.testing.CloseAfterEach;
import dev.shade.testing.Command;
import dev.shade.testing.live.AckLog;
import dev.shade.testing.live.LiveSqlite;
import dev.shade.testing.live.LoopMount;
import dev.shade.testing.live.NbdMount;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Acceptance: SQLite in WAL mode on ext4 on a shade volume that {@code shade agent} serves
 * (nbdfuse, a loop device), a counter committed in a loop: {@value #SNAPSHOTS} snapshots taken
 * through the agent with the sqlite and fs writers, and every one, exported and mounted as a
 * copy, passes {@code PRAGMA integrity_check} and holds exactly the counter values committed
 * before its freeze (its row count is its highest value).
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class AcceptanceSqliteIT {
  /*
   * "created" is taken during the provider's commit, while the sqlite writer holds the write
   * lock (BEGIN IMMEDIATE) and the filesystem is frozen: a commit acknowledged before it is on
   * the snapshot, one issued after it could commit only after the thaw. The upper bound is taken
   * a millisecond later, "created" having millisecond precision.
   */
  private static final String SIZE = "256M";
  private static final int SNAPSHOTS = 20;
  /** The pause between two snapshots, so that the counter commits in between. */
  private static final long PAUSE_MILLIS = 200;

  @TempDir Path tmp;
  @RegisterExtension final CloseAfterEach teardown = new CloseAfterEach();

  @Test
  void snapshotsWithSqliteAndFsWriters_ofAWalModeDatabase_passIntegrityCheckWithExactlyTheCommittedCounter()
      throws Exception {
    NbdMount.requireTools();
    long t0 = System.nanoTime();
    NanoClock clock = NanoClock.now();
    Path volume = tmp.resolve("volumes/db");
    Cli.run("volume", "create", volume, "--size", SIZE, "--diff-max", SIZE).ok();
    Path nbdSock = tmp.resolve("nbd.sock");
    Path control = tmp.resolve("control.sock");
    AgentProcess agent = AgentProcess.start(tmp, List.of(volume, "--control-socket", control, "--socket", nbdSock),
        control);
    teardown.push(() -> {
      if (agent.process().isAlive()) {
        assertEquals(0, agent.stop(), agent::toString);
      }
    });
    Path mnt = tmp.resolve("mnt/db");
    NbdMount mount = teardown.push(NbdMount.open("nbd+unix:///db?socket=" + nbdSock, tmp.resolve("nbd-db"), mnt,
        true));
    Path db = mnt.resolve("counter.db");
    LiveSqlite sqlite = teardown.push(LiveSqlite.start(db, 0));
    Thread.sleep(300);
    long setUp = System.nanoTime();

    List<JsonNode> taken = new ArrayList<>();
    List<Double> freezeMs = new ArrayList<>();
    List<String> phases = new ArrayList<>();
    for (int i = 0; i < SNAPSHOTS; i++) {
      JsonNode doc = Cli.run("snapshot", "create", volume, "--name", "s" + i, "--writer", "sqlite:" + db,
          "--writer", "fs:" + mnt, "--json").ok().json();
      taken.add(doc.get("snapshots").get(0));
      freezeMs.add(doc.get("freezeMs").asDouble());
      JsonNode sqliteWriter = doc.get("writers").get(0);
      phases.add(String.format("sqlite freeze %.1f ms (lock %s ms, checkpoint %s ms), fs freeze %.1f ms, commit %.1f ms",
          sqliteWriter.path("phases").path("freezeMs").asDouble(),
          sqliteWriter.path("metadata").path("facts").path("lockMillis").asText("?"),
          sqliteWriter.path("metadata").path("facts").path("checkpointMillis").asText("?"),
          doc.get("writers").get(1).path("phases").path("freezeMs").asDouble(), doc.get("commitMs").asDouble()));
      Thread.sleep(PAUSE_MILLIS);
    }
    long snapshotted = System.nanoTime();
    sqlite.close();
    AckLog acks = sqlite.acks();

    Path copies = tmp.resolve("copy");
    Files.createDirectories(copies);
    Path img = copies.resolve("db.img");
    List<String> rows = new ArrayList<>();
    for (int i = 0; i < taken.size(); i++) {
      JsonNode snap = taken.get(i);
      String name = snap.get("name").asText();
      Instant created = Instant.parse(snap.get("created").asText());
      Cli.run("snapshot", "export", volume, name, img, "--force").ok();
      Command fsck = Command.run("e2fsck", "-fn", img.toString());
      assertEquals(0, fsck.exitCode(), () -> name + ": the frozen filesystem in " + img + " is clean: " + fsck);
      long max;
      long count;
      String integrity;
      try (LoopMount copy = LoopMount.mount(img, copies.resolve("mnt"), false, "")) {
        Path copyDb = copy.mountPoint().resolve("counter.db");
        integrity = LiveSqlite.integrityCheck(copyDb);
        max = LiveSqlite.maxCounter(copyDb);
        count = LiveSqlite.count(copyDb);
      }
      assertEquals("ok", integrity, name + ": PRAGMA integrity_check");
      long ackedBefore = acks.lastAckedBefore(clock.toNanos(created));
      long issuedBefore = acks.lastIssuedBefore(clock.toNanos(created.plusMillis(1)));
      long m = max;
      assertEquals(max, count, () -> name + ": the row count is the highest counter value");
      assertTrue(ackedBefore > 0, () -> name + " was taken while the counter ran: " + acks);
      assertTrue(max >= ackedBefore, () -> name + " lost commits: its counter reaches " + m + ", but " + ackedBefore
          + " was acknowledged before its creation at " + created + " (" + acks + ")");
      assertTrue(max <= issuedBefore, () -> name + " holds counter " + m + ", issued only after its creation at "
          + created + " (last issued before: " + issuedBefore + ")");
      double stallMs = (acks.ackedAt(ackedBefore + 1) - acks.issuedAt(ackedBefore + 1)) / 1e6;
      rows.add(String.format("%s created %s: counter %d rows (acknowledged before: %d, issued before: %d), "
          + "freezeMs %.1f (%s), commit in flight %.1f ms", name, created, max, ackedBefore, issuedBefore,
          freezeMs.get(i), phases.get(i), stallMs));
    }
    long checked = System.nanoTime();
    System.out.printf("sqlite: %d snapshots, counter %d commits; seconds: setup %.1f, snapshots %.1f (%.2f each), "
            + "checks %.1f (%.2f per copy)%n%s%n", SNAPSHOTS, acks.lastAcked(), (setUp - t0) / 1e9,
        (snapshotted - setUp) / 1e9, (snapshotted - setUp) / 1e9 / SNAPSHOTS - PAUSE_MILLIS / 1e3,
        (checked - snapshotted) / 1e9, (checked - snapshotted) / 1e9 / SNAPSHOTS, String.join("\n", rows));
  }
}
