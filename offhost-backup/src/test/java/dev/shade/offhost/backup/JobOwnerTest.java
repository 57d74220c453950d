package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** JobOwner against real processes: this one, a child that has exited, and this pid with another start time. */
class JobOwnerTest {
  @Test
  void current_isAlive_anExitedChildIsNot_aReusedPidIsNot() throws Exception {
    JobOwner me = JobOwner.current(Path.of("vtl"));
    assertEquals(ProcessHandle.current().pid(), me.pid());
    assertEquals(Path.of("vtl").toAbsolutePath().normalize().toString(), me.library());
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
