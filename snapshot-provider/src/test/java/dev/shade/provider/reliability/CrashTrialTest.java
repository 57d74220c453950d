package dev.shade.provider.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.testing.ChildJvm;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * Kills a child JVM with SIGKILL in the middle of random volume operations and checks the
 * recovered volume against an independent model.
 */
class CrashTrialTest {
  /*
   * Each trial makes a fresh 8 MiB volume (4 KiB blocks in even trials, 64 KiB in odd ones,
   * and a partial last block in every fifth) and runs CrashChild on it with a seeded script of
   * writes, flushes, snapshot creates and deletes, trims and write-zeroes. The child prints
   * "ACK i" once op i returned. The parent kills it with SIGKILL at a seeded point (after a
   * seeded ACK plus up to 3 ms, right after open, or at a random instant during start-up), reads
   * every line the child wrote before dying (ChildJvm.kill says why that needs ProcessHandle),
   * then replays the acknowledged ops on a VolumeModel and opens the volume itself. The rules:
   *
   *   - the snapshot list is exactly the model's, except that the op in flight at the kill (the
   *     one after the last ACK) may or may not have taken effect if it is a create or delete;
   *   - every snapshot reads back byte for byte the model's copy taken when it was created;
   *   - every origin byte not changed by an op issued after the last acknowledged flush or
   *     snapshot create equals the model (if the in-flight create exists, its flush happened,
   *     so then every byte must).
   *
   * A third of the trials run a second child on the same volume: the parent verifies a copy of
   * the crashed volume (so the original is recovered by the second child, not by the parent),
   * rebases the model's origin on what the copy recovered, and the second child must recover
   * the very same state (it prints a digest). Bytes that were undetermined stay undetermined
   * until the next acknowledged flush.
   *
   * Failures name the base seed, the trial, the last acknowledged op, the op in flight and the
   * first differing offset, and keep the trial directory (with its scripts and child stderr).
   * Rerun one trial with -Dshade.crash.seed=<base> -Dshade.crash.trial=<n>.
   */

  private static final long MIB = 1L << 20;
  /** Operations in one child's script; the kill comes before the end in most trials. */
  private static final int OPS_PER_RUN = 160;
  /** Most live snapshots a script keeps. */
  private static final int MAX_LIVE = 5;
  /** Far above what MAX_LIVE snapshots of 8 MiB can need, so overflow never deletes one. */
  private static final long DIFF_MAX = 64 * MIB;
  private static final Duration WAIT = Duration.ofSeconds(60);

  /** How many child runs ended in each way (where the kill landed), for the summary line. */
  private static final Map<String, Integer> KILLS = new TreeMap<>();

  @AfterAll
  static void printKillSummary() {
    synchronized (KILLS) {
      if (!KILLS.isEmpty()) {
        System.out.println("crash trials: where the kills landed: " + KILLS);
      }
    }
  }

  private static void count(String what) {
    synchronized (KILLS) {
      KILLS.merge(what, 1, Integer::sum);
    }
  }

  @Test
  void destroyForcibly_sendsSigkill(@TempDir Path tmp) throws Exception {
    Path viaProcess = tmp.resolve("hook-ran-after-Process.destroyForcibly");
    try (ChildJvm child = ChildJvm.start(tmp, ShutdownHookChild.class, viaProcess.toString())) {
      assertNotNull(child.awaitLine("READY", WAIT), child.output());
      assertEquals(ChildJvm.SIGKILL_STATUS, child.destroyForcibly(), "exit status after Process.destroyForcibly(); "
          + child.output());
    }
    assertFalse(Files.exists(viaProcess), "a shutdown hook ran, so Process.destroyForcibly() did not send SIGKILL");

    // what the crash trials use
    Path viaHandle = tmp.resolve("hook-ran-after-ProcessHandle.destroyForcibly");
    try (ChildJvm child = ChildJvm.start(tmp, ShutdownHookChild.class, viaHandle.toString())) {
      assertNotNull(child.awaitLine("READY", WAIT), child.output());
      assertEquals(ChildJvm.SIGKILL_STATUS, child.kill(), "exit status after ProcessHandle.destroyForcibly(); "
          + child.output());
    }
    assertFalse(Files.exists(viaHandle), "a shutdown hook ran, so ProcessHandle.destroyForcibly() did not send SIGKILL");

    // the same check tells SIGTERM apart: destroy() lets the hook run
    Path terminated = tmp.resolve("hook-ran-after-destroy");
    try (ChildJvm child = ChildJvm.start(tmp, ShutdownHookChild.class, terminated.toString())) {
      assertNotNull(child.awaitLine("READY", WAIT), child.output());
      assertEquals(ChildJvm.SIGTERM_STATUS, child.terminate(), "exit status after destroy(); " + child.output());
    }
    assertTrue(Files.exists(terminated), "the shutdown hook did not run after SIGTERM");
  }

