package dev.shade.offhost.agent;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.offhost.backup.SnapshotIdentity;
import java.io.IOException;
import java.util.Map;

/**
 * What the backup server asks the agent about the snapshot it backs up: its {@code snapshot-show}
 * document (identity, attributes, the writers' metadata), and, once the archive is on tape and
 * read back, {@code snapshot-backup-complete}. Snapshots are named by volume uuid and stable id,
 * never by name, so a snapshot renamed or replaced under the same name is never mistaken.
 *
 * <p>Thread-safe as far as the client given is (it is not).
 */
public final class AgentSnapshots {
  private static final ObjectMapper JSON = new ObjectMapper();

  private AgentSnapshots() {}

  /**
   * The agent's {@code snapshot-show} of the snapshot {@code id} (the one the NBD source serves);
   * fails when the agent does not hold that volume or snapshot (another host than the source's)
   * or describes another snapshot.
   */
  public static JsonNode show(AgentClient agent, SnapshotIdentity id) throws IOException {
    JsonNode doc;
    try {
      doc = agent.execute("snapshot-show", Map.of("volume", id.volumeUuid(), "snapshot", "id=" + id.snapshotId()));
    } catch (AgentException e) {
      if (e.errorClass().equals("VolumeNotFound") || e.errorClass().equals("SnapshotNotFound")) {
        throw new IOException(agent.endpoint() + " does not have snapshot " + id + " that the NBD source serves "
            + "(is the agent the one of the source's host?): " + e.getMessage(), e);
      }
      throw e;
    }
    if (!id.volumeUuid().equals(doc.path("volumeUuid").asText()) || doc.path("id").asLong(-1) != id.snapshotId()) {
      throw new IOException(agent.endpoint() + " described snapshot " + doc.path("volume").asText() + "@"
          + doc.path("name").asText() + " (id " + doc.path("id").asText() + ", volume " + doc.path("volumeUuid").asText()
          + ") where " + id + " was asked for");
    }
    return doc;
  }

  /**
   * The writer metadata of a {@code snapshot-show} document (or a {@code snapshot-create} reply,
   * whose first snapshot is taken): its attributes' {@code shade.writers}, parsed when it is JSON;
   * without writers, {@code {"attributes": {...}}} when it has attributes, else null.
   */
  public static JsonNode writerMetadata(JsonNode doc) {
    if (doc == null) {
      return null;
    }
    if (doc.has("snapshots") && doc.get("snapshots").isArray() && doc.get("snapshots").size() > 0) {
      doc = doc.get("snapshots").get(0);
    }
    JsonNode attrs = doc.path("attributes");
    JsonNode w = attrs.path("shade.writers");
    if (w.isMissingNode() || w.isNull()) {
      return attrs.isObject() ? JSON.createObjectNode().set("attributes", attrs) : null;
    }
    if (w.isTextual()) {
      try {
        return JSON.readTree(w.asText());
      } catch (IOException e) {
        return w;
      }
    }
    return w;
  }

  /**
   * Tells the agent that snapshot {@code id} is on tape and verified, so its writers may release
   * logs; never throws: a failure (the agent unreachable, a writer's step failing) is the outcome.
   */
  public static BackupCompleteOutcome backupComplete(AgentClient agent, SnapshotIdentity id) {
    try {
      JsonNode r = agent.execute("snapshot-backup-complete", Map.of("volume", id.volumeUuid(), "snapshot",
          "id=" + id.snapshotId()));
      JsonNode prev = r.get("previously");
      return new BackupCompleteOutcome(true, r.path("writers"), null, prev == null || prev.isNull() ? null : prev.asText());
    } catch (IOException | RuntimeException e) {
      return new BackupCompleteOutcome(false, null, String.valueOf(e.getMessage()), null);
    }
  }
}
