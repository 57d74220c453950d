package dev.shade.provider.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.SnapshotSet;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.testing.ChildJvm;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Kills a child JVM with SIGKILL while it commits snapshot sets over three volumes, often
 * between two members' records, and checks after reopening the volumes together that every
 * set is on all of them or on none, and that every snapshot reads back what it held.
 */
class SetCrashTrialTest {
  /*
   * Each trial makes three fresh 2 MiB volumes (4 KiB blocks in even trials, 64 KiB in odd
   * ones) and runs SetCrashChild on them with a seeded script: random writes to random
   * volumes, flushes, and a snapshot set of all three every few ops. The child runs with
   * shade.test.setMemberPauseMs=PAUSE_MS, so the members' create records lie PAUSE_MS apart.
   * The parent waits for the ACK of the op before a seeded set commit and kills the child a
   * seeded 0..(2 PAUSE_MS + 300) ms later: before the first record, between two, or after the
   * last. Then it opens each volume alone (recovery), records which members of the in-flight
   * set survived, reconciles the three (SnapshotSet.reconcile), and checks against a model of
   * plain byte arrays:
   *
   *   - every acknowledged set is on all three volumes;
   *   - the set in flight at the kill is on all three or on none, and when the kill left it on
   *     some members only, reconcile reported it removed;
   *   - every snapshot reads back byte for byte the model's copy of its volume taken when the
   *     set was committed;
   *   - a second reconcile, and Volume.openAll on the result, change nothing.
   *
   * Failures name the base seed and the trial. Rerun one trial with
   * -Dshade.setcrash.seed=<base> -Dshade.setcrash.trial=<n>.
   */
  private static final int VOLUMES = 3;
  private static final long SIZE = 2L << 20;
  private static final long PAUSE_MS = 120;
  private static final int OPS = 60;
  private static final Duration WAIT = Duration.ofSeconds(60);

  /** Where the kills landed, for the summary line and the coverage check. */
  private static final Map<String, Integer> KILLS = new TreeMap<>();

  @AfterAll
  static void printKillSummary() {
    synchronized (KILLS) {
      if (!KILLS.isEmpty()) {
        System.out.println("set crash trials: where the kills landed (members that had the set): " + KILLS);
      }
    }
  }

  @TestFactory
  Stream<DynamicTest> reconcile_afterSigkillDuringSetCommit() {
    Long given = Long.getLong("shade.setcrash.seed");
    long base = given != null ? given : new SecureRandom().nextLong();
    int trials = Integer.getInteger("shade.setcrash.trials", 12);
    Integer only = Integer.getInteger("shade.setcrash.trial");
    System.out.println("set crash trials: " + (only != null ? "trial " + only : trials + " trials")
        + ", base seed " + base + " (rerun one with -Dshade.setcrash.seed=" + base + " -Dshade.setcrash.trial=N)");
    IntStream which = only != null ? IntStream.of(only) : IntStream.range(0, trials);
    Stream<DynamicTest> runs = which.mapToObj(t ->
        DynamicTest.dynamicTest("trial " + t + " (base seed " + base + ")", () -> trial(base, t)));
    if (only != null) {
      return runs;
    }
    return Stream.concat(runs, Stream.of(DynamicTest.dynamicTest("kills landed between members", () -> {
      synchronized (KILLS) {
        int between = 0;
        for (Map.Entry<String, Integer> e : KILLS.entrySet()) {
          if (e.getKey().startsWith("1 of") || e.getKey().startsWith("2 of")) {
            between += e.getValue();
          }
        }
        assertTrue(trials < 6 || between > 0, "no kill landed between two members' records: " + KILLS);
      }
    })));
  }

