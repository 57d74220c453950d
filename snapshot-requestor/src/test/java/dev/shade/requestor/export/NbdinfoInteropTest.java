package dev.shade.requestor.export;

import static dev.shade.requestor.export.Served.write;
import static dev.shade.testing.Bytes.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.shade.provider.Extent;
import dev.shade.provider.Range;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.testing.nbd.Exec;
import dev.shade.testing.nbd.Json;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** nbdinfo (libnbd) against the server: the export list, allocation maps and changed-block maps. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class NbdinfoInteropTest {
  private static final Duration TOOL_TIMEOUT = Duration.ofSeconds(30);
  private static final long MIB = 1 << 20;
  private static final int BLOCK = 64 * 1024;
  private static final long SIZE = 64 * MIB;
  /** nbdinfo's type for an extent that is a hole reading as zeros (base:allocation). */
  private static final long HOLE_ZERO = 3;
  private static final long DATA = 0;

  @TempDir Path dir;

  @BeforeEach
  void tools() {
    Exec.assumeTools("nbdinfo");
  }

  @Test
  void list_showsOriginAndEverySnapshotWithSize() throws Exception {
    long dbSize = 16 * MIB + 12 * 1024; // the last block is partial
    Volume vol = Volume.create(dir.resolve("vol"), VolumeConfig.of(SIZE));
    Volume db = Volume.create(dir.resolve("db"), VolumeConfig.of(dbSize));
    vol.createSnapshot("s1");
    db.createSnapshot("nightly");
    try (Served s = Served.start(vol, db)) {
      vol.createSnapshot("s2"); // taken while serving: must be listed too

      Map<String, Map<String, Object>> exports = list(s);
      assertEquals(List.of("db", "db@nightly", "vol", "vol@s1", "vol@s2"), new ArrayList<>(exports.keySet()),
          "exports listed by nbdinfo --list");
      for (String name : List.of("vol", "vol@s1", "vol@s2")) {
        assertEquals(SIZE, Json.integer(exports.get(name), "export-size"), "size of " + name);
      }
      for (String name : List.of("db", "db@nightly")) {
        assertEquals(dbSize, Json.integer(exports.get(name), "export-size"), "size of " + name);
      }
      for (Map.Entry<String, Map<String, Object>> e : exports.entrySet()) {
        boolean snapshot = e.getKey().contains("@");
        assertEquals(snapshot, e.getValue().get("is_read_only"), "is_read_only of " + e.getKey());
      }
      assertEquals(List.of("base:allocation", "shade:changed:s1", "shade:changed:s2"),
          exports.get("vol").get("contexts"), "meta contexts of vol");

      vol.deleteSnapshot("s1");
      assertEquals(List.of("db", "db@nightly", "vol", "vol@s2"), new ArrayList<>(list(s).keySet()),
          "exports after deleting s1");
    }
  }

  @Test
  void map_sparseVolume_showsHolesAndDataAtBlockGranularity() throws Exception {
    Volume v = Volume.create(dir.resolve("vol"), VolumeConfig.of(SIZE));
    assumeTrue(v.allocation(null, 0, SIZE).equals(List.of(new Extent(0, SIZE, true))),
        () -> "skipped: the filesystem of " + dir + " does not report holes of a new sparse file (SEEK_HOLE)");
    write(v, 0, random(1, BLOCK));
    write(v, 1 * MIB, random(2, 3 * BLOCK));
    write(v, SIZE - BLOCK, random(3, BLOCK));
    List<long[]> expected = List.of(
        new long[] {0, BLOCK, DATA},
        new long[] {BLOCK, MIB - BLOCK, HOLE_ZERO},
        new long[] {MIB, 3 * BLOCK, DATA},
        new long[] {MIB + 3 * BLOCK, SIZE - BLOCK - (MIB + 3 * BLOCK), HOLE_ZERO},
        new long[] {SIZE - BLOCK, BLOCK, DATA});
    v.createSnapshot("s1");
    write(v, 0, random(4, 4096)); // copied on write: s1 keeps block 0 as data
    try (Served s = Served.start(v)) {
      List<long[]> origin = map(s, "vol", "base:allocation");
      assertExtents(expected, origin, "nbdinfo --map of vol");
      assertExtents(fromVolume(v.allocation(null, 0, SIZE)), origin, "nbdinfo --map of vol against Volume.allocation");

      List<long[]> snapshot = map(s, "vol@s1", "base:allocation");
      assertExtents(expected, snapshot, "nbdinfo --map of vol@s1");
      assertExtents(fromVolume(v.allocation("s1", 0, SIZE)), snapshot, "nbdinfo --map of vol@s1 against Volume.allocation");
    }
  }

  @Test
  void mapChanged_showsExactlyTheBlocksWrittenSinceSnapshot() throws Exception {
    Volume v = Volume.create(dir.resolve("vol"), VolumeConfig.of(SIZE).withDiffMax(SIZE));
    write(v, 0, random(1, 2 * BLOCK));
    write(v, 30 * MIB, random(2, BLOCK));
    v.createSnapshot("s1");
    write(v, 5 * MIB + 100, random(3, 10)); // inside one block
    write(v, 2 * MIB - 4096, random(4, 8192)); // straddles blocks 31 and 32
    write(v, 10 * MIB, random(5, 3 * BLOCK)); // three whole blocks
    write(v, 0, random(6, 4096)); // part of a block that had data
    write(v, SIZE - 1, random(7, 1)); // the last byte
    List<Range> sinceS1 = List.of(
        new Range(0, BLOCK),
        new Range(2 * MIB - BLOCK, 2 * BLOCK),
        new Range(5 * MIB, BLOCK),
        new Range(10 * MIB, 3 * BLOCK),
        new Range(SIZE - BLOCK, BLOCK));
    assertEquals(sinceS1, v.changedRanges("s1", null), "Volume.changedRanges(s1, origin)");
    v.createSnapshot("s2");
    write(v, 20 * MIB, random(8, BLOCK));
    List<Range> sinceS2 = List.of(new Range(20 * MIB, BLOCK));
    List<Range> originSinceS1 = new ArrayList<>(sinceS1);
    originSinceS1.add(4, new Range(20 * MIB, BLOCK)); // sorted: after the one at 10 MiB

    try (Served s = Served.start(v)) {
      assertEquals(originSinceS1, changed(map(s, "vol", "shade:changed:s1")), "vol, shade:changed:s1");
      assertEquals(v.changedRanges("s1", null), changed(map(s, "vol", "shade:changed:s1")),
          "vol, shade:changed:s1 against Volume.changedRanges");
      assertEquals(sinceS2, changed(map(s, "vol", "shade:changed:s2")), "vol, shade:changed:s2");
      assertEquals(sinceS1, changed(map(s, "vol@s2", "shade:changed:s1")), "vol@s2, shade:changed:s1");
      assertEquals(v.changedRanges("s1", "s2"), changed(map(s, "vol@s2", "shade:changed:s1")),
          "vol@s2, shade:changed:s1 against Volume.changedRanges");
      assertEquals(List.of(), changed(map(s, "vol@s1", "shade:changed:s1")), "vol@s1, shade:changed:s1");
    }
  }

  // ------------------------------------------------------------------ helpers

  /** The exports of {@code nbdinfo --list --json}, by name, sorted. */
  private static Map<String, Map<String, Object>> list(Served s) throws IOException, InterruptedException {
    Exec.Result r = Exec.run(TOOL_TIMEOUT, "nbdinfo", "--list", "--json", "nbd://127.0.0.1:" + s.address().getPort())
        .assertSuccess();
    Map<String, Map<String, Object>> out = new TreeMap<>();
    for (Object o : Json.array(Json.object(Json.parse(r.stdout())).get("exports"))) {
      Map<String, Object> e = Json.object(o);
      out.put((String) e.get("export-name"), e);
    }
    return out;
  }

  /**
   * The extents {offset, length, type} of {@code nbdinfo --map=CONTEXT --json}, adjacent ones
   * of one type merged (nbdinfo may split them at its request boundaries); they must cover the
   * export from 0 to its end.
   */
  private static List<long[]> map(Served s, String export, String context) throws IOException, InterruptedException {
    Exec.Result r = Exec.run(TOOL_TIMEOUT, "nbdinfo", "--map=" + context, "--json", s.uri(export)).assertSuccess();
    List<long[]> out = new ArrayList<>();
    long next = 0;
    for (Object o : Json.array(Json.parse(r.stdout()))) {
      Map<String, Object> e = Json.object(o);
      long offset = Json.integer(e, "offset");
      long length = Json.integer(e, "length");
      long type = Json.integer(e, "type");
      assertEquals(next, offset, "extent of " + export + " (" + context + ") starts where the previous ended: " + r);
      next = offset + length;
      long[] last = out.isEmpty() ? null : out.get(out.size() - 1);
      if (last != null && last[2] == type) {
        last[1] += length;
      } else {
        out.add(new long[] {offset, length, type});
      }
    }
    assertEquals(s.volume().size(), next, "extents of " + export + " (" + context + ") end at the export size: " + r);
    return out;
  }

  /** The ranges of type 1 (changed) of a shade:changed map. */
  private static List<Range> changed(List<long[]> extents) {
    List<Range> out = new ArrayList<>();
    for (long[] e : extents) {
      assertTrue(e[2] == 0 || e[2] == 1, "shade:changed status is 0 or 1: " + e[2]);
      if (e[2] == 1) {
        out.add(new Range(e[0], e[1]));
      }
    }
    return out;
  }

  private static List<long[]> fromVolume(List<Extent> extents) {
    List<long[]> out = new ArrayList<>();
    for (Extent x : extents) {
      out.add(new long[] {x.offset(), x.length(), x.zero() ? HOLE_ZERO : DATA});
    }
    return out;
  }

  private static void assertExtents(List<long[]> expected, List<long[]> actual, String what) {
    assertEquals(show(expected), show(actual), what);
    assertFalse(actual.isEmpty(), what);
  }

  private static String show(List<long[]> extents) {
    StringBuilder sb = new StringBuilder();
    for (long[] e : extents) {
      sb.append(String.format("%12d %12d %d%n", e[0], e[1], e[2]));
    }
    return sb.toString();
  }
}
