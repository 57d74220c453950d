package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code shade backup run --agent} on one host, against a real agent through its control socket:
 * writer metadata from the agent into the manifest, the read-back, backup-complete to an exec
 * hook, and a hook that fails, which is reported without failing the backup.
 */
class BackupAgentCommandTest {
  private static final int MiB = 1024 * 1024;
  @TempDir Path tmp;
  @RegisterExtension final Leftovers started = new Leftovers();

  @Test
  void backupRun_withTheAgent_storesItsWriterMetadata_andReportsBackupComplete_aFailureIsReportedNotFatal()
      throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "16M");
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "a.bin", TestVolumes.random(1, 3 * MiB))).ok();
    Path lib = tmp.resolve("vtl");
    Cli.run("tape", "library", "create", lib, "--slots", "2", "--capacity", "64M").ok();
    AgentProcess agent = started.agent(tmp, db);
    Path control = tmp.resolve("control.sock");
    Path nbd = tmp.resolve("nbd.sock");

    Path hooks = Files.createDirectories(tmp.resolve("hooks"));
    Path released = tmp.resolve("released.txt");
    Path fail = tmp.resolve("fail");
    Path hook = hooks.resolve("10-release");
    Files.writeString(hook, "#!/bin/sh\nif [ \"$1\" = backup-complete ]; then\n  if [ -e '" + fail + "' ]; then echo "
        + "'archive cleanup failed' >&2; exit 4; fi\n  echo released >> '" + released + "'\nfi\nexit 0\n");
    Files.setPosixFilePermissions(hook, PosixFilePermissions.fromString("rwx------"));
    Cli.run("snapshot", "create", db, "--name", "s1", "--writer", "exec:" + hooks).ok();

    JsonNode r = Cli.run("backup", "run", "--source", "nbd+unix:///db@s1?socket=" + nbd, "--agent", control,
        "--library", lib, "--chunk-size", "1M", "--json").ok().json();
    assertEquals("agent", r.get("metadataSource").asText(), r::toString);
    assertEquals(3, r.get("verified").get("chunks").asInt(), r::toString);
    assertTrue(r.get("backupComplete").get("ok").asBoolean(), r::toString);
    assertEquals("exec:" + hooks, r.get("backupComplete").get("writers").get(0).get("writer").asText());
    assertEquals(List.of("released"), Files.readAllLines(released));
    JsonNode shown = Cli.run("snapshot", "show", db, "s1", "--json").ok().json();
    assertTrue(shown.get("attributes").has("shade.backupComplete"), shown::toString);

    // the hook fails: the backup is good and says so, the failure is named
    Files.writeString(fail, "");
    Cli.run("snapshot", "create", db, "--name", "s2", "--writer", "exec:" + hooks).ok();
    Cli.Result text = Cli.run("backup", "run", "--source", "nbd+unix:///db@s2?socket=" + nbd, "--agent", control,
        "--library", lib);
    assertEquals(ExitCodes.OK, text.code(), text::toString);
    assertTrue(text.out().contains("Read back") && text.out().contains("every checksum good"), text::toString);
    assertTrue(text.err().contains("the backup is good, but backup-complete of db@s2")
        && text.err().contains("10-release"), text::toString);
    assertEquals(List.of("released"), Files.readAllLines(released), "not released this time");
    assertFalse(Cli.run("snapshot", "show", db, "s2", "--json").ok().json().get("attributes")
        .has("shade.backupComplete"));

    // an agent that does not hold the source's volume is named before anything is written
    Path other = TestVolumes.create(tmp.resolve("other"), "16M");
    Path control2 = tmp.resolve("control2.sock");
    AgentProcess agent2 = AgentProcess.start(tmp, List.of(other, "--control-socket", control2, "--socket",
        tmp.resolve("nbd2.sock")), control2);
    started.add(agent2.process());
    Cli.Result wrong = Cli.run("backup", "run", "--source", "nbd+unix:///db@s1?socket=" + nbd, "--agent", control2,
        "--library", lib);
    assertEquals(ExitCodes.FAILURE, wrong.code(), wrong::toString);
    assertTrue(wrong.err().contains("does not have snapshot db@s1"), wrong::toString);
    assertEquals(2, Cli.run("catalog", "list", lib, "--json").ok().json().get("jobs").size());
    assertEquals(0, agent.stop());
    assertEquals(0, agent2.stop());
  }
}
