package dev.shade.requestor.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.provider.Progress;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.SnapshotRef;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.requestor.control.ControlException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Rollback with writers that record their steps: order, restarts after failures, refusals, the before-rollback snapshot. */
class RollbackTest {
  private static final int SIZE = 4 << 20;
  private static final Clock CLOCK = Clock.fixed(Instant.parse("2026-12-01T10:20:30Z"), ZoneOffset.UTC);

  @TempDir Path tmp;
  private Volume v;
  private byte[] atS1;
  private byte[] current;
  private final List<String> log = new ArrayList<>();

  @BeforeEach
  void volume() throws IOException {
    v = Volume.create(tmp.resolve("db"), VolumeConfig.of(SIZE).withBlockSize(4096).withDiffMax(4L * SIZE));
    Random r = new Random(1);
    atS1 = new byte[SIZE];
    r.nextBytes(atS1);
    v.write(0, ByteBuffer.wrap(atS1));
    v.createSnapshot("s1");
    byte[] more = new byte[SIZE / 4];
    r.nextBytes(more);
    v.write(SIZE / 2, ByteBuffer.wrap(more));
    v.createSnapshot("s2");
    v.write(0, ByteBuffer.wrap(more, 0, 8192));
    current = image();
  }

  @AfterEach
  void close() throws IOException {
    v.close();
  }

  private byte[] image() throws IOException {
    ByteBuffer b = ByteBuffer.allocate(SIZE);
    v.read(0, b);
    return b.array();
  }

  private Map<String, Object> rollback(List<String> writers, Rollback.Clients clients, Progress progress) throws IOException {
    return Rollback.run(v, new Rollback.Options(SnapshotRef.ofName("s1"), writers, true, false, false),
        FakeWriter.factory(log), clients, progress, CLOCK);
  }

  private List<String> names() {
    return v.snapshots().stream().map(SnapshotInfo::name).toList();
  }

  @Test
  void rollback_stopsInOrderRevertsAndStartsInReverse() throws IOException {
    Map<String, Object> report = rollback(List.of("db", "fs"), Rollback.Clients.NONE, Progress.NONE);
    assertEquals(List.of("stop db", "stop fs", "start fs", "start db", "close db", "close fs"), log);
    assertArrayEquals(atS1, image());
    assertEquals(List.of("s1", "s2", "before-rollback-20261201T102030Z"), names());
    assertEquals("ok", report.get("outcome"));
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> steps = (List<Map<String, Object>>) report.get("steps");
    assertEquals(List.of("plan", "stop", "stop", "clients", "before-snapshot", "revert", "start", "start"),
        steps.stream().map(s -> s.get("step")).toList());
    assertTrue(steps.stream().allMatch(s -> s.get("outcome").equals("ok") && s.get("seconds") instanceof Double), steps::toString);
    @SuppressWarnings("unchecked")
    Map<String, Object> plan = (Map<String, Object>) report.get("plan");
    assertEquals(List.of(), plan.get("deleted"));
    assertEquals(1, ((List<?>) plan.get("newer")).size());

    // undo: back to the before-rollback snapshot
    Rollback.run(v, new Rollback.Options(SnapshotRef.ofName("before-rollback-20261201T102030Z"), List.of(), false, false, false),
        FakeWriter.factory(log), Rollback.Clients.NONE, Progress.NONE, CLOCK);
    assertArrayEquals(current, image());
    assertArrayEquals(atS1, read("s1"));
  }

