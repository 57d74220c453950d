package dev.shade.requestor.schedule;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.requestor.ops.VolumeCommands;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@link SnapshotRunner} over the volume commands ({@link VolumeCommands}): snapshot-create,
 * snapshot-list and snapshot-delete with the arguments of the control protocol, run by whatever
 * {@link Executor} the owner gives (the agent's own command path, so its locks and events apply,
 * or volumes opened by the command line). Thread-safe when the executor is.
 */
public final class CommandRunner implements SnapshotRunner {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Runs one volume command and returns its JSON-ready answer. */
  public interface Executor {
    Object execute(String command, ObjectNode args) throws IOException;
  }

  private final Executor executor;

  public CommandRunner(Executor executor) {
    this.executor = executor;
  }

  @Override
  public void snapshot(List<String> volumes, List<String> writers, String name, Map<String, String> attributes,
      Duration freezeTimeout) throws IOException {
    ObjectNode args = JSON.createObjectNode();
    ArrayNode vs = args.putArray("volumes");
    volumes.forEach(vs::add);
    args.put("name", name);
    if (!writers.isEmpty()) {
      ArrayNode ws = args.putArray("writers");
      writers.forEach(ws::add);
      args.put("freezeTimeout", freezeTimeout.toMillis());
    }
    ObjectNode attrs = args.putObject("attributes");
    attributes.forEach(attrs::put);
    executor.execute(VolumeCommands.SNAPSHOT_CREATE, args);
  }

  @Override
  public List<Snapshot> snapshots(String volume) throws IOException {
    ObjectNode args = JSON.createObjectNode().put("volume", volume);
    JsonNode doc = JSON.valueToTree(executor.execute(VolumeCommands.SNAPSHOT_LIST, args));
    List<Snapshot> out = new ArrayList<>();
    for (JsonNode s : doc.path("snapshots")) {
      Map<String, String> attributes = null;
      JsonNode a = s.get("attributes");
      if (a != null && a.isObject()) {
        attributes = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = a.fields(); it.hasNext(); ) {
          Map.Entry<String, JsonNode> e = it.next();
          attributes.put(e.getKey(), e.getValue().asText());
        }
      }
      out.add(new Snapshot(s.path("id").asLong(), s.path("name").asText(), Instant.parse(s.path("created").asText()),
          attributes));
    }
    return out;
  }

  @Override
  public void delete(String volume, String name) throws IOException {
    executor.execute(VolumeCommands.SNAPSHOT_DELETE, JSON.createObjectNode().put("volume", volume).put("snapshot", name));
  }
}