  @Test
  void kill_keepsLinesWrittenJustBeforeTheKill(@TempDir Path tmp) throws Exception {
    for (int attempt = 0; attempt < 3; attempt++) {
      Path record = tmp.resolve("last-line-" + attempt);
      try (ChildJvm child = ChildJvm.start(tmp, FloodChild.class, record.toString())) {
        assertTrue(child.awaitAck(5000, WAIT), child.output());
        assertEquals(ChildJvm.SIGKILL_STATUS, child.kill(), child.output());
        long written = ByteBuffer.wrap(Files.readAllBytes(record)).getLong();
        assertTrue(child.lastAck() >= written, "the child had written ACK " + written
            + " before it died, but only ACK " + child.lastAck() + " was read");
        List<String> acks = child.linesStartingWith("ACK ");
        assertTrue(acks.get(acks.size() - 1).startsWith("ACK " + (acks.size() - 1) + " "), "ACK lines lost or out of order");
      }
    }
  }

  @TestFactory
  Stream<DynamicTest> open_afterSigkillDuringRandomOperations() {
    Long given = Long.getLong("shade.crash.seed");
    long base = given != null ? given : new SecureRandom().nextLong();
    int trials = Integer.getInteger("shade.crash.trials", 50);
    Integer only = Integer.getInteger("shade.crash.trial");
    System.out.println("crash trials: " + (only != null ? "trial " + only : trials + " trials")
        + ", base seed " + base + " (rerun one with -Dshade.crash.seed=" + base + " -Dshade.crash.trial=N)");
    IntStream which = only != null ? IntStream.of(only) : IntStream.range(0, trials);
    return which.mapToObj(t -> DynamicTest.dynamicTest("trial " + t + " (base seed " + base + ")", () -> trial(base, t)));
  }

