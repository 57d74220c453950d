package dev.shade.requestor.lease;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.testing.ChildJvm;
import dev.shade.testing.LoopFilesystem;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The freeze lease with real hook directories: the guard process runs the phases, vetoes,
 * expires and releases when its requestor dies.
 */
class FreezeLeaseTest {
  @TempDir Path tmp;

  /** A hook directory with one hook that logs "phase nanos-since-epoch" to log and runs {@code freezeBody} in freeze. */
  private Path hooks(String name, String freezeBody) throws IOException {
    Path dir = Files.createDirectories(tmp.resolve(name));
    Path log = tmp.resolve(name + ".log");
    String script = "#!/bin/sh\n"
        + "echo \"$1 $(date +%s%N)\" >> '" + log + "'\n"
        + "if [ \"$1\" = freeze ]; then\n" + freezeBody + "\nfi\n";
    Path hook = dir.resolve("10-log");
    Files.writeString(hook, script);
    Files.setPosixFilePermissions(hook, PosixFilePermissions.fromString("rwxr-xr-x"));
    return dir;
  }

  private List<String> phases(String name) throws IOException {
    Path log = tmp.resolve(name + ".log");
    List<String> out = new ArrayList<>();
    if (Files.exists(log)) {
      for (String l : Files.readAllLines(log)) {
        out.add(l.split(" ")[0]);
      }
    }
    return out;
  }

  private long lastNanos(String name, String phase) throws IOException {
    long t = -1;
    for (String l : Files.readAllLines(tmp.resolve(name + ".log"))) {
      String[] w = l.split(" ");
      if (w[0].equals(phase)) {
        t = Long.parseLong(w[1]);
      }
    }
    return t;
  }

  @Test
  void runsThePhasesInOrderAndReportsThem() throws Exception {
    Path a = hooks("a", "true");
    Path b = hooks("b", "true");
    try (FreezeLease lease = FreezeLease.start(List.of("exec:" + a, "exec:" + b), Duration.ofSeconds(5))) {
      assertEquals(2, lease.identified().size());
      assertEquals("10-log", lease.identified().get(0).path("identify").path("hooks").get(0).asText());
      lease.prepare();
      JsonNode frozen = lease.freeze();
      assertTrue(frozen.path("freezeMs").has("exec:" + a));
      JsonNode thawed = lease.thaw();
      assertTrue(thawed.path("frozenMs").asDouble() > 0);
      assertEquals(2, thawed.path("metadata").size());
      assertEquals("exec:" + b, thawed.path("metadata").get(1).path("writer").asText());
    }
    assertEquals(List.of("freeze", "thaw"), phases("a"));
    assertEquals(List.of("freeze", "thaw"), phases("b"));
    // b thawed before a: reverse order
    assertTrue(lastNanos("b", "thaw") <= lastNanos("a", "thaw"));
  }

  @Test
  void aFailingFreezeHookVetoesAndEveryWriterIsThawedAndAborted() throws Exception {
    Path a = hooks("a", "true");
    Path b = hooks("b", "echo 'database refuses' >&2; exit 3");
    try (FreezeLease lease = FreezeLease.start(List.of("exec:" + a, "exec:" + b), Duration.ofSeconds(5))) {
      lease.prepare();
      IOException e = assertThrows(IOException.class, lease::freeze);
      assertTrue(e.getMessage().contains("exited with status 3"), e.getMessage());
      assertTrue(e.getMessage().contains("database refuses"), e.getMessage());
      lease.abort();
    }
    assertEquals(List.of("freeze", "thaw", "abort"), phases("a"));
    // thaw and abort run for the writer whose freeze failed too
    assertEquals(List.of("freeze", "thaw", "abort"), phases("b"));
  }

