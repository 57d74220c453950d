package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.provider.Volume;
import dev.shade.testing.CloseAfterEach;
import dev.shade.testing.live.AckLog;
import dev.shade.testing.live.LiveSqlite;
import dev.shade.testing.live.NbdMount;
import dev.shade.testing.live.WriteProbe;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The freeze lease end to end, through a real {@code shade agent} serving ext4 filesystems
 * (nbdfuse, loop device) with an SQLite database on them under a counter of commits: whatever
 * goes wrong while the writers are frozen, the filesystems and the database are thawed within
 * the freeze limit + 100 ms, keep taking writes, and the snapshot is reported failed and is not
 * kept.
 *
 * <ul>
 *   <li>a freeze hook that hangs ({@code exec:} hook sleeping 60 s) with {@code --freeze-timeout
 *       1s}: the command fails naming the hook, the counter stalls at most 1.1 s, no snapshot is
 *       left, the hook and its child are gone;
 *   <li>the agent (the requestor) killed with SIGKILL while the database and both filesystems of
 *       a two-volume set are frozen (its set commit paused between the members' records): the
 *       guard sees its standard input close and thaws; each filesystem takes a write, and the
 *       database a commit, within 100 ms of the kill; the next agent on the volumes leaves no
 *       snapshot.
 * </ul>
 *
 * <p>Stalls are measured from the writers' own acknowledgement times ({@link AckLog}): the
 * SQLite counter retries a busy commit every millisecond itself ({@code busy_timeout} 0), and
 * a {@link WriteProbe} writes and reads back a block on each filesystem every 2 ms without
 * fsync. The counter runs with {@code synchronous=OFF}: the stall to measure is the writers'
 * hold, not the disk's flush latency, and once the agent is killed the volumes' device is gone,
 * so only writes into the page cache can still succeed: those filesystems are ext4 without a
 * journal mounted with {@code errors=continue} (a journaled ext4 aborts its journal at the thaw's
 * failed superblock write and turns read-only, whatever the errors= option).
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class FreezeLeaseIT {
  private static final int TRIALS = Integer.getInteger("shade.test.freezeLeaseTrials", 3);
  private static final String SIZE = "256M";
  /** What a thaw may take past the limit, or after the requestor died. */
  private static final long SLACK_MS = 100;
  /**
   * How soon after the agent's SIGKILL each load must see its writer thawed. The guard releases
   * as soon as its input closes (typically 30–50 ms here, measured through the loads' own next
   * acknowledgement); the bound leaves room for a loaded machine scheduling those loads late.
   * The acceptance bound is the stall's: the limit + {@value #SLACK_MS} ms.
   */
  private static final long AFTER_KILL_MS = 500;
  private static final long MS = 1_000_000;
  /**
   * ext4 without a journal for the filesystems under the agent that is killed: a journaled ext4
   * on a device that is gone aborts its journal at the thaw's first write and turns read-only
   * (even with errors=continue), so the write the freeze held returns EROFS and nothing more is
   * taken; without a journal, and with errors=continue, it keeps taking writes into the page
   * cache, which is what this test checks after the thaw.
   */
  private static final List<String> NO_JOURNAL = List.of("-O", "^has_journal");

  @TempDir Path tmp;
  /** What to take down after the test, newest first. */
  @RegisterExtension final CloseAfterEach teardown = new CloseAfterEach();

  @Test
  void hungFreezeHook_isKilledAtTheLimit_theDatabaseThawsWithinIt_andNoSnapshotIsLeft() throws Exception {
    NbdMount.requireTools();
    long limitMs = 1000;
    Path vol = tmp.resolve("volumes/db");
    Cli.run("volume", "create", vol, "--size", SIZE, "--diff-max", SIZE).ok();
    Path nbdSock = tmp.resolve("nbd.sock");
    Path control = tmp.resolve("control.sock");
    AgentProcess agent = AgentProcess.start(tmp, List.of(vol, "--control-socket", control, "--socket", nbdSock),
        control);
    teardown.push(() -> stopIfAlive(agent));
    NbdMount mount = NbdMount.open("nbd+unix:///db?socket=" + nbdSock, tmp.resolve("nbd-db"), tmp.resolve("mnt/db"),
        true);
    teardown.push(mount);
    Path db = mount.mountPoint().resolve("app.db");
    LiveSqlite sqlite = LiveSqlite.start(db, 1, "OFF", true);
    teardown.push(sqlite);
    WriteProbe probe = WriteProbe.start(mount.mountPoint().resolve("probe"), 2);
    teardown.push(probe);

    Path hooks = tmp.resolve("hooks");
    Path pids = tmp.resolve("hook-pids");
    Files.createDirectories(hooks);
    Files.createDirectories(pids);
    Path hook = hooks.resolve("10-hang");
    Files.writeString(hook, "#!/bin/sh\n"
        + "if [ \"$1\" = freeze ]; then\n"
        + "  echo $$ > '" + pids + "/hook.pid'\n"
        + "  sleep 60 &\n"
        + "  echo $! > '" + pids + "/sleep.pid'\n"
        + "  wait\n"
        + "fi\n"
        + "exit 0\n");
    Files.setPosixFilePermissions(hook, PosixFilePermissions.fromString("rwxr-xr-x"));
    Thread.sleep(300); // the counter and the probe are under way

    List<String> figures = new ArrayList<>();
    for (int trial = 1; trial <= TRIALS; trial++) {
      Files.deleteIfExists(pids.resolve("hook.pid"));
      Files.deleteIfExists(pids.resolve("sleep.pid"));
      long t0 = System.nanoTime();
      Cli.Result r = Cli.run("snapshot", "create", vol, "--name", "hung-" + trial, "--writer", "sqlite:" + db,
          "--writer", "exec:" + hooks, "--writer", "fs:" + mount.mountPoint(), "--freeze-timeout", limitMs + "ms",
          "--json");
      long t1 = System.nanoTime();
      assertEquals(1, r.code(), () -> "a hung freeze hook fails the snapshot: " + r);
      assertTrue(r.err().contains(hook.toString()), () -> "the error names the hook " + hook + ": " + r);
      awaitAckAfter(sqlite.acks(), t1, "the SQLite counter after the failed snapshot", sqlite.counter()::failure);
      awaitAckAfter(probe.acks(), t1, "the write probe after the failed snapshot", probe::failure);
      Thread.sleep(200);
      long stall = sqlite.acks().longestAckGap(t0, t1);
      long probeStall = probe.acks().longestAckGap(t0, t1);
      long afterAcks = sqlite.acks().lastAcked() - sqlite.acks().lastAckedBefore(t1);
      String line = String.format(Locale.ROOT, "hung hook trial %d: command %.0f ms, counter stall %.1f ms, "
              + "filesystem probe stall %.1f ms, %d commits in the 200+ ms after; %s", trial, (t1 - t0) / 1e6,
          stall / 1e6, probeStall / 1e6, afterAcks, r.errLines().isEmpty() ? "" : r.errLines().get(0));
      figures.add(line);
      System.out.println(line);
      assertTrue(stall <= (limitMs + SLACK_MS) * MS, () -> line + ": the database stayed locked past the limit + "
          + SLACK_MS + " ms; " + r);
      assertTrue(probeStall <= (limitMs + SLACK_MS) * MS, () -> line + ": the filesystem stayed frozen past it");
      assertTrue(afterAcks > 10, () -> line + ": the database keeps taking commits");
      JsonNode list = Cli.run("snapshot", "list", vol, "--json").ok().json();
      assertEquals(0, list.size(), () -> "the failed snapshot is not kept: " + list);
      for (String f : List.of("hook.pid", "sleep.pid")) {
        long pid = Long.parseLong(Files.readString(pids.resolve(f)).strip());
        assertTrue(awaitGone(pid, 5000), () -> "the hung hook's " + f + " " + pid + " was killed");
      }
    }
    System.out.println(String.join("\n", figures));
  }

  @Test
  void agentKilledMidFreeze_guardThawsEverythingAtOnce_andTheNextAgentKeepsNoSnapshot() throws Exception {
    NbdMount.requireTools();
    long limitMs = 5000;
    List<String> figures = new ArrayList<>();
    for (int trial = 1; trial <= TRIALS; trial++) {
      figures.add(killTrial(trial, limitMs));
    }
    System.out.println(String.join("\n", figures));
  }

  /** One agent killed mid-freeze, on volumes of its own; its figures. */
  private String killTrial(int trial, long limitMs) throws Exception {
    Path dir = tmp.resolve("kill-" + trial);
    Path v1 = dir.resolve("volumes/v1");
    Path v2 = dir.resolve("volumes/v2");
    for (Path v : List.of(v1, v2)) {
      Cli.run("volume", "create", v, "--size", SIZE, "--diff-max", SIZE).ok();
    }
    Path nbdSock = dir.resolve("nbd.sock");
    Path control = dir.resolve("control.sock");
    List<Object> agentArgs = List.of(v1, v2, "--control-socket", control, "--socket", nbdSock);
    AgentProcess agent = AgentProcess.start(dir, List.of("-Dshade.test.setMemberPauseMs=3000"), agentArgs, control);
    teardown.push(() -> stopIfAlive(agent));
    NbdMount m1 = NbdMount.open("nbd+unix:///v1?socket=" + nbdSock, dir.resolve("nbd-v1"), dir.resolve("mnt/v1"), true,
        NO_JOURNAL, "errors=continue");
    teardown.push(m1);
    NbdMount m2 = NbdMount.open("nbd+unix:///v2?socket=" + nbdSock, dir.resolve("nbd-v2"), dir.resolve("mnt/v2"), true,
        NO_JOURNAL, "errors=continue");
    teardown.push(m2);
    Path db = m1.mountPoint().resolve("app.db");
    LiveSqlite sqlite = LiveSqlite.start(db, 1, "OFF", true);
    teardown.push(sqlite);
    WriteProbe p1 = WriteProbe.start(m1.mountPoint().resolve("probe"), 2);
    teardown.push(p1);
    WriteProbe p2 = WriteProbe.start(m2.mountPoint().resolve("probe"), 2);
    teardown.push(p2);
    Thread.sleep(300);

    Cli.Result[] result = new Cli.Result[1];
    Thread command = new Thread(() -> result[0] = Cli.run("snapshot", "create", v1, v2, "--name", "killed",
        "--writer", "sqlite:" + db, "--writer", "fs:" + m1.mountPoint(), "--writer", "fs:" + m2.mountPoint(),
        "--freeze-timeout", limitMs + "ms", "--json"), "snapshot-create");
    long t0 = System.nanoTime();
    command.start();
    // frozen: every writer has waited 300 ms (the database's lock, then both filesystems' freezes)
    long deadline = t0 + 60_000 * MS;
    while (!(sqlite.acks().waitingNanos() > 300 * MS && p1.acks().waitingNanos() > 300 * MS
        && p2.acks().waitingNanos() > 300 * MS)) {
      assertTrue(command.isAlive(), () -> "the snapshot ended before everything froze: " + result[0]);
      assertTrue(System.nanoTime() < deadline, "everything froze within 60 s");
      Thread.sleep(1);
    }
    List<ProcessHandle> children = agent.process().descendants().toList();
    long kill = System.nanoTime();
    agent.process().destroyForcibly();
    long[] thawed = new long[3];
    String[] names = {"SQLite commit", "write on " + m1.mountPoint(), "write on " + m2.mountPoint()};
    AckLog[] logs = {sqlite.acks(), p1.acks(), p2.acks()};
    List<Supplier<Throwable>> failures = List.of(sqlite.counter()::failure, p1::failure, p2::failure);
    for (int i = 0; i < 3; i++) {
      thawed[i] = awaitAckAfter(logs[i], kill, "the " + names[i] + " after the agent was killed", failures.get(i))
          - kill;
    }
    assertTrue(agent.process().waitFor(30, TimeUnit.SECONDS), "the agent is gone after SIGKILL");
    command.join(60_000);
    assertEquals(1, result[0].code(), () -> "the snapshot fails with its agent: " + result[0]);
    Thread.sleep(300);
    long frozenAt = Math.min(logs[0].lastAckAtOrBefore(kill), Math.min(logs[1].lastAckAtOrBefore(kill),
        logs[2].lastAckAtOrBefore(kill)));
    long[] stall = new long[3];
    long[] after = new long[3];
    for (int i = 0; i < 3; i++) {
      stall[i] = logs[i].longestAckGap(t0, kill);
      after[i] = logs[i].lastAcked() - logs[i].lastAckedBefore(kill + thawed[i]);
    }
    String line = String.format(Locale.ROOT, "kill trial %d: killed %.0f ms after the first writer stopped; "
            + "thawed after the kill: SQLite %.1f ms, fs1 %.1f ms, fs2 %.1f ms; stalls: SQLite %.1f ms, fs1 %.1f ms, "
            + "fs2 %.1f ms; then %d commits, %d and %d writes in 300+ ms", trial, (kill - frozenAt) / 1e6,
        thawed[0] / 1e6, thawed[1] / 1e6, thawed[2] / 1e6, stall[0] / 1e6, stall[1] / 1e6, stall[2] / 1e6, after[0],
        after[1], after[2]);
    System.out.println(line);
    for (int i = 0; i < 3; i++) {
      int k = i;
      assertTrue(thawed[i] <= AFTER_KILL_MS * MS, () -> line + ": the " + names[k] + " waited more than " + AFTER_KILL_MS
          + " ms after the kill");
      assertTrue(stall[i] <= (limitMs + SLACK_MS) * MS, () -> line + ": the " + names[k] + " stalled past the limit");
      assertTrue(after[i] > 10, () -> line + ": the " + names[k] + " keeps going");
    }
    for (ProcessHandle child : children) {
      assertTrue(awaitGone(child.pid(), 10_000), () -> "the agent's child " + child.pid() + " "
          + child.info().commandLine().orElse("") + " (the guard) ended after releasing");
    }

    // the filesystems' device is gone: take everything down (nothing may hang on it)
    long down = System.nanoTime();
    for (int i = 0; i < 5; i++) {
      teardown.pop().close(); // p2, p1, sqlite, m2, m1
    }
    long downMs = (System.nanoTime() - down) / MS;
    int recorded = 0;
    for (Path v : List.of(v1, v2)) {
      try (Volume vol = Volume.open(v)) { // alone: nothing is discarded or reconciled yet
        recorded += vol.snapshots().stream().anyMatch(s -> s.name().equals("killed")) ? 1 : 0;
      }
    }
    // the killed agent's NBD socket file is left behind; the next agent listens on another
    AgentProcess again = AgentProcess.start(dir, List.of(v1, v2, "--control-socket", control, "--socket",
        dir.resolve("nbd-again.sock")), control);
    for (Path v : List.of(v1, v2)) {
      JsonNode list = Cli.run("snapshot", "list", v, "--json").ok().json();
      assertEquals(0, list.size(), () -> v + ": the killed snapshot is not kept: " + list + "\n" + again);
    }
    String log = again.err();
    int onVolumes = recorded;
    if (recorded > 0) {
      assertTrue(log.contains("discarded snapshot 'killed'") || log.contains("its commit was interrupted"),
          () -> "the next agent says it removed the snapshot recorded on " + onVolumes + " volume(s): " + again);
    }
    assertEquals(0, again.stop(), again::toString);
    teardown.pop(); // the killed agent
    String summary = line + String.format(Locale.ROOT, "; teardown %d ms; snapshot recorded on %d of 2 volumes at "
        + "the kill, gone after the restart", downMs, recorded);
    System.out.println(summary);
    return summary;
  }

  /** Waits up to 10 s for an acknowledgement after {@code nanoTime}; its time. */
  private static long awaitAckAfter(AckLog log, long nanoTime, String what, Supplier<Throwable> failure)
      throws InterruptedException {
    long deadline = System.nanoTime() + 10_000 * MS;
    while (true) {
      long t = log.firstAckAfter(nanoTime);
      if (t >= 0) {
        return t;
      }
      Throwable f = failure.get();
      if (f != null) {
        throw new AssertionError(what + ": failed before anything was acknowledged (" + log + "): " + f, f);
      }
      assertTrue(System.nanoTime() < deadline, () -> what + ": nothing acknowledged within 10 s (" + log + ")");
      Thread.sleep(0, 200_000);
    }
  }

  /** True once process {@code pid} is gone (a zombie counts: it runs no more), waiting up to {@code millis}. */
  private static boolean awaitGone(long pid, long millis) throws InterruptedException, IOException {
    long deadline = System.nanoTime() + millis * MS;
    while (System.nanoTime() < deadline) {
      if (!running(pid)) {
        return true;
      }
      Thread.sleep(20);
    }
    return !running(pid);
  }

  private static boolean running(long pid) throws IOException {
    Path stat = Path.of("/proc/" + pid + "/stat");
    String s;
    try {
      s = Files.readString(stat);
    } catch (java.nio.file.NoSuchFileException e) {
      return false;
    }
    // pid (comm) STATE ...; comm may hold spaces and parentheses
    String state = s.substring(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
    return !state.equals("Z") && !state.equals("X");
  }

  private static void stopIfAlive(AgentProcess agent) throws Exception {
    if (agent.process().isAlive()) {
      assertEquals(0, agent.stop(), agent::toString);
    }
  }
}