  private byte[] read(String snapshot) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(SIZE);
    v.openSnapshot(snapshot).read(0, b);
    return b.array();
  }

  @Test
  void rollback_twiceInOneSecond_namesTheSecondSnapshotApart() throws IOException {
    rollback(List.of(), Rollback.Clients.NONE, Progress.NONE);
    rollback(List.of(), Rollback.Clients.NONE, Progress.NONE);
    assertEquals(List.of("s1", "s2", "before-rollback-20261201T102030Z", "before-rollback-20261201T102030Z-2"), names());
  }

  @Test
  void rollback_revertFails_startsWritersAgainAndReportsBoth() throws IOException {
    Progress failing = (done, total) -> {
      throw new IllegalStateException("disk went away");
    };
    Rollback.RollbackException e = assertThrows(Rollback.RollbackException.class,
        () -> rollback(List.of("db", "fs!start"), Rollback.Clients.NONE, failing));
    assertEquals(List.of("stop db", "stop fs!start", "start fs!start", "start db", "close db", "close fs!start"), log);
    assertTrue(e.getMessage().contains("disk went away") && e.getMessage().contains("cannot start fs!start"), e.getMessage());
    assertTrue(e.getMessage().contains("before-rollback-20261201T102030Z"), e.getMessage());
    assertEquals("failed", e.report().get("outcome"));
  }

  @Test
  void rollback_stopFails_startsTheStoppedAgainAndChangesNothing() throws IOException {
    Rollback.RollbackException e = assertThrows(Rollback.RollbackException.class,
        () -> rollback(List.of("db", "fs!stop", "other"), Rollback.Clients.NONE, Progress.NONE));
    assertEquals(List.of("stop db", "stop fs!stop", "start db", "close db", "close fs!stop", "close other"), log);
    assertTrue(e.getMessage().contains("cannot stop fs!stop") && e.getMessage().contains("started again: db"), e.getMessage());
    assertArrayEquals(current, image());
    assertEquals(List.of("s1", "s2"), names());
  }

  @Test
  void rollback_writableClientAndNothingToStopIt_refusesAndChangesNothing() throws IOException {
    ControlException e = assertThrows(ControlException.class, () -> rollback(List.of(), clients(List.of("nbd-1")), Progress.NONE));
    assertEquals(ControlException.IN_USE, e.errorClass());
    assertTrue(e.getMessage().contains("nbd-1") && e.getMessage().contains("disconnect"), e.getMessage());
    assertArrayEquals(current, image());
    assertEquals(List.of("s1", "s2"), names());
  }

  @Test
  void rollback_writableClientStaysAfterStopping_startsAgainAndRefuses() throws IOException {
    ControlException e = assertThrows(ControlException.class,
        () -> rollback(List.of("db"), clients(List.of("nbd-1")), Progress.NONE));
    assertEquals(ControlException.IN_USE, e.errorClass());
    assertTrue(e.getMessage().contains("after stopping db"), e.getMessage());
    assertEquals(List.of("stop db", "start db", "close db"), log);
    assertArrayEquals(current, image());
  }

  @Test
  void rollback_clientGoesShortlyAfterTheStopStep_waitsForItAndGoesThrough() throws IOException {
    int[] polls = {0};
    Rollback.Clients goingAway = new Rollback.Clients() {
      @Override
      public List<String> writableClients(Volume v) {
        // like a stop hook's nbd-client -d: the server sees the close a moment after the hook returned
        return log.contains("stop db") && ++polls[0] > 3 ? List.of() : List.of("nbd-1");
      }

      @Override
      public int disconnect(Volume v) {
        throw new AssertionError("not asked to disconnect");
      }
    };
    rollback(List.of("db"), goingAway, Progress.NONE);
    assertArrayEquals(atS1, image());
    assertEquals(List.of("stop db", "start db", "close db"), log);
  }

  @Test
  void dryRun_plansAndChangesNothing() throws IOException {
    Map<String, Object> report = Rollback.run(v, new Rollback.Options(SnapshotRef.ofName("s1"), List.of("db"), false, false, true),
        FakeWriter.factory(log), Rollback.Clients.NONE, Progress.NONE, CLOCK);
    @SuppressWarnings("unchecked")
    Map<String, Object> plan = (Map<String, Object>) report.get("plan");
    assertEquals(1, ((List<?>) plan.get("deleted")).size(), "without the before snapshot the newer ones are deleted");
    assertTrue((Long) plan.get("changedBytes") >= SIZE / 4, plan::toString);
    assertEquals(List.of("close db"), log, "made, to check the spec, and closed: never stopped");
    assertArrayEquals(current, image());
  }

  @Test
  void rollback_withoutBeforeSnapshot_deletesNewerSnapshots() throws IOException {
    Rollback.run(v, new Rollback.Options(SnapshotRef.ofName("s1"), List.of(), false, false, false),
        FakeWriter.factory(log), Rollback.Clients.NONE, Progress.NONE, CLOCK);
    assertEquals(List.of("s1"), names());
    assertArrayEquals(atS1, image());
  }

  /** Clients that stay writable until disconnected. */
  private static Rollback.Clients clients(List<String> writing) {
    List<String> now = new ArrayList<>(writing);
    return new Rollback.Clients() {
      @Override
      public List<String> writableClients(Volume v) {
        return List.copyOf(now);
      }

      @Override
      public int disconnect(Volume v) {
        int n = now.size();
        now.clear();
        return n;
      }
    };
  }

  @Test
  void rollback_disconnectClients_goesThrough() throws IOException {
    Map<String, Object> report = Rollback.run(v, new Rollback.Options(SnapshotRef.ofName("s1"), List.of(), true, true, false),
        FakeWriter.factory(log), clients(List.of("nbd-1")), Progress.NONE, CLOCK);
    assertArrayEquals(atS1, image());
    assertTrue(report.get("steps").toString().contains("clients=1"), report::toString);
  }
}
