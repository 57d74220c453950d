package dev.shade.cli;

import static dev.shade.cli.AgentProcess.source;
import static dev.shade.cli.BackupConnectionCutTest.assertImagesEqual;
import static dev.shade.cli.BackupConnectionCutTest.jobs;
import static dev.shade.cli.BackupConnectionCutTest.okJobs;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code shade backup run} in a JVM of its own, killed with SIGKILL while it writes its archive, at
 * three points (after 1, 7 and 15 MiB of the 24 MiB on the cartridge): a real agent, a proxy that
 * holds the export to 12 MiB/s so that the backup takes a known time, a virtual tape library. After
 * each kill the library opens, the job shows as failed and interrupted, the next backup writes that
 * job's record on tape, is good and restores byte for byte, and a rebuild from the tapes gives the
 * good jobs and the killed one as failed, its torn archive not recreated.
 */
class BackupKillTest {
  private static final int MiB = 1024 * 1024;
  /** Cartridge growth, in MiB since the trial's backup started, at which each trial kills it. */
  private static final int[] KILL_AT_MIB = {1, 7, 15};
  @TempDir Path tmp;
  @RegisterExtension final Leftovers started = new Leftovers();

  @Test
  void sigkillMidArchive_threeKillPoints_jobInterrupted_nextBackupRestores_rebuildKeepsOnlyGoodJobs() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "32M");
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "a.bin", TestVolumes.random(1, 24 * MiB))).ok();
    Path lib = tmp.resolve("vtl");
    Cli.run("tape", "library", "create", lib, "--slots", "2", "--capacity", "512M").ok();
    AgentProcess agent = started.agent(tmp, db);
    Path nbd = tmp.resolve("nbd.sock");
    Path slow = tmp.resolve("slow.sock");
    List<Long> good = new ArrayList<>();
    try (CuttingProxy proxy = CuttingProxy.throttled(slow, nbd, 12L * MiB)) {
      for (int trial = 0; trial < KILL_AT_MIB.length; trial++) {
        String snap = "t" + trial;
        Cli.run("volume", "import", db, TestVolumes.file(tmp, snap + ".bin", TestVolumes.random(10 + trial, 2 * MiB)),
            "--offset", (trial * 4) + "M").ok();
        Cli.run("snapshot", "create", db, "--name", snap).ok();
        long jobsBefore = jobs(lib).size();

        // the backup in a child JVM, killed once the cartridge has grown by the trial's amount
        Path cartridge = lib.resolve("slot-0001.tape");
        long before = Files.exists(cartridge) ? Files.size(cartridge) : 0;
        Path err = tmp.resolve(snap + ".err");
        List<String> command = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
            "-XX:TieredStopAtLevel=1", "-cp", System.getProperty("java.class.path"), Shade.class.getName(), "backup",
            "run", "--source", source(slow, snap), "--library", lib.toString(), "--level", "full", "--chunk-size",
            "1M"));
        Process p = new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectOutput(tmp.resolve(snap + ".out").toFile()).redirectError(err.toFile()).start();
        started.add(p);
        long killAt = before + (long) KILL_AT_MIB[trial] * MiB;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while ((Files.exists(cartridge) ? Files.size(cartridge) : 0) < killAt) {
          assertTrue(p.isAlive(), () -> "the backup ended before it was killed: " + read(err));
          assertTrue(System.nanoTime() < deadline, "the cartridge did not grow to " + killAt + " within 30 s");
          Thread.sleep(2);
        }
        long t0 = System.nanoTime();
        p.destroyForcibly(); // SIGKILL
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(137, p.exitValue(), "killed by SIGKILL");
        long written = Files.size(cartridge) - before;
        System.out.printf("trial %d: killed after %.1f MiB on the cartridge (%.1f MiB when gone, %d ms)%n", trial,
            (killAt - before) / (double) MiB, written / (double) MiB, (System.nanoTime() - t0) / 1_000_000);
        assertTrue(written < 24L * MiB, "killed before the archive was complete: " + written);

        // the library opens, the job shows as interrupted (marked by the first command that reads the catalog)
        Cli.run("tape", "list", lib).ok();
        Cli.Result list = Cli.run("catalog", "list", lib, "--json").ok();
        JsonNode jobs = list.json().get("jobs");
        assertEquals(jobsBefore + 1, jobs.size(), jobs::toString);
        JsonNode killed = jobs.get(jobs.size() - 1);
        assertEquals(snap, killed.get("snapshot").asText());
        assertEquals("failed", killed.get("outcome").asText(), killed::toString);
        assertTrue(killed.get("message").asText().startsWith("interrupted: the backup process (pid " + p.pid()),
            killed::toString);
        assertTrue(list.err().contains("job " + killed.get("jobId").asLong() + " (db@" + snap), list::toString);
        assertTrue(killed.path("archive").isMissingNode() || killed.path("archive").isNull(), killed::toString);
        JsonNode process = Cli.run("catalog", "show", killed.get("jobId").asText(), "--library", lib, "--json").ok()
            .json().get("process");
        assertEquals(p.pid(), process.get("pid").asLong(), process::toString);
        assertEquals(lib.toRealPath().toString(), process.get("library").asText());
        Cli.Result again = Cli.run("catalog", "list", lib);
        assertTrue(!again.err().contains("left running"), "marked once: " + again);

        // the next backup appends after the torn tape file and restores byte for byte
        JsonNode next = Cli.run("backup", "run", "--source", source(nbd, snap), "--library", lib, "--json").ok().json();
        good.add(next.get("jobId").asLong());
        Path export = tmp.resolve(snap + ".export");
        Cli.run("snapshot", "export", db, snap, export).ok();
        Path restored = tmp.resolve(snap + ".restored");
        Cli.run("restore", "--volume", "db", "--snapshot", snap, "--library", lib, "--to", restored).ok();
        assertImagesEqual(export, restored);
        assertEquals(good, okJobs(jobs(lib)));

        // the tapes alone: the good jobs, and the killed one as failed (its record written by the next backup)
        Cli.Result rebuilt = Cli.run("catalog", "rebuild", "--library", lib, "--force");
        assertEquals(0, rebuilt.code(), rebuilt::toString);
        long killedId = killed.get("jobId").asLong();
        assertTrue(rebuilt.err().contains("holds piece 1 of job " + killedId + ", which failed (interrupted: "),
            rebuilt::toString);
        JsonNode rebuiltKilled = null;
        for (JsonNode j : jobs(lib)) {
          rebuiltKilled = j.get("jobId").asLong() == killedId ? j : rebuiltKilled;
        }
        assertTrue(rebuiltKilled != null && rebuiltKilled.get("outcome").asText().equals("failed")
            && rebuiltKilled.get("message").asText().startsWith("interrupted: "), rebuilt::toString);
        assertEquals(good, okJobs(jobs(lib)), rebuilt::toString);
        Path again2 = tmp.resolve(snap + ".rebuilt");
        Cli.run("restore", "--volume", "db", "--snapshot", snap, "--library", lib, "--to", again2).ok();
        assertImagesEqual(export, again2);
      }
    }
    assertEquals(0, Cli.run("verify", "--library", lib).code());
    agent.stop();
  }

  private static String read(Path p) {
    try {
      return Files.readString(p, StandardCharsets.UTF_8);
    } catch (java.io.IOException e) {
      return e.toString();
    }
  }
}
