package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.nbd.client.NbdClient;
import dev.shade.requestor.control.ControlClient;
import dev.shade.requestor.ops.VolumeCommands;
import java.io.IOException;
import java.time.Duration;
import dev.shade.provider.BlockSource;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.SnapshotRef;
import dev.shade.provider.Volume;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Crash trials on the agent path: the agent serves a volume to a writer of numbered blocks over
 * NBD, with a FLUSH every 32 writes, while snapshots are taken through its control socket; at a
 * random instant (seeded, so a failing trial can be replayed) it is killed with SIGKILL. Then the
 * volume is opened again and must hold every write covered by a completed flush, and every
 * snapshot whose creation returned must exist and hold exactly what was acknowledged before it
 * began and nothing issued after it returned.
 */
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class AgentCrashTrialTest {
  private static final int SLOTS = 512;
  private static final int FLUSH_EVERY = 32;
  /** Trials per run; -Dshade.agent.crash.trials raises it. */
  private static final int TRIALS = Integer.getInteger("shade.agent.crash.trials", 6);

  @TempDir Path tmp;

  static Stream<Long> seeds() {
    long base = Long.getLong("shade.agent.crash.seed", 0x5eed_a6e7L);
    return IntStream.range(0, TRIALS).mapToObj(i -> base + i);
  }

  /** A snapshot creation: when it began and, if it returned, when; its name. */
  private record Taken(String name, long begin, long end, boolean returned) {}

  @ParameterizedTest(name = "seed {0}")
  @MethodSource("seeds")
  void sigkill_duringWritesAndSnapshots_losesNothingFlushed(long seed) throws Exception {
    SplittableRandom rnd = new SplittableRandom(seed);
    Path db = tmp.resolve("db");
    Cli.run("volume", "create", db, "--size", "16M", "--diff-max", "1G").ok();
    Path nbdSock = tmp.resolve("nbd.sock");
    Path control = tmp.resolve("control.sock");
    AgentProcess agent = AgentProcess.start(tmp, List.of(db, "--control-socket", control, "--socket", nbdSock), control);
    NumberedWriter writer;
    List<Taken> taken = new ArrayList<>();
    try (NbdClient c = NbdClient.connect("nbd+unix:///db?socket=" + nbdSock)) {
      writer = new NumberedWriter(c, SLOTS, 4_000_000, FLUSH_EVERY);
      Thread w = new Thread(writer, "numbered-writer");
      w.start();
      long killAt = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(300 + rnd.nextInt(1200));
      Thread killer = new Thread(() -> {
        try {
          Thread.sleep(Math.max(0, TimeUnit.NANOSECONDS.toMillis(killAt - System.nanoTime())));
          agent.process().destroyForcibly(); // SIGKILL
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }, "killer");
      killer.start();
      // through the control socket only: a command line would open the volume itself once the
      // agent is gone, after the kill, and that snapshot would not be one the agent took
      for (int i = 0; agent.process().isAlive(); i++) {
        String name = "c" + i;
        long begin = System.nanoTime();
        boolean returned;
        try (ControlClient cc = ControlClient.connect(control, Duration.ofSeconds(5), false)) {
          cc.execute(VolumeCommands.SNAPSHOT_CREATE, Map.of("volumes", List.of(db.toRealPath().toString()), "name", name));
          returned = true;
        } catch (IOException e) {
          returned = false; // the agent died before or during the command
        }
        long end = System.nanoTime();
        taken.add(new Taken(name, begin, end, returned));
        Thread.sleep(rnd.nextInt(40));
      }
      killer.join();
      assertTrue(agent.process().waitFor(30, TimeUnit.SECONDS));
      w.join(30_000);
    }
    assertEquals(137, agent.process().exitValue(), "killed by SIGKILL");
    assertTrue(writer.flushedUpTo > 0, "some writes were flushed before the kill (seed " + seed + ")");

    long lastIssued = writer.lastIssued;
    try (Volume v = Volume.open(db)) {
      ByteBuffer image = ByteBuffer.allocateDirect(SLOTS * NumberedWriter.BLOCK);
      v.read(0, image);
      writer.check(image, writer.flushedUpTo, lastIssued, "origin after SIGKILL (seed " + seed + ")");
      Map<String, SnapshotInfo> present = new HashMap<>();
      for (SnapshotInfo s : v.snapshots()) {
        present.put(s.name(), s);
      }
      int returned = 0;
      for (Taken t : taken) {
        SnapshotInfo s = present.get(t.name());
        if (t.returned()) {
          returned++;
          assertNotNull(s, "snapshot " + t.name() + " was created before the kill and is gone (seed " + seed + ")");
        }
        if (s == null) {
          continue;
        }
        long mayHave = t.returned() ? writer.lastIssuedBefore(t.end()) : lastIssued;
        image.clear();
        try (BlockSource snap = v.openSnapshot(SnapshotRef.ofId(s.id()))) {
          snap.read(0, image);
        }
        writer.check(image.flip(), writer.lastAckedBefore(t.begin()), mayHave,
            "snapshot " + t.name() + " after SIGKILL (seed " + seed + ")");
      }
      System.out.printf("agent crash trial seed %d: killed after %d writes (%d flushed), %d snapshots returned, %d kept%n",
          seed, lastIssued, writer.flushedUpTo, returned, present.size());
    }
  }

  /**
   * An agent killed between the members' records of a snapshot set leaves it on one volume;
   * the next agent on both volumes removes it, so the set exists on all its volumes or none.
   */
  @org.junit.jupiter.api.Test
  void sigkill_inTheMiddleOfASetCommit_leavesTheSetOnAllOrNone() throws Exception {
    Path a = tmp.resolve("a");
    Path b = tmp.resolve("b");
    Cli.run("volume", "create", a, "--size", "4M").ok();
    Cli.run("volume", "create", b, "--size", "4M").ok();
    Cli.run("snapshot", "create", a, b, "--name", "whole").ok();
    Path control = tmp.resolve("control.sock");
    AgentProcess agent = AgentProcess.start(tmp, List.of("-Dshade.test.setMemberPauseMs=3000"),
        List.of(a, b, "--control-socket", control, "--listen", "127.0.0.1:0"), control);
    Cli.Result[] torn = new Cli.Result[1];
    Thread t = new Thread(() -> torn[0] = Cli.run("snapshot", "create", a, b, "--name", "torn"), "set-commit");
    t.start();
    Thread.sleep(1000); // the first member's record is durable; the agent sleeps before the second
    agent.kill();
    t.join(60_000);
    assertEquals(1, torn[0].code(), () -> "the set's command fails with its agent: " + torn[0]);

    int holding = 0;
    for (Path dir : List.of(a, b)) {
      try (Volume v = Volume.open(dir)) { // alone: nothing is reconciled yet
        holding += v.snapshots().stream().anyMatch(s -> s.name().equals("torn")) ? 1 : 0;
      }
    }
    assertEquals(1, holding, "the kill landed between the two members' records");

    AgentProcess again = AgentProcess.start(tmp, List.of(a, b, "--control-socket", control, "--listen", "127.0.0.1:0"),
        control);
    for (Path dir : List.of(a, b)) {
      JsonNode list = Cli.run("snapshot", "list", dir, "--json").ok().json();
      assertEquals(1, list.size(), () -> dir + ": only the whole set is left: " + list);
      assertEquals("whole", list.get(0).get("name").asText());
    }
    JsonNode set = Cli.run("snapshot", "create", a, b, "--name", "torn", "--json").ok().json();
    assertEquals(2, set.get("snapshots").size(), "the name is free again on both: " + set);
    assertEquals(0, again.stop(), again::toString);
  }
}
