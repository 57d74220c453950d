package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** JobOwner against real processes: this one, a child that has exited, and this pid with another start time. */
class JobOwnerTest {
  @TempDir Path tmp;

  @Test
  void current_isAlive_anExitedChildIsNot_aReusedPidIsNot_theLibraryByItsRealPath() throws Exception {
    Path lib = Files.createDirectories(tmp.resolve("vtl"));
    Path link = Files.createSymbolicLink(tmp.resolve("link"), lib);
    JobOwner me = JobOwner.current(lib);
    assertEquals(ProcessHandle.current().pid(), me.pid());
    assertEquals(lib.toRealPath().toString(), me.library());
    assertEquals(me.library(), JobOwner.current(link).library(), "one library, however it is named");
    assertEquals(me.library(), JobOwner.current(link.resolve("../vtl")).library());
    assertFalse(me.host().isBlank());
    assertTrue(JobOwner.alive(me));

    Process p = new ProcessBuilder("true").start();
    assertTrue(p.waitFor(30, TimeUnit.SECONDS));
    JobOwner child = new JobOwner(me.host(), p.pid(), null, me.library());
    assertFalse(JobOwner.alive(child), "an exited process");

    if (me.processStarted() != null) {
      JobOwner reused = new JobOwner(me.host(), me.pid(), me.processStarted().minus(Duration.ofMinutes(5)),
          me.library());
      assertFalse(JobOwner.alive(reused), "the pid now belongs to a process started at another time");
    }
  }
}
