package dev.shade.nativeio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.testing.Command;
import dev.shade.testing.Tools;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link FileHandle#lock}: flock locks belong to an open file description, so two handles on
 * one file conflict even inside one process, and the lock is visible to other processes.
 *
 * <p>A lock call that waits by mistake would block forever in flock(2), which no interrupt
 * ends, so each test runs on its own thread under a timeout.
 */
@Timeout(value = 5, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class FileLockTest {
  @TempDir
  Path dir;

  @Test
  void lock_exclusiveHeldByFirstHandle_secondNonWaitingLockFails() throws Exception {
    Path path = dir.resolve("lock");
    try (FileHandle first = FileHandle.create(path);
        FileHandle second = FileHandle.openReadWrite(path)) {
      assertTrue(first.lock(true, false));

      assertFalse(second.lock(true, false), "exclusive while another handle holds it");
      assertFalse(second.lock(false, false), "shared while another handle holds exclusive");

      first.unlock();
      assertTrue(second.lock(true, false), "free again after unlock");
      assertFalse(first.lock(false, false));
    }
  }

  @Test
  void lock_sharedByBoth_thenExclusiveFails() throws Exception {
    Path path = dir.resolve("lock");
    try (FileHandle first = FileHandle.create(path);
        FileHandle second = FileHandle.openReadOnly(path)) {
      assertTrue(first.lock(false, false));
      assertTrue(second.lock(false, false), "shared locks coexist");

      assertFalse(first.lock(true, false), "no upgrade while another handle shares it");
    }
  }

  @Test
  void close_releasesLock() throws Exception {
    Path path = dir.resolve("lock");
    try (FileHandle second = FileHandle.create(path)) {
      FileHandle first = FileHandle.openReadWrite(path);
      assertTrue(first.lock(true, true));
      assertFalse(second.lock(true, false));

      first.close();

      assertTrue(second.lock(true, false));
    }
  }

  @Test
  void lock_heldHere_otherProcessCannotTakeIt() throws Exception {
    Tools.require("flock", "util-linux");
    Path path = dir.resolve("lock");
    try (FileHandle f = FileHandle.create(path)) {
      assertTrue(f.lock(true, false));
      Command held = Command.run("flock", "--nonblock", "--conflict-exit-code", "75",
          path.toString(), "true");
      assertEquals(75, held.exitCode(), held::toString);

      f.unlock();
      Command freed = Command.run("flock", "--nonblock", "--conflict-exit-code", "75",
          path.toString(), "true");
      assertEquals(0, freed.exitCode(), freed::toString);
    }
  }
}