  private static void trial(long base, int trial) throws Exception {
    long seed = new SplittableRandom(base ^ (trial * 0x9E3779B97F4A7C15L)).nextLong();
    SplittableRandom rnd = new SplittableRandom(seed);
    int blockSize = trial % 2 == 0 ? 4096 : 65536;
    long size = trial % 5 == 4 ? 8 * MIB + 12_345 : 8 * MIB;
    int runs = rnd.nextInt(3) == 0 ? 2 : 1;
    Path work = Files.createTempDirectory("shade-crash-trial" + trial + "-");
    Path dir = work.resolve("vol");
    try (Volume created = Volume.create(dir, new VolumeConfig(size, blockSize, DIFF_MAX, null, null))) {
      assertEquals(size, created.size(), "size of the new volume " + dir);
    }
    VolumeModel model = new VolumeModel(size);
    // origin bytes whose value is not determined: changed after the last durable point
    BitSet undetermined = new BitSet();
    for (int run = 1; run <= runs; run++) {
      String ctx = String.format("base seed %d, trial %d (seed %d), run %d of %d, block size %d, size %d, dir %s",
          base, trial, seed, run, runs, blockSize, size, work);
      List<Op> ops = OpGenerator.generate(
          rnd.nextLong(), "r" + run + "o", size, blockSize, model.snapshotNames(), OPS_PER_RUN, MAX_LIVE);
      Path script = work.resolve("ops-run" + run + ".txt");
      Op.writeAll(script, ops);
      Killed killed = runChild(rnd, work, dir, script, model, run, ctx);
      int lastAck = killed.lastAck();

      for (int i = 0; i <= lastAck; i++) {
        Op op = ops.get(i);
        model.apply(op);
        mark(op, undetermined);
      }
      Op inFlight = lastAck + 1 < ops.size() ? ops.get(lastAck + 1) : null;
      if (inFlight != null && inFlight.touchesOrigin()) {
        mark(inFlight, undetermined);
      }
      String where = ctx + ", last acknowledged op " + lastAck + ", op in flight "
          + (inFlight == null ? "none" : "#" + (lastAck + 1) + " " + inFlight);
      if (run < runs) {
        // verify a copy, so that the next child is the one that recovers the crashed volume
        Path copy = work.resolve("verified-run" + run);
        TestFiles.copyTree(dir, copy);
        verify(copy, model, undetermined, ops, lastAck, inFlight, where);
        TestFiles.deleteTree(copy);
      } else {
        verify(dir, model, undetermined, ops, lastAck, inFlight, where);
      }
      if (!killed.opened()) {
        count("before the volume was open");
      } else if (inFlight == null) {
        count("after the last op");
      } else if (inFlight.kind() == Op.Kind.CREATE || inFlight.kind() == Op.Kind.DELETE) {
        boolean tookEffect = inFlight.kind() == Op.Kind.CREATE
            ? model.snapshot(inFlight.name()) != null : model.snapshot(inFlight.name()) == null;
        count("before/in " + inFlight.kind() + (tookEffect ? " (done)" : " (not done)"));
      } else {
        count("before/in " + inFlight.kind());
      }
    }
    TestFiles.deleteTree(work);
  }

  /** Runs one child on {@code dir} and kills it at a seeded point. */
  private static Killed runChild(SplittableRandom rnd, Path work, Path dir, Path script, VolumeModel model, int run,
      String ctx) throws Exception {
    List<String> names = model.snapshotNames();
    int mode = rnd.nextInt(100);
    int target = rnd.nextInt(OPS_PER_RUN);
    long extraNanos = rnd.nextLong(3_000_000);
    long startupMillis = rnd.nextLong(700);
    long expectedDigest = model.digest();
    try (ChildJvm child = ChildJvm.start(work, CrashChild.class,
        dir.toString(), script.toString(), "-", names.isEmpty() ? "-" : String.join(",", names))) {
      String killedAt;
      // a second run kills more often during start-up, where the child recovers the crashed volume
      if (mode < (run == 1 ? 4 : 15)) {
        Thread.sleep(startupMillis);
        killedAt = startupMillis + " ms after start";
      } else if (mode < 20) {
        child.awaitLine("READY", WAIT);
        TestFiles.spin(extraNanos);
        killedAt = extraNanos / 1000 + " us after READY";
      } else {
        child.awaitAck(target, WAIT);
        TestFiles.spin(extraNanos);
        killedAt = extraNanos / 1000 + " us after seeing ACK " + target;
      }
      int status = child.kill();
      String info = ctx + ", killed " + killedAt + "; " + child.output();
      if (!child.linesStartingWith("ERROR").isEmpty()) {
        fail("child failed: " + info);
      }
      assertTrue(child.linesStartingWith("OVERFLOW").isEmpty(), "diff area overflowed although its limit is "
          + DIFF_MAX + ": " + info);
      assertEquals(ChildJvm.SIGKILL_STATUS, status, "child exit status (137 = killed by SIGKILL): " + info);
      List<String> ready = child.linesStartingWith("READY ");
      if (!ready.isEmpty()) {
        assertEquals(expectedDigest, Long.parseLong(ready.get(0).substring(6).trim()),
            "digest of the volume as the child opened it (after its own recovery) differs from the state "
                + "verified before: " + info);
      }
      return new Killed(child.lastAck(), !ready.isEmpty());
    }
  }

