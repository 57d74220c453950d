package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.nbd.client.NbdClient;
import dev.shade.provider.Volume;
import dev.shade.requestor.agent.AgentMarker;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code shade agent} as a real process, and the volume and snapshot commands of this JVM going
 * through its control socket: same output, same JSON, same exit codes and error lines as when
 * they open the volume themselves; SIGTERM and SIGKILL; a second agent; attach and detach.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class AgentCommandTest {
  @TempDir Path tmp;
  /** Agents started by the test; killed afterwards if a test left one running. */
  @RegisterExtension final Leftovers started = new Leftovers();

  @Test
  void commands_throughTheAgent_answerAsTheyDoWithoutIt() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "4M");
    Path data = TestVolumes.file(tmp, "data.bin", TestVolumes.random(3, 512 * 1024));
    Cli.run("volume", "import", db, data).ok();
    Path control = tmp.resolve("control.sock");
    AgentProcess a = agent(control, db);
    assertTrue(Files.exists(db.resolve(AgentMarker.FILE)), "the agent marks the volume it holds");

    Cli.Result created = Cli.run("snapshot", "create", db, "--name", "one", "--json").ok();
    JsonNode snap = created.json().get("snapshots").get(0);
    assertEquals("one", snap.get("name").asText());
    assertTrue(snap.get("id").asLong() > 0 && !snap.get("volumeUuid").asText().isEmpty(), created::toString);
    Cli.run("volume", "import", db, data, "--offset", "1M").ok();
    Cli.run("snapshot", "create", db, "--name", "two", "--attribute", "writer=test",
        "--attribute", "label=line one\nline two\n").ok();

    // the same commands with the agent, then without it, on an unchanged volume
    List<List<Object>> commands = List.of(
        List.of("snapshot", "list", db), List.of("snapshot", "list", db, "--json"),
        List.of("volume", "info", db), List.of("volume", "info", db, "--json"),
        List.of("snapshot", "diff", db, "one"), List.of("snapshot", "diff", db, "one", "two", "--json"),
        List.of("snapshot", "delete", db, "nope"), List.of("snapshot", "diff", db, "nope"),
        List.of("snapshot", "create", db, "--name", "one"),
        List.of("snapshot", "export", db, "one", tmp.resolve("data.bin")),
        List.of("snapshot", "show", db, "two"), List.of("snapshot", "show", db, "id=1", "--json"),
        List.of("snapshot", "show", db, "nope"));
    List<Cli.Result> viaAgent = new ArrayList<>();
    for (List<Object> c : commands) {
      viaAgent.add(Cli.run(c.toArray()));
    }
    Path img = tmp.resolve("one.img");
    Cli.Result exported = Cli.run("snapshot", "export", db, "one", img, "--json").ok();
    assertEquals(4L << 20, exported.json().get("size").asLong());
    assertEquals(Files.size(data), exported.json().get("dataBytes").asLong(), "the snapshot holds the first import");

    assertEquals(0, a.stop(), a::toString);
    assertFalse(Files.exists(control), "socket removed on stop");
    assertFalse(Files.exists(db.resolve(AgentMarker.FILE)), "marker removed on stop");
    for (int i = 0; i < commands.size(); i++) {
      Cli.Result direct = Cli.run(commands.get(i).toArray());
      assertEquals(direct.toString(), viaAgent.get(i).toString(), "same answer for " + commands.get(i));
    }
    assertEquals(1, viaAgent.get(6).code(), "a missing snapshot fails with exit 1");
    assertTrue(viaAgent.get(9).err().contains("pass --force"), viaAgent.get(9)::toString);
    assertTrue(viaAgent.get(10).out().contains("  label:\n    line one\n    line two\n"), viaAgent.get(10)::toString);
    assertEquals(1, viaAgent.get(12).code(), viaAgent.get(12)::toString);
  }

  @Test
  void sigkill_leavesAStaleMarkerThatCommandsAndANewAgentGetPast() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    Path control = tmp.resolve("control.sock");
    AgentProcess a = agent(control, db);
    Cli.run("snapshot", "create", db, "--name", "before").ok();
    a.process().destroyForcibly(); // SIGKILL
    assertTrue(a.process().waitFor(30, TimeUnit.SECONDS));
    assertTrue(Files.exists(db.resolve(AgentMarker.FILE)), "a killed agent cannot remove its marker");

    Cli.Result list = Cli.run("snapshot", "list", db, "--json").ok();
    assertEquals("before", list.json().get(0).get("name").asText(), "opened here, past the stale marker");

    AgentProcess b = agent(control, db);
    Cli.run("snapshot", "create", db, "--name", "after").ok();
    assertEquals(2, Cli.run("snapshot", "list", db, "--json").ok().json().size());
    assertEquals(0, b.stop(), b::toString);
  }

  @Test
  void secondAgent_onTheSameVolume_isRefusedClearly() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    AgentProcess a = agent(tmp.resolve("one.sock"), db);
    Cli.Result second = Cli.run("agent", db, "--control-socket", tmp.resolve("two.sock"), "--listen", "127.0.0.1:0");
    assertEquals(1, second.code(), second::toString);
    assertTrue(second.err().contains("in use") && second.err().contains("held by the agent with pid " + a.process().pid()),
        second::toString);
    assertEquals(0, a.stop(), a::toString);
  }

  @Test
  void attachAndDetach_whileRunning() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    Path wal = TestVolumes.create(tmp.resolve("wal"), "1M");
    Path control = tmp.resolve("control.sock");
    Path nbd = tmp.resolve("nbd.sock");
    AgentProcess a = start(List.of(db, "--control-socket", control, "--socket", nbd), control);
    Cli.run("agent", "attach", wal, "--control-socket", control).ok();
    assertTrue(Files.exists(wal.resolve(AgentMarker.FILE)));
    NbdClient reader = NbdClient.connect("nbd+unix:///wal?socket=" + nbd);
    assertEquals(1L << 20, reader.size(), "an attached volume is served at once");
    JsonNode status = Cli.run("agent", "status", "--control-socket", control, "--json").ok().json();
    assertEquals(2, status.get("volumes").size(), status::toString);
    assertEquals(a.process().pid(), status.get("pid").asLong());

    JsonNode set = Cli.run("snapshot", "create", db, wal, "--name", "both", "--json").ok().json();
    assertFalse(set.get("setId").isNull(), "one atomic set across both volumes of the agent: " + set);

    Cli.run("agent", "detach", wal, "--control-socket", control).ok();
    assertFalse(Files.exists(wal.resolve(AgentMarker.FILE)));
    assertThrows(IOException.class, () -> reader.read(0, 4096), "the client of a detached volume is disconnected");
    reader.close();
    assertThrows(IOException.class, () -> NbdClient.connect("nbd+unix:///wal?socket=" + nbd), "and the export is gone");
    try (Volume v = Volume.open(wal)) {
      assertEquals("both", v.snapshots().get(0).name(), "detached: closed, unlocked, intact");
    }
    Cli.run("agent", "stop", "--control-socket", control).ok();
    assertTrue(a.process().waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, a.process().exitValue(), a::toString);
    assertFalse(Files.exists(control));
  }

  @Test
  void revert_isRefusedWhileAnNbdClientMayWriteTheOrigin() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    Path control = tmp.resolve("control.sock");
    Path nbd = tmp.resolve("nbd.sock");
    AgentProcess a = start(List.of(db, "--control-socket", control, "--socket", nbd), control);
    Cli.run("snapshot", "create", db, "--name", "good").ok();
    try (NbdClient writer = NbdClient.connect("nbd+unix:///db?socket=" + nbd)) {
      writer.write(0, new byte[4096]);
      Cli.Result refused = Cli.run("volume", "revert", db, "good", "--yes");
      assertEquals(1, refused.code(), refused::toString);
      assertTrue(refused.err().contains("open for writing"), refused::toString);
      try (NbdClient snapshotReader = NbdClient.connect("nbd+unix:///db@good?socket=" + nbd)) {
        assertEquals(1L << 20, snapshotReader.size(), "readers of snapshots do not stand in the way");
      }
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    Cli.Result r;
    do { // the server notices the client's disconnect a moment later
      r = Cli.run("volume", "revert", db, "good", "--yes");
    } while (r.code() != 0 && System.nanoTime() < deadline);
    assertEquals(0, r.code(), r.toString());
    assertTrue(r.out().contains("Reverted volume 'db' to snapshot 'good'"), r::toString);
    assertEquals(0, a.stop(), a::toString);
  }

  @Test
  void configFile_namesSocketVolumesAndListener() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    Path config = tmp.resolve("agent.json");
    Files.writeString(config, "{\"control\": \"ctl.sock\", \"volumes\": [\"db\"], "
        + "\"nbd\": {\"socket\": \"nbd.sock\", \"idleTimeout\": \"5m\"}}\n");
    AgentProcess a = start(List.of("--config", config), tmp.resolve("ctl.sock"));
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(tmp.resolve("ctl.sock"))));
    assertTrue(Files.exists(tmp.resolve("nbd.sock")), a::toString);
    Cli.run("snapshot", "create", db).ok();
    assertEquals(0, a.stop(), a::toString);

    Files.writeString(config, "{\"volumes\": [\"db\"], \"nbd\": {\"lisen\": \"127.0.0.1:0\"}}\n");
    Cli.Result bad = Cli.run("agent", "--config", config);
    assertEquals(1, bad.code(), bad::toString);
    assertTrue(bad.err().contains("unknown key \"nbd.lisen\""), bad::toString);
  }

  // ---------------------------------------------------------------- helpers

  private AgentProcess agent(Path control, Path dir) throws Exception {
    return start(List.of(dir, "--control-socket", control, "--listen", "127.0.0.1:0"), control);
  }

  private AgentProcess start(List<Object> args, Path control) throws Exception {
    AgentProcess a = AgentProcess.start(tmp, args, control);
    started.add(a.process());
    return a;
  }
}
