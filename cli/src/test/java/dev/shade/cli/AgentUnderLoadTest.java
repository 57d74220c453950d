package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.nbd.client.NbdClient;
import dev.shade.testing.Command;
import dev.shade.testing.Tools;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent serves a volume to two writers over NBD (fio with crc32c verification, and a writer
 * of numbered blocks whose acknowledgements are recorded) while {@code shade snapshot create},
 * from this other process, takes 100 snapshots through the control socket. Each snapshot must
 * hold every write acknowledged before its creation began and none issued after it returned;
 * every fio run must verify; list, diff, export and delete work meanwhile.
 */
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class AgentUnderLoadTest {
  private static final long MIB = 1 << 20;
  private static final int SNAPSHOTS = 100;
  /** The numbered writer's slots: the first 4 MiB of the volume. */
  private static final int SLOTS = 1024;

  @TempDir Path tmp;
  private AgentProcess agent;
  /** Set to end the fio loop after the run under way. */
  private volatile boolean fioStop;

  @AfterEach
  void stopAgent() throws InterruptedException {
    if (agent != null && agent.process().isAlive()) {
      agent.kill();
    }
  }

  @Test
  void snapshots_duringLoad_holdExactlyWhatWasAcknowledgedBefore() throws Exception {
    Tools.require("fio", "fio");
    Path db = tmp.resolve("db");
    Cli.run("volume", "create", db, "--size", "64M", "--diff-max", "4G").ok();
    Path nbdSock = tmp.resolve("nbd.sock");
    Path control = tmp.resolve("control.sock");
    agent = AgentProcess.start(tmp, List.of(db, "--control-socket", control, "--socket", nbdSock), control);
    String uri = "nbd+unix:///db?socket=" + nbdSock;

    NumberedWriter writer;
    Thread writerThread;
    try (NbdClient c = NbdClient.connect(uri)) {
      writer = new NumberedWriter(c, SLOTS, 8_000_000, 0);
      writerThread = new Thread(writer, "numbered-writer");
      writerThread.start();

      AtomicReference<String> fioFailure = new AtomicReference<>();
      AtomicInteger fioRuns = new AtomicInteger();
      Thread fio = new Thread(() -> runFio(uri, fioRuns, fioFailure), "fio-loop");
      fio.start();

      long[] begin = new long[SNAPSHOTS];
      long[] end = new long[SNAPSHOTS];
      long[] id = new long[SNAPSHOTS];
      for (int i = 0; i < SNAPSHOTS; i++) {
        begin[i] = System.nanoTime();
        Cli.Result r = Cli.run("snapshot", "create", db, "--name", "L" + i, "--json");
        end[i] = System.nanoTime();
        r.ok();
        id[i] = r.json().get("snapshots").get(0).get("id").asLong();
        if (i % 25 == 24) { // the other commands work under load too
          assertEquals(i + 1, Cli.run("snapshot", "list", db, "--json").ok().json().size());
          JsonNode diff = Cli.run("snapshot", "diff", db, "L" + (i - 1), "L" + i, "--json").ok().json();
          assertTrue(diff.get("changedBytes").asLong() >= 0, diff::toString);
        }
        Thread.sleep(20);
      }
      writer.stop = true;
      writerThread.join(30_000);
      fioStop = true; // the run under way finishes, with its verification
      fio.join(300_000);
      assertNull(writer.failure, () -> "the numbered writer failed: " + writer.failure);
      assertNull(fioFailure.get(), fioFailure::get);
      assertTrue(fioRuns.get() >= 1, "fio completed at least one verified run during the snapshots");
      assertTrue(writer.lastAcked > SNAPSHOTS * 10L, "the writer kept writing: " + writer.lastAcked);

      List<Long> latencies = new ArrayList<>();
      for (int i = 0; i < SNAPSHOTS; i++) {
        latencies.add(TimeUnit.NANOSECONDS.toMicros(end[i] - begin[i]));
        ByteBuffer image = ByteBuffer.allocateDirect(SLOTS * NumberedWriter.BLOCK);
        try (NbdClient s = NbdClient.connect("nbd+unix:///db@id=" + id[i] + "?socket=" + nbdSock)) {
          s.read(0, image);
        }
        writer.check(image, writer.lastAckedBefore(begin[i]), writer.lastIssuedBefore(end[i]), "snapshot L" + i);
      }
      latencies.sort(null);
      System.out.printf("snapshot create through the agent under load, as a command (us): p50 %d, p99 %d, max %d; "
              + "%d numbered writes, %d fio runs%n", latencies.get(SNAPSHOTS / 2), latencies.get(SNAPSHOTS * 99 / 100),
          latencies.get(SNAPSHOTS - 1), writer.lastAcked, fioRuns.get());
    }

    Path img = tmp.resolve("L50.img");
    Cli.run("snapshot", "export", db, "L50", img).ok();
    assertEquals(64 * MIB, Files.size(img));
    Cli.run("snapshot", "delete", db, "L50").ok();
    assertEquals(SNAPSHOTS - 1, Cli.run("snapshot", "list", db, "--json").ok().json().size());
    assertEquals(0, agent.stop(), agent::toString);
  }

  /** Runs fio with verification over 32 MiB of the volume, again and again, until told to stop. */
  private void runFio(String uri, AtomicInteger runs, AtomicReference<String> failure) {
    int n = 0;
    while (!fioStop || n == 0) {
      List<String> cmd = Arrays.asList("fio", "--name=load" + n, "--ioengine=nbd", "--uri=" + uri,
          "--rw=randwrite", "--bs=4k", "--iodepth=8", "--offset=16m", "--size=32m", "--verify=crc32c",
          "--verify_fatal=1", "--verify_state_save=0", "--output-format=terse");
      try {
        Command r = Command.run(cmd, tmp);
        if (r.exitCode() != 0 || r.output().contains("verify failed") || r.output().contains("bad magic")) {
          failure.set("fio run " + n + " failed: " + r);
          return;
        }
        runs.incrementAndGet();
      } catch (Exception e) {
        failure.set("fio run " + n + " could not run: " + e);
        return;
      }
      n++;
    }
  }
}
