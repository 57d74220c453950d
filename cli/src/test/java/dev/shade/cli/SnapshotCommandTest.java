package dev.shade.cli;

import static dev.shade.cli.VolumeCommandTest.assertFails;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SnapshotCommandTest {
  private static final int MIB = 1 << 20;

  @TempDir Path tmp;

  @Test
  void create_defaultNameAndJsonShape() {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    JsonNode doc = Cli.run("snapshot", "create", dir, "--json").ok().json();
    assertTrue(doc.get("setId").isNull(), doc::toString);
    assertEquals(1, doc.get("snapshots").size());
    JsonNode s = doc.get("snapshots").get(0);
    assertEquals("db", s.get("volume").asText());
    assertEquals(dir.toAbsolutePath().toString(), s.get("directory").asText());
    assertEquals("s1", s.get("name").asText());
    assertEquals(1, s.get("id").asLong());
    Instant.parse(s.get("created").asText());
    assertEquals(0, s.get("diffBytes").asLong());
    assertTrue(s.get("setId").isNull());
  }

  @Test
  void snapshots_areNamedByIdToo_andIdsAreNeverReused() {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    long first = Cli.run("snapshot", "create", dir, "--name", "x", "--json").ok().json().get("snapshots").get(0)
        .get("id").asLong();
    Cli.run("snapshot", "delete", dir, "id=" + first).ok();
    long second = Cli.run("snapshot", "create", dir, "--name", "x", "--json").ok().json().get("snapshots").get(0)
        .get("id").asLong();
    assertTrue(second > first, "a name may come back, its id may not: " + first + " then " + second);

    Cli.Result gone = Cli.run("snapshot", "diff", dir, "id=" + first);
    assertEquals(1, gone.code(), gone::toString);
    JsonNode diff = Cli.run("snapshot", "diff", dir, "id=" + second, "--json").ok().json();
    assertEquals("x", diff.get("from").asText());
    assertEquals(second, diff.get("fromId").asLong());
    JsonNode deleted = Cli.run("snapshot", "delete", dir, "x", "--json").ok().json();
    assertEquals(second, deleted.get("id").asLong());

    Cli.Result bad = Cli.run("snapshot", "delete", dir, "id=zero");
    assertEquals(2, bad.code(), bad::toString);
    assertTrue(bad.err().contains("positive integer"), bad::toString);
  }

  @Test
  void list_jsonIsArrayOldestFirst() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    Path data = TestVolumes.file(tmp, "d", TestVolumes.random(1, 3 * 4096));
    Cli.run("volume", "import", dir, data).ok();
    Cli.run("snapshot", "create", dir, "--name", "monday").ok();
    Cli.run("volume", "import", dir, data).ok();
    Cli.run("snapshot", "create", dir, "--name", "tuesday").ok();

    JsonNode list = Cli.run("snapshot", "list", dir, "--json").ok().json();
    assertTrue(list.isArray());
    assertEquals(2, list.size());
    assertEquals("monday", list.get(0).get("name").asText());
    assertEquals("tuesday", list.get(1).get("name").asText());
    assertEquals(3 * 4096, list.get(0).get("diffBytes").asLong(), list::toString);
    for (JsonNode s : list) {
      assertTrue(s.has("created") && s.has("diffBytes") && s.has("id") && s.has("setId"), s::toString);
      Instant.parse(s.get("created").asText());
    }
    String text = Cli.run("snapshot", "list", dir).ok().out();
    assertTrue(text.startsWith("NAME"), text);
    assertTrue(text.contains("monday") && text.contains("12 KiB"), text);
  }

  @Test
  void list_emptyVolume() {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    assertEquals(0, Cli.run("snapshot", "list", dir, "--json").ok().json().size());
    assertTrue(Cli.run("snapshot", "list", dir).ok().out().contains("No snapshots"));
  }

  @Test
  void create_duplicateNameFailsAndChangesNothing() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    Cli.run("snapshot", "create", dir, "--name", "a").ok();
    TestVolumes.State before = TestVolumes.state(dir);
    assertFails(Cli.run("snapshot", "create", dir, "--name", "a"), ExitCodes.FAILURE, "already has a snapshot named 'a'");
    assertEquals(before, TestVolumes.state(dir));
  }

  @Test
  void create_invalidNameIsUsageError() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    assertFails(Cli.run("snapshot", "create", dir, "--name", "a/b"), ExitCodes.USAGE, "invalid snapshot name 'a/b'");
    assertEquals(List.of(), TestVolumes.state(dir).snapshots());
  }

  @Test
  void export_equalsTheDataAtSnapshotTimeByteForByte() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "2M");
    byte[] first = TestVolumes.random(2, MIB + 4096 + 17);
    Cli.run("volume", "import", dir, TestVolumes.file(tmp, "first", first)).ok();
    Cli.run("snapshot", "create", dir, "--name", "then").ok();
    byte[] second = TestVolumes.random(3, MIB);
    Cli.run("volume", "import", dir, TestVolumes.file(tmp, "second", second), "--offset", "512K").ok();

    Path then = tmp.resolve("then.img");
    Cli.Result r = Cli.run("snapshot", "export", dir, "then", then).ok();
    assertTrue(r.out().contains("Exported snapshot 'then'"), r::toString);
    assertArrayEquals(TestVolumes.placed(first, 0, 2 * MIB), Files.readAllBytes(then));

    byte[] now = TestVolumes.placed(first, 0, 2 * MIB);
    System.arraycopy(second, 0, now, 512 * 1024, second.length);
    assertArrayEquals(now, TestVolumes.image(dir), "the origin has the later write");
  }

  @Test
  void export_unknownSnapshotFailsAndWritesNothing() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    Path out = tmp.resolve("x.img");
    assertFails(Cli.run("snapshot", "export", dir, "nope", out), ExitCodes.FAILURE, "no snapshot named 'nope'");
    assertFalse(Files.exists(out));
  }

  @Test
  void delete_removesOnlyThatSnapshot() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    Path data = TestVolumes.file(tmp, "d", TestVolumes.random(4, 8192));
    Cli.run("volume", "import", dir, data).ok();
    Cli.run("snapshot", "create", dir, "--name", "a").ok();
    Cli.run("snapshot", "create", dir, "--name", "b").ok();
    byte[] bImage = TestVolumes.snapshotImage(dir, "b");
    Cli.run("volume", "import", dir, TestVolumes.file(tmp, "e", TestVolumes.random(5, 8192))).ok();

    Cli.Result r = Cli.run("snapshot", "delete", dir, "a").ok();
    assertTrue(r.out().contains("Deleted snapshot 'a'"), r::toString);
    TestVolumes.State after = TestVolumes.state(dir);
    assertEquals(List.of("b"), after.snapshots().stream().map(s -> s.name()).toList());
    assertArrayEquals(bImage, TestVolumes.snapshotImage(dir, "b"));
  }

  @Test
  void delete_unknownSnapshotFailsAndChangesNothing() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    Cli.run("volume", "import", dir, TestVolumes.file(tmp, "d", TestVolumes.random(6, 8192))).ok();
    Cli.run("snapshot", "create", dir, "--name", "a").ok();
    TestVolumes.State before = TestVolumes.state(dir);
    assertFails(Cli.run("snapshot", "delete", dir, "nope"), ExitCodes.FAILURE, "no snapshot named 'nope' on volume db");
    assertEquals(before, TestVolumes.state(dir));
  }

  @Test
  void diff_jsonRangesAgainstOriginAndBetweenSnapshots() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    Cli.run("volume", "import", dir, TestVolumes.file(tmp, "d", TestVolumes.random(7, MIB))).ok();
    Cli.run("snapshot", "create", dir, "--name", "a").ok();
    // one byte into block 2, and blocks 10..12 (4 KiB blocks)
    Cli.run("volume", "import", dir, TestVolumes.file(tmp, "one", new byte[] {9}), "--offset", 2 * 4096 + 100).ok();
    Cli.run("volume", "import", dir, TestVolumes.file(tmp, "three", TestVolumes.random(8, 3 * 4096)),
        "--offset", 10 * 4096).ok();
    Cli.run("snapshot", "create", dir, "--name", "b").ok();
    Cli.run("volume", "import", dir, TestVolumes.file(tmp, "late", TestVolumes.random(9, 4096)),
        "--offset", 100 * 4096).ok();

    JsonNode ab = Cli.run("snapshot", "diff", dir, "a", "b", "--json").ok().json();
    assertRanges(ab, 2 * 4096, 4096, 10 * 4096, 3 * 4096);
    assertEquals(4 * 4096, ab.get("changedBytes").asLong());
    assertEquals("a", ab.get("from").asText());
    assertEquals("b", ab.get("to").asText());

    JsonNode aNow = Cli.run("snapshot", "diff", dir, "a", "--json").ok().json();
    assertRanges(aNow, 2 * 4096, 4096, 10 * 4096, 3 * 4096, 100 * 4096, 4096);
    assertEquals(5 * 4096, aNow.get("changedBytes").asLong());
    assertTrue(aNow.get("to").isNull());

    String text = Cli.run("snapshot", "diff", dir, "b").ok().out();
    assertTrue(text.contains("4 KiB (4096 bytes) in 1 range"), text);
    assertTrue(text.contains("409600"), text);
  }

  private static void assertRanges(JsonNode doc, long... offsetLength) {
    JsonNode ranges = doc.get("ranges");
    assertEquals(offsetLength.length / 2, ranges.size(), doc::toString);
    for (int i = 0; i < ranges.size(); i++) {
      assertEquals(List.of("offset", "length"), fieldNames(ranges.get(i)), doc::toString);
      assertEquals(offsetLength[2 * i], ranges.get(i).get("offset").asLong(), doc::toString);
      assertEquals(offsetLength[2 * i + 1], ranges.get(i).get("length").asLong(), doc::toString);
    }
  }

  private static List<String> fieldNames(JsonNode object) {
    List<String> names = new java.util.ArrayList<>();
    object.fieldNames().forEachRemaining(names::add);
    return names;
  }

  @Test
  void diff_unknownSnapshotFails() {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    Cli.run("snapshot", "create", dir, "--name", "a").ok();
    assertFails(Cli.run("snapshot", "diff", dir, "nope"), ExitCodes.FAILURE, "no snapshot named 'nope'");
    assertFails(Cli.run("snapshot", "diff", dir, "a", "nope", "--json"), ExitCodes.FAILURE, "no snapshot named 'nope'");
  }

  @Test
  void createSet_acrossTwoVolumesSharesOneSetId() throws IOException {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    Path wal = TestVolumes.create(tmp.resolve("wal"), "1M");
    byte[] dbData = TestVolumes.random(10, 64 * 1024);
    byte[] walData = TestVolumes.random(11, 32 * 1024);
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "dbd", dbData)).ok();
    Cli.run("volume", "import", wal, TestVolumes.file(tmp, "wald", walData)).ok();

    JsonNode doc = Cli.run("snapshot", "create", wal, db, "--name", "nightly", "--json").ok().json();
    String setId = doc.get("setId").asText();
    assertFalse(doc.get("setId").isNull());
    JsonNode members = doc.get("snapshots");
    assertEquals(2, members.size());
    assertEquals("wal", members.get(0).get("volume").asText(), "members in the order given");
    assertEquals("db", members.get(1).get("volume").asText());
    for (JsonNode m : members) {
      assertEquals("nightly", m.get("name").asText());
      assertEquals(setId, m.get("setId").asText());
    }
    assertEquals(members.get(0).get("created"), members.get(1).get("created"), "one instant");

    for (Path dir : List.of(db, wal)) {
      JsonNode list = Cli.run("snapshot", "list", dir, "--json").ok().json();
      assertEquals(setId, list.get(0).get("setId").asText());
    }
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "later", TestVolumes.random(12, 64 * 1024))).ok();
    assertArrayEquals(TestVolumes.placed(dbData, 0, MIB), TestVolumes.snapshotImage(db, "nightly"));
    assertArrayEquals(TestVolumes.placed(walData, 0, MIB), TestVolumes.snapshotImage(wal, "nightly"));
  }

  @Test
  void createSet_textNamesTheSet() {
    Path a = TestVolumes.create(tmp.resolve("a"), "1M");
    Path b = TestVolumes.create(tmp.resolve("b"), "1M");
    String out = Cli.run("snapshot", "create", a, b).ok().out();
    assertTrue(out.startsWith("Created snapshot set "), out);
    assertTrue(out.contains("of volume 'a'") && out.contains("of volume 'b'"), out);
  }

  @Test
  void createSet_withAMissingVolumeFailsAndSnapshotsNone() throws IOException {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    TestVolumes.State before = TestVolumes.state(db);
    assertFails(Cli.run("snapshot", "create", db, tmp.resolve("nope"), "--name", "x"), ExitCodes.FAILURE,
        "volume directory does not exist");
    assertEquals(before, TestVolumes.state(db));
  }

  @Test
  void createSet_sameVolumeTwiceIsUsageError() throws IOException {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    assertFails(Cli.run("snapshot", "create", db, tmp.resolve("x/../db")), ExitCodes.USAGE, "volume named twice");
    assertEquals(List.of(), TestVolumes.state(db).snapshots());
  }

  @Test
  void create_withAttributes_showAndListCarryThem() {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    JsonNode doc = Cli.run("snapshot", "create", dir, "--name", "n", "--attribute", "writer=postgresql",
        "--attribute", "backup_label=START WAL LOCATION: 0/2000028\nCHECKPOINT LOCATION: 0/2000060\n",
        "--attribute", "empty=", "--attribute", "eq=a=b", "--json").ok().json();
    JsonNode attrs = doc.get("snapshots").get(0).get("attributes");
    assertEquals("postgresql", attrs.get("writer").asText());
    assertEquals("", attrs.get("empty").asText());
    assertEquals("a=b", attrs.get("eq").asText(), "the value runs from the first '='");
    assertEquals(List.of("writer", "backup_label", "empty", "eq"), fieldNames(attrs), "order kept");

    JsonNode shown = Cli.run("snapshot", "show", dir, "n", "--json").ok().json();
    assertEquals("db", shown.get("volume").asText());
    assertFalse(shown.get("volumeUuid").asText().isEmpty());
    assertEquals("n", shown.get("name").asText());
    assertEquals(1, shown.get("id").asLong());
    assertEquals(attrs, shown.get("attributes"));
    assertEquals(shown, Cli.run("snapshot", "show", dir, "id=1", "--json").ok().json());
    assertEquals(attrs, Cli.run("snapshot", "list", dir, "--json").ok().json().get(0).get("attributes"));

    String text = Cli.run("snapshot", "show", dir, "n").ok().out();
    List<String> lines = text.lines().toList();
    assertEquals("name:       n", lines.get(0), text);
    assertEquals("id:         1", lines.get(1), text);
    assertTrue(lines.get(2).startsWith("created:    "), text);
    assertEquals("diff bytes: 0 (0 B)", lines.get(3), text);
    assertEquals("set id:     -", lines.get(4), text);
    assertEquals(List.of("attributes:", "  writer: postgresql", "  backup_label:", "    START WAL LOCATION: 0/2000028",
        "    CHECKPOINT LOCATION: 0/2000060", "  empty: ", "  eq: a=b"), lines.subList(5, lines.size()), text);
  }

  @Test
  void show_withoutAttributes_andUnknown() {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    Cli.run("snapshot", "create", dir, "--name", "plain").ok();
    assertTrue(Cli.run("snapshot", "show", dir, "plain").ok().out().endsWith("attributes: none\n"));
    assertEquals(0, Cli.run("snapshot", "show", dir, "plain", "--json").ok().json().get("attributes").size());
    assertTrue(Cli.run("snapshot", "create", dir, "--json").ok().json().get("snapshots").get(0).get("attributes")
        .isObject(), "always present");
    assertFails(Cli.run("snapshot", "show", dir, "nope"), ExitCodes.FAILURE, "nope");
  }

  @Test
  void create_badAttributesAreUsageErrorsAndTakeNothing() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    assertFails(Cli.run("snapshot", "create", dir, "--attribute", "novalue"), ExitCodes.USAGE, "KEY=VALUE");
    assertFails(Cli.run("snapshot", "create", dir, "--attribute", "bad key=v"), ExitCodes.USAGE, "'bad key'");
    assertFails(Cli.run("snapshot", "create", dir, "--attribute", "k=1", "--attribute", "k=2"), ExitCodes.USAGE,
        "given twice");
    assertEquals(List.of(), TestVolumes.state(dir).snapshots());
  }

  @Test
  void createSet_withAttributes_givesThemToEveryMember() {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    Path wal = TestVolumes.create(tmp.resolve("wal"), "1M");
    JsonNode doc = Cli.run("snapshot", "create", db, wal, "--name", "both", "--attribute", "made-by=schedule",
        "--json").ok().json();
    for (JsonNode s : doc.get("snapshots")) {
      assertEquals("schedule", s.get("attributes").get("made-by").asText(), doc::toString);
    }
    assertEquals("schedule", Cli.run("snapshot", "show", wal, "both", "--json").ok().json().get("attributes")
        .get("made-by").asText());
  }
}