  /**
   * How a child run ended.
   *
   * @param lastAck index of the last acknowledged op, -1 for none
   * @param opened whether the child had opened the volume (printed READY)
   */
  private record Killed(int lastAck, boolean opened) {}

  private static void mark(Op op, BitSet undetermined) {
    if (op.makesDurable()) {
      undetermined.clear();
    } else if (op.touchesOrigin()) {
      undetermined.set((int) op.offset(), (int) (op.offset() + op.length()));
    }
  }

  /**
   * Opens the crashed volume in {@code dir} and checks it against {@code model}; resolves the
   * in-flight create or delete by what the volume shows, and rebases the model's origin on the
   * recovered one.
   */
  private static void verify(Path dir, VolumeModel model, BitSet undetermined, List<Op> ops, int lastAck,
      Op inFlight, String where) throws IOException {
    try (Volume volume = Volume.open(dir)) {
      List<SnapshotInfo> infos = volume.snapshots();
      List<String> actual = VolumeImages.names(infos);
      if (inFlight != null && inFlight.kind() == Op.Kind.CREATE && actual.contains(inFlight.name())) {
        model.apply(inFlight);
        // the create flushed before it took effect: every acknowledged write is durable
        undetermined.clear();
      }
      if (inFlight != null && inFlight.kind() == Op.Kind.DELETE && !actual.contains(inFlight.name())) {
        model.apply(inFlight);
      }
      assertEquals(model.snapshotNames(), actual, where + ": snapshots after recovery, oldest first");
      for (int i = 1; i < infos.size(); i++) {
        assertTrue(infos.get(i - 1).id() < infos.get(i).id(), where + ": snapshot ids not increasing: " + infos);
      }
      for (String name : actual) {
        byte[] expected = model.snapshot(name);
        byte[] got = VolumeImages.readSnapshot(volume, name);
        long at = VolumeImages.firstDifference(expected, got);
        if (at >= 0) {
          fail(where + ": snapshot '" + name + "' (created by op " + indexOfCreate(ops, name) + ") "
              + VolumeImages.describe(expected, got, at) + "; " + history(ops, lastAck + 1, at));
        }
      }
      byte[] origin = VolumeImages.readAll(volume);
      long at = VolumeImages.firstDifference(model.origin(), origin, undetermined);
      if (at >= 0) {
        fail(where + ": origin " + VolumeImages.describe(model.origin(), origin, at)
            + " although that byte is durable since the last acknowledged flush; " + history(ops, lastAck + 1, at));
      }
      model.rebase(origin);
    }
  }

  private static String indexOfCreate(List<Op> ops, String name) {
    for (int i = 0; i < ops.size(); i++) {
      if (ops.get(i).kind() == Op.Kind.CREATE && ops.get(i).name().equals(name)) {
        return "#" + i;
      }
    }
    return "of an earlier run";
  }

  /**
   * The last durable point of this run up to {@code last}, and the ops that changed byte
   * {@code pos}, newest first.
   */
  private static String history(List<Op> ops, int last, long pos) {
    StringBuilder sb = new StringBuilder();
    int from = Math.min(last, ops.size() - 1);
    for (int i = from; i >= 0; i--) {
      if (ops.get(i).makesDurable()) {
        sb.append("last flush or create of this run up to op ").append(from).append(": #").append(i);
        break;
      }
    }
    sb.append("; ops of this run that changed offset ").append(pos).append(", newest first:");
    int shown = 0;
    for (int i = from; i >= 0 && shown < 4; i--) {
      if (ops.get(i).covers(pos)) {
        sb.append(" #").append(i).append(' ').append(ops.get(i)).append(';');
        shown++;
      }
    }
    return shown == 0 ? sb.append(" none").toString() : sb.toString();
  }
}