  @Test
  void aHungFreezeHookIsKilledWhenTheLeaseEnds() throws Exception {
    Path a = hooks("a", "true");
    Path b = hooks("b", "sleep 60");
    long t0 = System.nanoTime();
    try (FreezeLease lease = FreezeLease.start(List.of("exec:" + a, "exec:" + b), Duration.ofMillis(800))) {
      lease.prepare();
      long f0 = System.nanoTime();
      IOException e = assertThrows(IOException.class, lease::freeze);
      long ms = (System.nanoTime() - f0) / 1_000_000;
      assertTrue(ms < 800 + 1500, "freeze answered after " + ms + " ms");
      assertTrue(e.getMessage().contains("did not finish within") || e.getMessage().contains("released"), e.getMessage());
    }
    assertTrue(phases("a").contains("thaw"), phases("a").toString());
    assertTrue(phases("a").contains("abort"), phases("a").toString());
    assertTrue(phases("b").contains("abort"), phases("b").toString());
    // the frozen writer is thawed before the hung one is aborted: its hooks' process starts do
    // not lengthen the freeze of the others
    assertTrue(lastNanos("a", "thaw") < lastNanos("b", "abort"), "a thawed after b's abort hook ran");
    long frozenMs = (lastNanos("a", "thaw") - lastNanos("a", "freeze")) / 1_000_000;
    assertTrue(frozenMs >= 700 && frozenMs < 800 + 400, "a thawed " + frozenMs + " ms after its freeze");
    assertTrue(System.nanoTime() - t0 < Duration.ofSeconds(30).toNanos());
  }

  @Test
  void aThawAfterTheLeaseExpiredFailsAndTheWritersWereThawedAtTheDeadline() throws Exception {
    Path a = hooks("a", "true");
    try (FreezeLease lease = FreezeLease.start(List.of("exec:" + a), Duration.ofMillis(500))) {
      lease.prepare();
      lease.freeze();
      long frozeAt = lastNanos("a", "freeze");
      Thread.sleep(1500);
      FreezeLease.LeaseExpiredException e = assertThrows(FreezeLease.LeaseExpiredException.class, lease::thaw);
      assertTrue(e.getMessage().contains("expired"), e.getMessage());
      long thawedAfterMs = (lastNanos("a", "thaw") - frozeAt) / 1_000_000;
      assertTrue(thawedAfterMs >= 400 && thawedAfterMs < 500 + 400, "thawed " + thawedAfterMs + " ms after the freeze");
    }
  }

  @Test
  void theGuardThawsAtOnceWhenItsRequestorIsKilled() throws Exception {
    Path a = hooks("a", "true");
    Path work = Files.createDirectories(tmp.resolve("child"));
    try (ChildJvm child = ChildJvm.start(work, Requestor.class, "exec:" + a, "5000")) {
      assertFalse(child.awaitLine("FROZEN", Duration.ofSeconds(60)) == null, child.output());
      long killedAt = System.currentTimeMillis() * 1_000_000L;
      child.kill();
      long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
      while (!phases("a").contains("abort") && System.nanoTime() < deadline) {
        Thread.sleep(5);
      }
      assertTrue(phases("a").contains("thaw"), "never thawed: " + phases("a"));
      long afterMs = (lastNanos("a", "thaw") - killedAt) / 1_000_000;
      // well within the lease: the guard saw its input close
      assertTrue(afterMs < 1000, "thawed " + afterMs + " ms after the kill");
      assertEquals(List.of("freeze", "thaw", "abort"), phases("a"));
    }
  }

  @Test
  void aGuardKilledWhileAFilesystemIsFrozenLeavesItThawedByTheRequestor() throws Exception {
    try (LoopFilesystem fs = LoopFilesystem.create(Files.createDirectories(tmp.resolve("fs")), 32L << 20)) {
      FreezeLease lease = FreezeLease.start(List.of("fs:" + fs.mountPoint()), Duration.ofSeconds(30));
      try {
        lease.prepare();
        lease.freeze();
        assertTrue(frozen(fs.mountPoint()), "frozen by the guard");
        ProcessHandle.of(lease.pid()).orElseThrow().destroyForcibly();
        IOException e = assertThrows(IOException.class, lease::thaw);
        assertTrue(e.getMessage().contains("exited"), e.getMessage());
        assertFalse(frozen(fs.mountPoint()), "thawed by the requestor once its guard was gone");
      } finally {
        lease.close();
      }
    }
  }

