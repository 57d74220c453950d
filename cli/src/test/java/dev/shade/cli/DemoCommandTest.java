package dev.shade.cli;

import static dev.shade.cli.VolumeCommandTest.assertFails;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.provider.Volume;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DemoCommandTest {
  @TempDir Path tmp;

  @Test
  void demo_everyCheckHoldsAndTheWorkDirectoryIsRemoved() {
    Path work = tmp.resolve("tour");
    Cli.Result r = Cli.run("demo", "--dir", work).ok();
    assertTrue(r.out().contains("All 5 checks held"), r::toString);
    assertFalse(r.out().contains("[FAILED]"), r::toString);
    assertTrue(r.out().contains("$ shade snapshot diff db s1"), r::toString);
    assertFalse(Files.exists(work), "work directory removed");
  }

  @Test
  void demo_keepLeavesTheVolumes() throws IOException {
    Path work = tmp.resolve("tour");
    Cli.run("demo", "--dir", work, "--keep").ok();
    assertTrue(Volume.isVolume(work.resolve("db")) && Volume.isVolume(work.resolve("wal")));
    assertArrayEquals(Files.readAllBytes(work.resolve("s1.img")), TestVolumes.image(work.resolve("db")));
  }

  @Test
  void demo_refusesANonEmptyDirectoryAndLeavesIt() throws IOException {
    Path work = Files.createDirectory(tmp.resolve("busy"));
    Path mine = TestVolumes.file(work, "mine.txt", new byte[] {7});
    assertFails(Cli.run("demo", "--dir", work), ExitCodes.FAILURE, "must be missing or an empty directory");
    assertArrayEquals(new byte[] {7}, Files.readAllBytes(mine));
    assertEquals(1, Files.list(work).count());
  }

  @Test
  void pages_areDeterministicTextOfWholePages() {
    byte[] a = DemoCommand.pages(5, 10, 3);
    assertEquals(3 * 8192, a.length);
    assertArrayEquals(a, DemoCommand.pages(5, 10, 3));
    String text = new String(a, java.nio.charset.StandardCharsets.US_ASCII);
    assertTrue(text.startsWith("-- page 000010"), text.substring(0, 40));
    assertTrue(text.substring(8192).startsWith("-- page 000011"));
  }
}
