package dev.shade.cli;

import static dev.shade.cli.AgentProcess.source;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A backup whose NBD connections are cut while its archive is being written: a real agent serving
 * a volume on a Unix socket, a proxy in front of it that closes both sides of a connection after
 * some bytes, a virtual tape library. Cut once, the backup reconnects, reads again what the cut
 * lost and ends good, its restore equal to the snapshot. Cut on every connection, it gives up
 * after its retries: the job fails naming the source, the catalog keeps nothing of it as good, and
 * the cartridge goes on: the next backup appends after the torn tape file and restores byte for
 * byte, the earlier job still restores, verify passes, and a catalog rebuilt from the tapes has the
 * same good jobs and not the torn one. The same with the agent itself killed with SIGKILL
 * mid-archive; killed and started again at once, the backup reconnects to it and is good.
 */
class BackupConnectionCutTest {
  private static final int MiB = 1024 * 1024;
  @TempDir Path tmp;
  @RegisterExtension final Leftovers started = new Leftovers();

  @Test
  void connectionCutMidArchive_jobFailsNamingTheSource_cartridgeGoesOn_rebuildKeepsOnlyGoodJobs() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "32M");
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "a.bin", TestVolumes.random(1, 16 * MiB))).ok();
    Path lib = tmp.resolve("vtl");
    Cli.run("tape", "library", "create", lib, "--slots", "2", "--capacity", "256M").ok();
    AgentProcess agent = started.agent(tmp, db);
    Path control = tmp.resolve("control.sock");
    Path nbd = tmp.resolve("nbd.sock");

    // job 1: a good full of s1
    Cli.run("snapshot", "create", db, "--name", "s1").ok();
    Cli.run("backup", "run", "--source", source(nbd, "s1"), "--library", lib, "--chunk-size", "1M").ok();

    // job 2: a full of s2 through a proxy that cuts every connection after 1 MiB of replies, the
    // new ones the backup opens to read again too
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "b.bin", TestVolumes.random(2, 4 * MiB)), "--offset",
        "20M").ok();
    Cli.run("snapshot", "create", db, "--name", "s2").ok();
    Path cartridge = lib.resolve("slot-0001.tape");
    Cli.Result cut;
    Path proxySocket = tmp.resolve("cut.sock");
    try (CuttingProxy proxy = CuttingProxy.cutting(proxySocket, nbd, MiB)) {
      cut = Cli.run("backup", "run", "--source", source(proxySocket, "s2"), "--library", lib, "--level", "full",
          "--chunk-size", "1M");
      assertTrue(proxy.cuts() > 1, "the proxy cut the connections it was given: " + proxy.cuts() + " " + cut);
    }
    assertTrue(cut.err().contains("reconnect"), () -> "the backup reconnected before it gave up: " + cut);
    assertEquals(1, cut.code(), cut::toString);
    System.out.println("connection cut by the proxy: " + cut.errLines().get(cut.errLines().size() - 1));
    assertTrue(cut.err().contains("db@s2") && cut.err().contains(proxySocket.toString()),
        () -> "the error names the snapshot and its export: " + cut);
    assertTrue(cut.err().contains("cannot read chunk data/"), cut::toString);
    // how much of the cut archive reached the cartridge depends on how far the reads ran ahead of
    // the writing (up to 64 MiB), so none of it may have: what follows holds either way

    JsonNode jobs = jobs(lib);
    assertEquals(2, jobs.size(), jobs::toString);
    JsonNode torn = jobs.get(1);
    assertEquals("failed", torn.get("outcome").asText(), torn::toString);
    assertTrue(torn.get("message").asText().contains("cannot read chunk"), torn::toString);
    assertTrue(torn.get("archive") == null || torn.get("archive").isNull(), "no archive recorded: " + torn);
    JsonNode shown = Cli.run("catalog", "show", "2", "--library", lib, "--json").ok().json();
    assertTrue(shown.path("chunks").isMissingNode() || shown.path("chunks").isEmpty(), shown::toString);

    // job 3: s2 again, straight from the agent: an incremental since s1, appended after the torn file
    JsonNode again = Cli.run("backup", "run", "--source", source(nbd, "s2"), "--library", lib, "--json").ok().json();
    assertEquals("SHD001", again.get("cartridge").asText());
    assertEquals("incremental", again.get("level").asText(), again::toString);
    assertTrue(again.get("fileNumber").asInt() > 3, "after job 1's archive and record and the torn file: " + again);
    Path s1 = export(db, "s1");
    Path s2 = export(db, "s2");
    assertImagesEqual(s2, restore(lib, "s2", "s2.restored"));
    assertImagesEqual(s1, restore(lib, "s1", "s1.restored"));

    Cli.Result verify = Cli.run("verify", "--library", lib, "--json");
    assertEquals(0, verify.code(), verify::toString);

    // the tapes alone: the same good jobs, the torn one not good
    Cli.Result rebuilt = Cli.run("catalog", "rebuild", "--library", lib, "--force");
    assertEquals(0, rebuilt.code(), () -> "the failed job has its record on tape: " + rebuilt);
    JsonNode after = jobs(lib);
    assertEquals(okJobs(jobs(lib)), List.of(1L, 3L), () -> "rebuilt: " + rebuilt + " jobs: " + after);
    for (JsonNode j : after) {
      if (j.get("jobId").asLong() == 2) {
        assertEquals("failed", j.get("outcome").asText(), j::toString);
        assertTrue(j.path("archive").isMissingNode() || j.path("archive").isNull(), j::toString);
      }
    }
    assertImagesEqual(s2, restore(lib, "s2", "s2.again"));
    assertEquals(0, Cli.run("verify", "--library", lib).code());
    assertFalse(Files.size(cartridge) == 0);
    agent.stop();
  }

  @Test
  void connectionCutOnceMidArchive_theBackupReconnectsReadsAgainAndIsGood() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "32M");
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "a.bin", TestVolumes.random(5, 24 * MiB))).ok();
    Path lib = tmp.resolve("vtl");
    Cli.run("tape", "library", "create", lib, "--slots", "2", "--capacity", "256M").ok();
    AgentProcess agent = started.agent(tmp, db);
    Path nbd = tmp.resolve("nbd.sock");
    Cli.run("snapshot", "create", db, "--name", "s1").ok();
    Path proxySocket = tmp.resolve("cut.sock");
    Cli.Result once;
    try (CuttingProxy proxy = CuttingProxy.cuttingOnce(proxySocket, nbd, 3L * MiB)) {
      once = Cli.run("backup", "run", "--source", source(proxySocket, "s1"), "--library", lib, "--level", "full",
          "--chunk-size", "1M", "--json");
      assertEquals(1, proxy.cuts(), "the proxy cut one connection: " + once);
    }
    assertEquals(0, once.code(), once::toString);
    JsonNode job = once.json();
    assertTrue(job.get("notes").toString().contains("broke 1 time; the backup reconnected"), () -> "the reconnect is told: "
        + job);
    assertEquals("full", job.get("level").asText(), job::toString);
    assertEquals(1, job.get("reconnects").asInt(), job::toString);
    assertEquals(List.of(1L), okJobs(jobs(lib)));
    assertImagesEqual(export(db, "s1"), restore(lib, "s1", "s1.restored"));
    assertEquals(0, Cli.run("verify", "--library", lib).code());
    agent.stop();
  }

  @Test
  void agentKilledMidArchive_jobFailsNamingTheSource_theBackupAfterItsRestartIsGood() throws Exception {
    Path db = tmp.resolve("db");
    Path lib = tmp.resolve("vtl");
    Path control = tmp.resolve("control.sock");
    Path nbd = tmp.resolve("nbd.sock");
    List<Object> agentArgs = List.of(db, "--control-socket", control, "--socket", nbd);
    AgentProcess agent = servedWithLibrary(db, 3, lib, agentArgs, control);
    Path s1 = export(db, "s1");
    Path slow = tmp.resolve("slow.sock");
    Cli.Result cut = backupKillingTheAgent(lib, slow, nbd, agent, () -> {});
    assertEquals(1, cut.code(), cut::toString);
    System.out.println("agent killed: " + cut.errLines().get(cut.errLines().size() - 1));
    assertTrue(cut.err().contains("cannot read chunk data/") && cut.err().contains("db@s1")
        && cut.err().contains(slow.toString()), cut::toString);
    JsonNode jobs = jobs(lib);
    assertEquals(1, jobs.size(), jobs::toString);
    assertEquals("failed", jobs.get(0).get("outcome").asText());

    // the agent restarted (a SIGKILL leaves its sockets behind, which the operator removes): the same
    // snapshot backs up and restores
    Files.deleteIfExists(nbd);
    Files.deleteIfExists(control);
    agent = AgentProcess.start(tmp, agentArgs, control);
    started.add(agent.process());
    JsonNode again = Cli.run("backup", "run", "--source", source(nbd, "s1"), "--library", lib, "--json").ok().json();
    assertEquals("full", again.get("level").asText(), "no good backup before it: " + again);
    assertImagesEqual(s1, restore(lib, "s1", "s1.restored"));
    assertEquals(0, Cli.run("verify", "--library", lib).code());
    assertEquals(List.of(2L), okJobs(jobs(lib)));
    agent.stop();
  }

  @Test
  void agentRestartedMidArchive_theBackupReconnectsToItAndIsGood() throws Exception {
    Path db = tmp.resolve("db");
    Path lib = tmp.resolve("vtl");
    Path control = tmp.resolve("control.sock");
    Path nbd = tmp.resolve("nbd.sock");
    List<Object> agentArgs = List.of(db, "--control-socket", control, "--socket", nbd);
    AgentProcess[] agent = {servedWithLibrary(db, 6, lib, agentArgs, control)};
    Path s1 = export(db, "s1");
    // as in the test above, but the agent is started again at once, as systemd's Restart= would
    Cli.Result r = backupKillingTheAgent(lib, tmp.resolve("slow.sock"), nbd, agent[0], () -> {
      Files.deleteIfExists(nbd);
      Files.deleteIfExists(control);
      agent[0] = AgentProcess.start(tmp, agentArgs, control);
      started.add(agent[0].process());
    }, "--json");
    assertEquals(0, r.code(), r::toString);
    JsonNode job = r.json();
    assertTrue(job.get("reconnects").asInt() >= 1, job::toString);
    assertEquals(List.of(1L), okJobs(jobs(lib)));
    assertImagesEqual(s1, restore(lib, "s1", "s1.restored"));
    assertEquals(0, Cli.run("verify", "--library", lib).code());
    agent[0].stop();
  }

  /** A 32 MiB volume {@code db} with 16 MiB of random data, served by an agent with {@code agentArgs}, its snapshot s1; an empty library. */
  private AgentProcess servedWithLibrary(Path db, long seed, Path lib, List<Object> agentArgs, Path control)
      throws Exception {
    TestVolumes.create(db, "32M");
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "a.bin", TestVolumes.random(seed, 16 * MiB))).ok();
    Cli.run("tape", "library", "create", lib, "--slots", "2", "--capacity", "256M").ok();
    AgentProcess agent = AgentProcess.start(tmp, agentArgs, control);
    started.add(agent.process());
    Cli.run("snapshot", "create", db, "--name", "s1").ok();
    return agent;
  }

  /** What runs right after the agent is killed. */
  interface AfterKill {
    void run() throws Exception;
  }

  /**
   * A backup of s1 through a proxy on {@code slow} held to 8 MiB/s; the agent is killed with
   * SIGKILL 4 MiB into the snapshot, then {@code afterKill} runs; the backup's result once it ended.
   */
  private Cli.Result backupKillingTheAgent(Path lib, Path slow, Path nbd, AgentProcess agent, AfterKill afterKill,
      String... more) throws Exception {
    Cli.Result[] result = new Cli.Result[1];
    List<Object> args = new ArrayList<>(List.of("backup", "run", "--source", source(slow, "s1"), "--library", lib,
        "--chunk-size", "1M"));
    args.addAll(List.of((Object[]) more));
    try (CuttingProxy proxy = CuttingProxy.throttled(slow, nbd, 8L * MiB)) {
      Thread backup = new Thread(() -> result[0] = Cli.run(args.toArray()));
      backup.start();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      // 4 MiB of the snapshot delivered (the backup reads far ahead of what it has written, so the
      // proxy, not the cartridge, tells how far the reading is)
      while (proxy.sentToClients() < 4L * MiB) {
        assertTrue(backup.isAlive(), () -> "the backup ended before the agent was killed: " + result[0]);
        assertTrue(System.nanoTime() < deadline, "4 MiB did not go through the proxy within 30 s");
        Thread.sleep(2);
      }
      agent.kill();
      afterKill.run();
      backup.join(TimeUnit.SECONDS.toMillis(90));
      assertFalse(backup.isAlive(), "the backup ends");
    }
    return result[0];
  }

  static List<Long> okJobs(JsonNode jobs) {
    List<Long> ok = new ArrayList<>();
    for (JsonNode j : jobs) {
      if (j.get("outcome").asText().equals("ok")) {
        ok.add(j.get("jobId").asLong());
      }
    }
    return ok;
  }

  static JsonNode jobs(Path lib) {
    return Cli.run("catalog", "list", lib, "--json").ok().json().get("jobs");
  }

  private Path export(Path db, String snapshot) {
    Path p = tmp.resolve(snapshot + ".export");
    Cli.run("snapshot", "export", db, snapshot, p).ok();
    return p;
  }

  private Path restore(Path lib, String snapshot, String name) {
    Path p = tmp.resolve(name);
    Cli.run("restore", "--volume", "db", "--snapshot", snapshot, "--library", lib, "--to", p).ok();
    return p;
  }


  static void assertImagesEqual(Path expected, Path actual) throws Exception {
    assertEquals(Files.size(expected), Files.size(actual), actual::toString);
    assertEquals(-1L, Files.mismatch(expected, actual), () -> actual + " differs from " + expected);
  }
}
