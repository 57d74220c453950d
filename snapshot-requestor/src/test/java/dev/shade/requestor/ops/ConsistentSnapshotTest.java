package dev.shade.requestor.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.SnapshotRef;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.requestor.writer.WriterMetadata;
import dev.shade.testing.ChildJvm;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Consistent snapshot sets over real volumes with hook writers, including a lease that expires and a requestor killed midway. */
class ConsistentSnapshotTest {
  private static final long SIZE = 4 << 20;
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  private Path hooks(String name, String phase, String body) throws IOException {
    Path dir = Files.createDirectories(tmp.resolve(name));
    Path log = tmp.resolve(name + ".log");
    Path hook = dir.resolve("50-hook");
    Files.writeString(hook, "#!/bin/sh\necho \"$1\" >> '" + log + "'\nif [ \"$1\" = " + phase + " ]; then\n" + body + "\nfi\n");
    Files.setPosixFilePermissions(hook, PosixFilePermissions.fromString("rwxr-xr-x"));
    return dir;
  }

  private List<String> phases(String name) throws IOException {
    Path log = tmp.resolve(name + ".log");
    return Files.exists(log) ? Files.readAllLines(log) : List.of();
  }

  private List<Volume> volumes() throws IOException {
    List<Volume> vs = new ArrayList<>();
    vs.add(Volume.create(tmp.resolve("pg"), VolumeConfig.of(SIZE)));
    vs.add(Volume.create(tmp.resolve("wal"), VolumeConfig.of(SIZE)));
    return vs;
  }

  @Test
  void aSetWithWritersKeepsTheirMetadataAndReportsThePhases() throws Exception {
    Path h = hooks("app", "freeze", "true");
    List<Volume> vs = volumes();
    try {
      Map<String, Object> doc = ConsistentSnapshot.take(vs, List.of("exec:" + h), "nightly", Duration.ofSeconds(5),
          Map.of("shade.schedule", "hourly"));
      JsonNode d = JSON.valueToTree(doc);
      assertNotNull(d.path("setId").textValue());
      assertEquals(2, d.path("snapshots").size());
      assertTrue(d.path("freezeMs").asDouble() > 0, d.toString());
      assertEquals(5000, d.path("freezeTimeoutMs").asLong());
      assertEquals("exec:" + h, d.path("writers").get(0).path("writer").asText());
      assertTrue(d.path("writers").get(0).path("phases").has("freezeMs"));
      assertEquals(List.of("freeze", "thaw"), phases("app"));
      for (Volume v : vs) {
        SnapshotInfo s = v.snapshot(SnapshotRef.ofName("nightly"));
        assertEquals("hourly", s.attributes().get("shade.schedule"));
        assertNull(s.attributes().get(ConsistentSnapshot.STATE), "no longer pending");
        assertEquals(d.path("freezeMs").asDouble(), Double.parseDouble(s.attributes().get(ConsistentSnapshot.FROZEN_MS)));
        JsonNode meta = JSON.readTree(s.attributes().get(WriterMetadata.ATTRIBUTE));
        assertEquals("exec:" + h, meta.get(0).path("writer").asText());
      }
    } finally {
      for (Volume v : vs) {
        v.close();
      }
    }
  }

  @Test
  void aVetoLeavesNoSnapshotOnAnyVolume() throws Exception {
    Path ok = hooks("ok", "freeze", "true");
    Path veto = hooks("veto", "freeze", "echo 'replica lag too high' >&2; exit 1");
    List<Volume> vs = volumes();
    try {
      IOException e = assertThrows(IOException.class, () -> ConsistentSnapshot.take(vs,
          List.of("exec:" + ok, "exec:" + veto), "s1", Duration.ofSeconds(5), Map.of()));
      assertTrue(e.getMessage().contains("replica lag too high"), e.getMessage());
      for (Volume v : vs) {
        assertEquals(List.of(), v.snapshots());
      }
      assertEquals(List.of("freeze", "thaw", "abort"), phases("ok"));
      assertEquals(List.of("freeze", "thaw", "abort"), phases("veto"));
      // the set was aborted cleanly: the next one works
      ConsistentSnapshot.take(vs, List.of("exec:" + ok), "s2", Duration.ofSeconds(5), Map.of());
      assertEquals("s2", vs.get(1).snapshots().get(0).name());
    } finally {
      for (Volume v : vs) {
        v.close();
      }
    }
  }

