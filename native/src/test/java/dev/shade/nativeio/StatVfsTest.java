package dev.shade.nativeio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.testing.Command;
import dev.shade.testing.Tools;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link StatVfs#of} against the numbers GNU {@code df} prints for the same filesystem. */
class StatVfsTest {
  /**
   * How far free space may move while {@code df} runs between two statvfs calls: other
   * processes write to the same filesystem, but not this much in a few milliseconds.
   */
  private static final long DRIFT = 64L << 20;

  @TempDir
  Path dir;

  @Test
  void of_tempDir_returnsSaneNumbers() throws Exception {
    StatVfs s = StatVfs.of(dir);

    assertTrue(s.blockSize() > 0 && Long.bitCount(s.blockSize()) == 1, s::toString);
    assertTrue(s.totalBytes() > 0, s::toString);
    assertTrue(s.totalBytes() >= s.freeBytes(), s::toString);
    assertTrue(s.freeBytes() >= s.availableBytes(), s::toString);
    assertTrue(s.availableBytes() >= 0, s::toString);
    assertEquals(0, s.totalBytes() % s.blockSize(), s::toString);
  }

  @Test
  void of_tempDir_matchesDf() throws Exception {
    Tools.require("df", "coreutils");
    StatVfs before = StatVfs.of(dir);
    // size = f_blocks*f_frsize, used = (f_blocks - f_bfree)*f_frsize, avail = f_bavail*f_frsize
    String[] lines = Command.run("df", "-B1", "--output=size,used,avail", dir.toString())
        .requireSuccess().strip().split("\n");
    StatVfs after = StatVfs.of(dir);
    String[] f = lines[lines.length - 1].trim().split("\\s+");
    long size = Long.parseLong(f[0]);
    long free = size - Long.parseLong(f[1]);
    long avail = Long.parseLong(f[2]);

    assertEquals(size, before.totalBytes(), () -> "df: " + String.join(" / ", lines) + " vs "
        + before);
    assertBetween("free bytes", free, before.freeBytes(), after.freeBytes());
    assertBetween("available bytes", avail, before.availableBytes(), after.availableBytes());
  }

  @Test
  void of_fileInsideDir_describesTheSameFilesystem() throws Exception {
    Path file = Files.write(dir.resolve("f"), new byte[1]);

    assertEquals(StatVfs.of(dir).totalBytes(), StatVfs.of(file).totalBytes());
    assertEquals(StatVfs.of(dir).blockSize(), StatVfs.of(file).blockSize());
  }

  private static void assertBetween(String what, long df, long statBefore, long statAfter) {
    long lo = Math.min(statBefore, statAfter) - DRIFT;
    long hi = Math.max(statBefore, statAfter) + DRIFT;
    assertTrue(df >= lo && df <= hi, what + ": df says " + df + ", statvfs said " + statBefore
        + " before and " + statAfter + " after");
  }
}
