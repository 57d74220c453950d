package dev.shade.requestor.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.provider.Progress;
import dev.shade.provider.SnapshotNotFoundException;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.requestor.control.ControlException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The snapshot attribute commands: at create, show, replace, and their argument errors. */
class VolumeCommandsTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;
  private Volume db;
  private Volume wal;
  private VolumeCommands.Volumes volumes;

  @BeforeEach
  void open() throws IOException {
    db = Volume.create(tmp.resolve("db"), VolumeConfig.of(1 << 20).withBlockSize(4096).withDiffMax(4 << 20));
    wal = Volume.create(tmp.resolve("wal"), VolumeConfig.of(1 << 20).withBlockSize(4096).withDiffMax(4 << 20));
    volumes = ref -> switch (ref) {
      case "db" -> db;
      case "wal" -> wal;
      default -> throw new IOException("no volume " + ref);
    };
  }

  @AfterEach
  void close() throws IOException {
    db.close();
    wal.close();
  }

  private JsonNode run(String command, String args) throws IOException {
    return JSON.valueToTree(VolumeCommands.execute(command, JSON.readTree(args), volumes, Progress.NONE));
  }

  @Test
  void commands_includeShowAndSetAttributes() {
    assertTrue(VolumeCommands.COMMANDS.contains(VolumeCommands.SNAPSHOT_SHOW));
    assertTrue(VolumeCommands.COMMANDS.contains(VolumeCommands.SNAPSHOT_SET_ATTRIBUTES));
  }

  @Test
  void create_withAttributes_thenShowAndReplace() throws IOException {
    JsonNode created = run(VolumeCommands.SNAPSHOT_CREATE,
        "{\"volumes\": [\"db\", \"wal\"], \"name\": \"n\", \"attributes\": {\"b\": \"2\", \"a\": \"line\\nline\"}}");
    for (JsonNode s : created.get("snapshots")) {
      assertEquals(JSON.readTree("{\"b\": \"2\", \"a\": \"line\\nline\"}"), s.get("attributes"));
      assertEquals(List.of("b", "a"), names(s.get("attributes")), "in the given order");
    }
    assertEquals(Map.of("b", "2", "a", "line\nline"), wal.snapshot("n").attributes());

    JsonNode shown = run(VolumeCommands.SNAPSHOT_SHOW, "{\"volume\": \"db\", \"snapshot\": \"n\"}");
    assertEquals("db", shown.get("volume").asText());
    assertEquals(db.uuid(), shown.get("volumeUuid").asText());
    assertEquals("n", shown.get("name").asText());
    assertEquals(created.get("snapshots").get(0).get("attributes"), shown.get("attributes"));
    assertEquals(shown, run(VolumeCommands.SNAPSHOT_SHOW, "{\"volume\": \"db\", \"snapshot\": \"id=" + shown.get("id") + "\"}"));

    JsonNode replaced = run(VolumeCommands.SNAPSHOT_SET_ATTRIBUTES,
        "{\"volume\": \"db\", \"snapshot\": \"n\", \"attributes\": {\"backup\": \"done\"}}");
    assertEquals(JSON.readTree("{\"backup\": \"done\"}"), replaced.get("attributes"));
    assertEquals("db", replaced.get("volume").asText());
    assertEquals(Map.of("backup", "done"), db.snapshot("n").attributes());
    assertEquals(Map.of("b", "2", "a", "line\nline"), wal.snapshot("n").attributes(), "the other member is its own");
    assertEquals(0, run(VolumeCommands.SNAPSHOT_SET_ATTRIBUTES,
        "{\"volume\": \"db\", \"snapshot\": \"n\", \"attributes\": {}}").get("attributes").size());
  }

  @Test
  void snapshotJson_alwaysHasAttributes() throws IOException {
    run(VolumeCommands.SNAPSHOT_CREATE, "{\"volumes\": [\"db\"], \"name\": \"plain\"}");
    JsonNode list = run(VolumeCommands.SNAPSHOT_LIST, "{\"volume\": \"db\"}").get("snapshots");
    assertTrue(list.get(0).get("attributes").isObject() && list.get(0).get("attributes").isEmpty(), list::toString);
    assertTrue(run(VolumeCommands.VOLUME_INFO, "{\"volume\": \"db\"}").get("snapshots").get(0).has("attributes"));
  }

  @Test
  void badArguments_areInvalidArgument() throws IOException {
    run(VolumeCommands.SNAPSHOT_CREATE, "{\"volumes\": [\"db\"], \"name\": \"n\"}");
    for (String[] c : new String[][] {
        {VolumeCommands.SNAPSHOT_CREATE, "{\"volumes\": [\"db\"], \"attributes\": [\"x\"]}", "must be an object"},
        {VolumeCommands.SNAPSHOT_CREATE, "{\"volumes\": [\"db\"], \"attributes\": {\"k\": 1}}", "\"k\" must be a string"},
        {VolumeCommands.SNAPSHOT_SET_ATTRIBUTES, "{\"volume\": \"db\", \"snapshot\": \"n\"}", "needs \"attributes\""},
        {VolumeCommands.SNAPSHOT_SET_ATTRIBUTES, "{\"volume\": \"db\", \"snapshot\": \"n\", \"attributes\": \"x\"}",
            "must be an object"},
        {VolumeCommands.SNAPSHOT_SET_ATTRIBUTES, "{\"volume\": \"db\", \"snapshot\": \"n\", \"attributes\": {\"k\": null}}",
            "\"k\" must be a string"},
        {VolumeCommands.SNAPSHOT_SHOW, "{\"volume\": \"db\"}", "needs \"snapshot\""}}) {
      ControlException e = assertThrows(ControlException.class, () -> run(c[0], c[1]), c[1]);
      assertEquals(ControlException.INVALID_ARGUMENT, e.errorClass(), c[1]);
      assertTrue(e.getMessage().contains(c[2]), e.getMessage());
    }
    IllegalArgumentException key = assertThrows(IllegalArgumentException.class, () -> run(
        VolumeCommands.SNAPSHOT_SET_ATTRIBUTES, "{\"volume\": \"db\", \"snapshot\": \"n\", \"attributes\": {\"a b\": \"v\"}}"));
    assertTrue(key.getMessage().contains("'a b'"), key.getMessage());
    assertThrows(SnapshotNotFoundException.class, () -> run(VolumeCommands.SNAPSHOT_SHOW,
        "{\"volume\": \"db\", \"snapshot\": \"nope\"}"));
    assertEquals(List.of("n"), db.snapshots().stream().map(s -> s.name()).toList(), "nothing was taken");
  }

  private static List<String> names(JsonNode n) {
    List<String> out = new ArrayList<>();
    n.fieldNames().forEachRemaining(out::add);
    return out;
  }
}
