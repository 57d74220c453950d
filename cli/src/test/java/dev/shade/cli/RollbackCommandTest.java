package dev.shade.cli;

import static dev.shade.cli.VolumeCommandTest.assertFails;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.nbd.client.NbdClient;
import dev.shade.requestor.agent.Agent;
import dev.shade.requestor.agent.AgentConfig;
import java.io.IOException;
import java.time.Duration;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RollbackCommandTest {
  private static final int MIB = 1 << 20;

  @TempDir Path tmp;

  /** A 1 MiB volume with snapshots s1 (data v1), s2 (v2 over part of it), then v3 written. */
  private Path dir;
  private byte[] atS1;

  @BeforeEach
  void threeGenerations() throws IOException {
    dir = TestVolumes.create(tmp.resolve("db"), "1M");
    byte[] v1 = TestVolumes.random(1, 256 * 1024);
    Cli.run("volume", "import", dir, TestVolumes.file(tmp, "v1", v1)).ok();
    Cli.run("snapshot", "create", dir, "--name", "s1").ok();
    Cli.run("volume", "import", dir, TestVolumes.file(tmp, "v2", TestVolumes.random(2, 64 * 1024)), "--offset", "16K").ok();
    Cli.run("snapshot", "create", dir, "--name", "s2").ok();
    Cli.run("volume", "import", dir, TestVolumes.file(tmp, "v3", TestVolumes.random(3, 8192)), "--offset", "512K").ok();
    atS1 = TestVolumes.placed(v1, 0, MIB);
  }

  private List<String> names() throws IOException {
    return TestVolumes.state(dir).snapshots().stream().map(s -> s.name()).toList();
  }

  @Test
  void rollback_withYes_showsThePlanRevertsKeepsEverySnapshotAndSaysHowToUndo() throws IOException {
    byte[] now = TestVolumes.image(dir);
    Cli.Result r = Cli.run("rollback", dir, "--to", "s1", "--yes").ok();
    assertTrue(r.out().contains("Rolling volume 'db' back to snapshot 's1'"), r::toString);
    assertTrue(r.out().contains("newer snapshots are kept: s2"), r::toString);
    assertTrue(r.out().contains("Rolled volume 'db' back to snapshot 's1'"), r::toString);
    assertTrue(r.out().contains("before-snapshot before-rollback-"), r::toString);
    assertArrayEquals(atS1, TestVolumes.image(dir));
    List<String> names = names();
    assertEquals(3, names.size(), names::toString);
    String before = names.get(2);
    assertTrue(before.startsWith("before-rollback-"), before);
    assertTrue(r.out().contains("Undo with: shade rollback " + dir + " --to " + before), r::toString);

    Cli.run("rollback", dir, "--to", before, "--yes").ok();
    assertArrayEquals(now, TestVolumes.image(dir), "rolling back the rollback restores the bytes before it");
    assertArrayEquals(atS1, TestVolumes.snapshotImage(dir, "s1"));
  }

  @Test
  void rollback_withoutYesAndWithoutTerminal_refusesAndChangesNothing() throws IOException {
    assumeTrue(System.console() == null, "this JVM has a console; the real Terminal would ask");
    TestVolumes.State before = TestVolumes.state(dir);
    Cli.Result r = Cli.run("rollback", dir, "--to", "s1");
    assertFails(r, ExitCodes.FAILURE, "pass --yes");
    assertTrue(r.out().contains("undoes"), "says what would be lost: " + r);
    assertEquals(before, TestVolumes.state(dir));
  }

  @Test
  void rollback_askedOnTheTerminal() throws IOException {
    Cli.ScriptedTerminal terminal = new Cli.ScriptedTerminal("y");
    Cli.run(new Shade(terminal), "rollback", dir, "--to", "s1").ok();
    assertEquals(List.of("Roll " + dir + " back to s1? [y/N] "), terminal.prompts);
    assertArrayEquals(atS1, TestVolumes.image(dir));
  }

  @Test
  void rollback_answeredNo_changesNothing() throws IOException {
    TestVolumes.State before = TestVolumes.state(dir);
    assertFails(Cli.run(new Shade(new Cli.ScriptedTerminal("n")), "rollback", dir, "--to", "s1"), ExitCodes.FAILURE,
        "rollback cancelled");
    assertEquals(before, TestVolumes.state(dir));
  }

  @Test
  void rollback_json_printsTheReportOnly() throws IOException {
    Cli.Result r = Cli.run("rollback", dir, "--to", "s1", "--yes", "--json").ok();
    JsonNode doc = r.json();
    assertEquals("ok", doc.get("outcome").asText());
    assertEquals("s1", doc.get("target").get("name").asText());
    List<String> steps = new java.util.ArrayList<>();
    for (JsonNode s : doc.get("steps")) {
      steps.add(s.get("step").asText());
      assertEquals("ok", s.get("outcome").asText());
      assertTrue(s.get("seconds").isNumber());
    }
    assertEquals(List.of("plan", "clients", "before-snapshot", "revert"), steps);
    assertTrue(doc.get("beforeSnapshot").get("name").asText().startsWith("before-rollback-"));
  }

  @Test
  void rollback_noBeforeSnapshot_deletesNewerSnapshotsAndSaysSo() throws IOException {
    Cli.Result r = Cli.run("rollback", dir, "--to", "s1", "--yes", "--no-before-snapshot").ok();
    assertTrue(r.out().contains("deletes 1 newer snapshot: s2"), r::toString);
    assertEquals(List.of("s1"), names());
    assertArrayEquals(atS1, TestVolumes.image(dir));
  }

  @Test
  void rollback_throughTheAgent_refusesWhileAnNbdClientWritesAndDisconnectsItWhenAsked() throws Exception {
    byte[] now = TestVolumes.image(dir);
    Path nbdSock = tmp.resolve("nbd.sock");
    AgentConfig config = new AgentConfig(tmp.resolve("control.sock"), List.of(dir),
        new AgentConfig.Nbd(null, nbdSock, null, null, null, false, 16, Duration.ofMinutes(5)));
    try (Agent agent = Agent.start(config)) {
      try (NbdClient nbd = NbdClient.connect("nbd+unix:///db?socket=" + nbdSock)) {
        Cli.Result refused = Cli.run("rollback", dir, "--to", "s1", "--yes");
        assertFails(refused, ExitCodes.FAILURE, "pass --disconnect-clients");
        assertTrue(refused.err().contains("open for writing"), refused::toString);

        JsonNode doc = Cli.run("rollback", dir, "--to", "s1", "--yes", "--disconnect-clients", "--json").ok().json();
        assertEquals(1, doc.get("steps").get(1).get("clients").asInt(), doc::toString);
        String before = doc.get("beforeSnapshot").get("name").asText();
        try (NbdClient again = NbdClient.connect("nbd+unix:///db?socket=" + nbdSock)) {
          assertArrayEquals(atS1, again.read(0, MIB), "rolled back, as the agent serves it");
        }
        Cli.run("rollback", dir, "--to", before, "--yes").ok();
      }
    }
    assertArrayEquals(now, TestVolumes.image(dir), "the rollback of the rollback restores the bytes before it");
  }

  @Test
  void rollback_unknownWriter_isAUsageErrorAndChangesNothing() throws IOException {
    TestVolumes.State before = TestVolumes.state(dir);
    assertFails(Cli.run("rollback", dir, "--to", "s1", "--yes", "--writer", "nope:x"), ExitCodes.USAGE, "unknown writer");
    assertEquals(before, TestVolumes.state(dir));
  }
}