  private static void trial(long base, int trial) throws Exception {
    long seed = new SplittableRandom(base ^ (trial * 0x9E3779B97F4A7C15L)).nextLong();
    SplittableRandom rnd = new SplittableRandom(seed);
    int blockSize = trial % 2 == 0 ? 4096 : 65536;
    Path work = Files.createTempDirectory("shade-setcrash-trial" + trial + "-");
    String ctx = String.format("base seed %d, trial %d (seed %d), block size %d, dir %s", base, trial, seed, blockSize, work);
    List<Path> dirs = new ArrayList<>();
    for (int v = 0; v < VOLUMES; v++) {
      Path dir = work.resolve("vol" + v);
      dirs.add(dir);
      Volume.create(dir, new VolumeConfig(SIZE, blockSize, 16 * SIZE, null, null)).close();
    }
    // the script, and the model of what each acknowledged op leaves
    List<String> script = new ArrayList<>();
    List<Integer> setOps = new ArrayList<>();
    for (int i = 0; i < OPS; i++) {
      int kind = rnd.nextInt(100);
      if (kind < 15 && i > 0) {
        script.add("S set" + i);
        setOps.add(i);
      } else if (kind < 20) {
        script.add("F");
      } else {
        long off = rnd.nextLong(SIZE);
        long len = 1 + rnd.nextLong(Math.min(SIZE - off, 3L * blockSize));
        script.add("W " + rnd.nextInt(VOLUMES) + " " + off + " " + len + " " + rnd.nextLong());
      }
    }
    if (setOps.isEmpty()) {
      script.set(OPS / 2, "S set" + OPS / 2);
      setOps.add(OPS / 2);
    }
    Path scriptFile = work.resolve("script.txt");
    Files.write(scriptFile, script, StandardCharsets.US_ASCII);
    int target = setOps.get(rnd.nextInt(setOps.size()));
    long killAfterMillis = rnd.nextLong(2 * PAUSE_MS + 300);

    int lastAck;
    try (ChildJvm child = ChildJvm.start(work, List.of("-Dshade.test.setMemberPauseMs=" + PAUSE_MS),
        SetCrashChild.class, String.join(",", dirs.stream().map(Path::toString).toList()), scriptFile.toString())) {
      child.awaitAck(target - 1, WAIT);
      Thread.sleep(killAfterMillis);
      int status = child.kill();
      String info = ctx + ", killed " + killAfterMillis + " ms after ACK " + (target - 1) + "; " + child.output();
      if (!child.linesStartingWith("ERROR").isEmpty()) {
        fail("child failed: " + info);
      }
      assertEquals(ChildJvm.SIGKILL_STATUS, status, "child exit status (137 = killed by SIGKILL): " + info);
      lastAck = child.lastAck();
    }

    // the model: apply what was acknowledged
    byte[][] origin = new byte[VOLUMES][(int) SIZE];
    List<Map<String, byte[]>> snaps = new ArrayList<>();
    for (int v = 0; v < VOLUMES; v++) {
      snaps.add(new LinkedHashMap<>());
    }
    for (int i = 0; i <= lastAck + 1 && i < script.size(); i++) {
      String[] f = script.get(i).split(" ");
      boolean acked = i <= lastAck;
      if (f[0].equals("W") && acked) {
        int len = Integer.parseInt(f[3]);
        System.arraycopy(Op.data(Long.parseLong(f[4]), len), 0, origin[Integer.parseInt(f[1])], Integer.parseInt(f[2]), len);
      } else if (f[0].equals("S")) {
        for (int v = 0; v < VOLUMES; v++) {
          snaps.get(v).put(f[1], origin[v].clone()); // the in-flight one too: it may exist
        }
      }
    }
    String inFlight = lastAck + 1 < script.size() && script.get(lastAck + 1).startsWith("S ")
        ? script.get(lastAck + 1).substring(2) : null;
    String where = ctx + ", last acknowledged op " + lastAck + ", set in flight " + inFlight;

    // each volume alone first: recovery only, no reconciliation
    int had = 0;
    for (Path d : dirs) {
      try (Volume v = Volume.open(d)) {
        if (inFlight != null && VolumeImages.names(v.snapshots()).contains(inFlight)) {
          had++;
        }
      }
    }
    synchronized (KILLS) {
      KILLS.merge(inFlight == null ? "not in a set commit" : had + " of " + VOLUMES, 1, Integer::sum);
    }

    List<Volume> volumes = new ArrayList<>();
    try {
      for (Path d : dirs) {
        volumes.add(Volume.open(d));
      }
      SnapshotSet.Reconciliation r = SnapshotSet.reconcile(volumes);
      if (had > 0 && had < VOLUMES) {
        assertEquals(1, r.removed().size(), where + ": the set on " + had + " of " + VOLUMES + " volumes was not removed: " + r);
        assertEquals(inFlight, r.removed().get(0).snapshotName(), where);
      } else {
        assertEquals(List.of(), r.removed(), where + ": reconcile removed a set that was whole or absent");
      }
      assertEquals(List.of(), r.unverified(), where);
      check(volumes, script, lastAck, inFlight, had == VOLUMES, snaps, where);
      SnapshotSet.Reconciliation again = SnapshotSet.reconcile(volumes);
      assertEquals(List.of(), again.removed(), where + ": second reconcile");
    } finally {
      for (Volume v : volumes) {
        v.close();
      }
    }
    List<Volume> reopened = Volume.openAll(dirs);
    try {
      check(reopened, script, lastAck, inFlight, had == VOLUMES, snaps, where + " (after openAll)");
    } finally {
      for (Volume v : reopened) {
        v.close();
      }
    }
    TestFiles.deleteTree(work);
  }

  private static void check(List<Volume> volumes, List<String> script, int lastAck, String inFlight, boolean inFlightKept,
      List<Map<String, byte[]>> snaps, String where) throws Exception {
    List<String> expected = new ArrayList<>();
    for (int i = 0; i <= lastAck; i++) {
      if (script.get(i).startsWith("S ")) {
        expected.add(script.get(i).substring(2));
      }
    }
    if (inFlight != null && inFlightKept) {
      expected.add(inFlight);
    }
    String setId = null;
    for (int v = 0; v < VOLUMES; v++) {
      Volume vol = volumes.get(v);
      List<SnapshotInfo> infos = vol.snapshots();
      assertEquals(expected, VolumeImages.names(infos), where + ": snapshots of volume " + v);
      for (SnapshotInfo s : infos) {
        byte[] want = snaps.get(v).get(s.name());
        byte[] got = VolumeImages.readSnapshot(vol, s.name());
        long at = VolumeImages.firstDifference(want, got);
        if (at >= 0) {
          fail(where + ": snapshot '" + s.name() + "' of volume " + v + " " + VolumeImages.describe(want, got, at));
        }
        assertTrue(s.setId() != null, where + ": snapshot " + s + " has no set id");
      }
      if (!infos.isEmpty()) {
        String last = infos.get(infos.size() - 1).setId();
        if (setId == null) {
          setId = last;
        } else {
          assertEquals(setId, last, where + ": newest set id differs on volume " + v);
        }
      }
    }
  }
}
