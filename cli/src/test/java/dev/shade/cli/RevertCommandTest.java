package dev.shade.cli;

import static dev.shade.cli.VolumeCommandTest.assertFails;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class RevertCommandTest {
  private static final int MIB = 1 << 20;

  @TempDir Path tmp;

  /** A 1 MiB volume with snapshots s1 (data v1), s2 (v2 written over part of it) and then v3. */
  private Path dir;
  /** The volume as it was when s1 was taken. */
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

  @Test
  void revert_withYesRestoresTheSnapshotAndDeletesNewerOnes() throws IOException {
    Cli.Result r = Cli.run("volume", "revert", dir, "s1", "--yes").ok();
    assertTrue(r.out().contains("deletes 1 newer snapshot: s2"), r::toString);
    assertTrue(r.out().contains("Reverted volume 'db' to snapshot 's1'"), r::toString);
    assertArrayEquals(atS1, TestVolumes.image(dir));
    assertEquals(List.of("s1"), TestVolumes.state(dir).snapshots().stream().map(s -> s.name()).toList());
    assertArrayEquals(atS1, TestVolumes.snapshotImage(dir, "s1"));
  }

  @Test
  void revert_withoutYesAndWithoutTerminalRefusesAndChangesNothing() throws IOException {
    TestVolumes.State before = TestVolumes.state(dir);
    assumeTrue(System.console() == null, "this JVM has a console; the real Terminal would ask");
    Cli.Result r = Cli.run("volume", "revert", dir, "s1");
    assertFails(r, ExitCodes.FAILURE, "pass --yes");
    assertTrue(r.out().contains("deletes 1 newer snapshot: s2"), "says what would be lost: " + r);
    assertEquals(before, TestVolumes.state(dir));
  }

  @Test
  void revert_askedOnTheTerminalAndConfirmed() throws IOException {
    Cli.ScriptedTerminal terminal = new Cli.ScriptedTerminal("y");
    Cli.run(new Shade(terminal), "volume", "revert", dir, "s1").ok();
    assertEquals(List.of("Proceed? [y/N] "), terminal.prompts);
    assertArrayEquals(atS1, TestVolumes.image(dir));
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "n", "no", "maybe", "yess"})
  void revert_anythingButYesCancelsAndChangesNothing(String answer) throws IOException {
    TestVolumes.State before = TestVolumes.state(dir);
    Cli.Result r = Cli.run(new Shade(new Cli.ScriptedTerminal(answer)), "volume", "revert", dir, "s1");
    assertFails(r, ExitCodes.FAILURE, "revert cancelled");
    assertEquals(before, TestVolumes.state(dir));
  }

  @Test
  void revert_inputClosedAtThePromptRefusesAndChangesNothing() throws IOException {
    TestVolumes.State before = TestVolumes.state(dir);
    Cli.Result r = Cli.run(new Shade(new Cli.ScriptedTerminal()), "volume", "revert", dir, "s1");
    assertFails(r, ExitCodes.FAILURE, "pass --yes");
    assertEquals(before, TestVolumes.state(dir));
  }

  @Test
  void revert_unknownSnapshotFailsAndChangesNothing() throws IOException {
    TestVolumes.State before = TestVolumes.state(dir);
    assertFails(Cli.run("volume", "revert", dir, "nope", "--yes"), ExitCodes.FAILURE, "no snapshot named 'nope'");
    assertEquals(before, TestVolumes.state(dir));
  }

  @Test
  void revert_toNewestSnapshotDeletesNone() throws IOException {
    byte[] atS2 = TestVolumes.snapshotImage(dir, "s2");
    Cli.Result r = Cli.run("volume", "revert", dir, "s2", "-y").ok();
    assertTrue(r.out().contains("deletes no snapshots"), r::toString);
    assertArrayEquals(atS2, TestVolumes.image(dir));
    assertEquals(2, TestVolumes.state(dir).snapshots().size());
  }
}