  @Test
  void aPoolKeepsTheGuardOfACleanLeaseForTheNextAndForgetsItsWriters() throws Exception {
    Path a = hooks("a", "true");
    Path b = hooks("b", "true");
    long first;
    try (GuardPool pool = GuardPool.create()) {
      try (FreezeLease lease = FreezeLease.start(List.of("exec:" + a, "exec:" + b), Duration.ofSeconds(5), pool)) {
        first = lease.pid();
        lease.prepare();
        lease.freeze();
        lease.thaw();
      }
      assertTrue(ProcessHandle.of(first).map(ProcessHandle::isAlive).orElse(false), "the guard waits in the pool");
      try (FreezeLease lease = FreezeLease.start(List.of("exec:" + b), Duration.ofSeconds(5), pool)) {
        assertEquals(first, lease.pid(), "the second lease has the first one's guard");
        assertEquals(1, lease.identified().size(), "only this lease's writers: " + lease.identified());
        lease.prepare();
        lease.freeze();
        JsonNode thawed = lease.thaw();
        assertEquals(1, thawed.path("metadata").size());
        assertEquals("exec:" + b, thawed.path("metadata").get(0).path("writer").asText());
      }
    }
    assertEquals(List.of("freeze", "thaw"), phases("a"), "a was in the first lease only");
    assertEquals(List.of("freeze", "thaw", "freeze", "thaw"), phases("b"));
    ProcessHandle guard = ProcessHandle.of(first).orElse(null);
    if (guard != null) {
      guard.onExit().get(10, java.util.concurrent.TimeUnit.SECONDS);
    }
  }

  @Test
  void aGuardWhoseLeaseFailedOrExpiredIsNotKept() throws Exception {
    Path ok = hooks("ok", "true");
    Path veto = hooks("veto", "exit 4");
    try (GuardPool pool = GuardPool.create()) {
      long vetoed;
      try (FreezeLease lease = FreezeLease.start(List.of("exec:" + veto), Duration.ofSeconds(5), pool)) {
        vetoed = lease.pid();
        lease.prepare();
        assertThrows(IOException.class, lease::freeze);
        lease.abort();
      }
      long expired;
      try (FreezeLease lease = FreezeLease.start(List.of("exec:" + ok), Duration.ofMillis(300), pool)) {
        expired = lease.pid();
        assertTrue(expired != vetoed, "a new guard after a vetoed lease");
        lease.prepare();
        lease.freeze();
        Thread.sleep(800);
        assertThrows(FreezeLease.LeaseExpiredException.class, lease::thaw);
      }
      try (FreezeLease lease = FreezeLease.start(List.of("exec:" + ok), Duration.ofSeconds(5), pool)) {
        assertTrue(lease.pid() != expired && lease.pid() != vetoed, "a new guard after an expired lease");
        lease.prepare();
        lease.freeze();
        lease.thaw();
      }
      assertFalse(ProcessHandle.of(vetoed).map(ProcessHandle::isAlive).orElse(false));
      assertFalse(ProcessHandle.of(expired).map(ProcessHandle::isAlive).orElse(false));
    }
    assertEquals(List.of("freeze", "thaw", "abort", "freeze", "thaw"), phases("ok"));
  }

  /** True when a write to a file on {@code mount} does not finish within 300 ms (the filesystem is frozen). */
  private static boolean frozen(Path mount) throws Exception {
    Path probe = mount.resolve("probe-" + System.nanoTime());
    Thread t = new Thread(() -> {
      try {
        Files.writeString(probe, "x" + System.nanoTime());
      } catch (IOException e) {
        // reported by the caller's timing
      }
    });
    t.setDaemon(true);
    t.start();
    t.join(300);
    return t.isAlive(); // a stuck writer ends by itself when the filesystem thaws
  }

  /** A requestor that freezes and then waits to be killed. */
  public static final class Requestor {
    public static void main(String[] args) throws Exception {
      FreezeLease lease = FreezeLease.start(List.of(args[0]), Duration.ofMillis(Long.parseLong(args[1])));
      lease.prepare();
      lease.freeze();
      System.out.println("FROZEN");
      System.out.flush();
      Thread.sleep(60_000);
    }
  }
}