  @Test
  void aLeaseThatExpiresDuringTheCommitDiscardsTheSnapshot() throws Exception {
    Path h = hooks("app", "freeze", "true");
    List<Volume> vs = volumes();
    for (Volume v : vs) {
      v.close();
    }
    // the commit pauses 1.5 s between the two members' records, past the 400 ms lease
    Path work = Files.createDirectories(tmp.resolve("child"));
    try (ChildJvm child = ChildJvm.start(work, List.of("-Dshade.test.setMemberPauseMs=1500"), Requestor.class,
        "take", tmp.resolve("pg").toString(), tmp.resolve("wal").toString(), "exec:" + h, "400")) {
      String line = child.awaitLine("RESULT", Duration.ofSeconds(60));
      assertNotNull(line, child.output());
      assertTrue(line.contains("expired") && line.contains("discarded"), line);
    }
    for (String dir : List.of("pg", "wal")) {
      try (Volume v = Volume.open(tmp.resolve(dir))) {
        assertEquals(List.of(), v.snapshots(), dir);
      }
    }
    assertEquals(List.of("freeze", "thaw", "abort"), phases("app"));
  }

  @Test
  void aSnapshotWhoseRequestorWasKilledBeforeItFinishedIsDiscardedOnTheNextOpen() throws Exception {
    // the thaw hook outlives the requestor: it is killed after the commit, before the metadata
    Path h = hooks("app", "thaw", "sleep 4");
    List<Volume> vs = volumes();
    for (Volume v : vs) {
      v.close();
    }
    Path work = Files.createDirectories(tmp.resolve("child"));
    try (ChildJvm child = ChildJvm.start(work, Requestor.class,
        "take", tmp.resolve("pg").toString(), tmp.resolve("wal").toString(), "exec:" + h, "5000")) {
      long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      while (!phases("app").contains("thaw") && System.nanoTime() < deadline) {
        Thread.sleep(10);
      }
      assertTrue(phases("app").contains("thaw"), child.output());
      child.kill();
    }
    List<Volume> reopened = new ArrayList<>();
    try {
      for (String dir : List.of("pg", "wal")) {
        reopened.add(Volume.open(tmp.resolve(dir)));
      }
      // the commit deferred its durability to after the thaw: the set may be gone with the
      // process; what is left of it is marked pending
      int left = 0;
      for (Volume v : reopened) {
        assertTrue(v.snapshots().size() <= 1, v.snapshots().toString());
        for (var s : v.snapshots()) {
          assertEquals(ConsistentSnapshot.PENDING, s.attributes().get(ConsistentSnapshot.STATE));
          left++;
        }
      }
      List<Map<String, Object>> gone = ConsistentSnapshot.discardUnfinished(reopened);
      assertEquals(left, gone.size());
      for (Volume v : reopened) {
        assertEquals(List.of(), v.snapshots());
      }
    } finally {
      for (Volume v : reopened) {
        v.close();
      }
    }
  }

  @Test
  void discardUnfinishedDeletesOnlyTheSnapshotsMarkedPending() throws Exception {
    List<Volume> vs = volumes();
    try {
      vs.get(0).createSnapshot("done", Map.of("k", "v"));
      vs.get(0).createSnapshot("unfinished", Map.of(ConsistentSnapshot.STATE, ConsistentSnapshot.PENDING));
      vs.get(1).createSnapshot("unfinished", Map.of(ConsistentSnapshot.STATE, ConsistentSnapshot.PENDING));
      List<Map<String, Object>> gone = ConsistentSnapshot.discardUnfinished(vs);
      assertEquals(2, gone.size());
      assertEquals(List.of("done"), vs.get(0).snapshots().stream().map(s -> s.name()).toList());
      assertEquals(List.of(), vs.get(1).snapshots());
    } finally {
      for (Volume v : vs) {
        v.close();
      }
    }
  }

  /** Opens two volumes and takes one consistent set, printing RESULT ok or RESULT error. */
  public static final class Requestor {
    public static void main(String[] args) throws Exception {
      List<Volume> vs = List.of(Volume.open(Path.of(args[1])), Volume.open(Path.of(args[2])));
      try {
        ConsistentSnapshot.take(vs, List.of(args[3]), "s1", Duration.ofMillis(Long.parseLong(args[4])), Map.of());
        System.out.println("RESULT ok");
      } catch (IOException e) {
        System.out.println("RESULT error " + e.getMessage());
      } finally {
        for (Volume v : vs) {
          v.close();
        }
      }
      System.out.flush();
    }
  }
}
