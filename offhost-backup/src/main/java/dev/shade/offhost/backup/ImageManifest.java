package dev.shade.offhost.backup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * What an image archive holds: {@code shade-image.json} (the first member, without chunks and end
 * time) and {@code manifest.json} (the last, complete). docs/tape-format.md has the schema.
 *
 * @param snapshot the snapshot archived
 * @param level {@code full} or {@code incremental}
 * @param baseSnapshotId for an incremental, the id of the snapshot it is relative to; else -1
 * @param baseSnapshot that snapshot's name, or null
 * @param chunkSize bytes per chunk
 * @param tapeBlockSize the tape record size the archive was written with
 * @param started when the backup began
 * @param ended when the data was written; null in the header
 * @param writerMetadata the snapshot's writer metadata ({@code shade.writers}), or null
 * @param chunks the chunks, by offset; empty in the header
 */
public record ImageManifest(SnapshotIdentity snapshot, String level, long baseSnapshotId, String baseSnapshot,
    int chunkSize, int tapeBlockSize, Instant started, Instant ended, JsonNode writerMetadata, List<ChunkEntry> chunks) {
  /** The format this version writes. */
  public static final String FORMAT = "shade-image-1";
  /** The first member (its name gives the tape file the kind {@code image} in {@code shade tape list}). */
  public static final String HEADER_MEMBER = "shade-image.json";
  /** The last member. */
  public static final String MANIFEST_MEMBER = "manifest.json";
  public static final String FULL = "full";
  public static final String INCREMENTAL = "incremental";

  private static final ObjectMapper JSON = new ObjectMapper();

  public ImageManifest {
    chunks = List.copyOf(chunks);
  }

  /** This manifest with its chunks and end time. */
  public ImageManifest complete(Instant end, List<ChunkEntry> all) {
    return new ImageManifest(snapshot, level, baseSnapshotId, baseSnapshot, chunkSize, tapeBlockSize, started, end,
        writerMetadata, all);
  }

  /** The JSON document. */
  public ObjectNode toJson() {
    ObjectNode o = JSON.createObjectNode().put("format", FORMAT).put("kind", "image");
    o.put("volume", snapshot.volume()).put("volumeUuid", snapshot.volumeUuid()).put("snapshot", snapshot.snapshot())
        .put("snapshotId", snapshot.snapshotId()).put("snapshotCreated", snapshot.created().toString())
        .put("size", snapshot.size()).put("level", level);
    if (baseSnapshotId >= 0) {
      o.put("baseSnapshotId", baseSnapshotId).put("baseSnapshot", baseSnapshot);
    } else {
      o.putNull("baseSnapshotId").putNull("baseSnapshot");
    }
    o.put("chunkSize", chunkSize).put("tapeBlockSize", tapeBlockSize).put("checksum", "sha-256")
        .put("started", started.toString());
    if (ended != null) {
      o.put("ended", ended.toString());
    } else {
      o.putNull("ended");
    }
    o.set("writerMetadata", writerMetadata == null ? JSON.nullNode() : writerMetadata);
    ArrayNode a = o.putArray("chunks");
    for (ChunkEntry c : chunks) {
      ObjectNode e = a.addObject().put("offset", c.offset()).put("length", c.length());
      if (c.zero()) {
        e.put("zero", true);
      } else {
        e.put("member", c.member()).put("sha256", c.sha256());
      }
    }
    return o;
  }

  /** The JSON bytes, pretty-printed. */
  public byte[] bytes() {
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(toJson());
    } catch (IOException e) {
      throw new IllegalStateException("cannot write the manifest JSON", e);
    }
  }

  /** Parses a header or manifest member. */
  public static ImageManifest parse(byte[] json) throws IOException {
    JsonNode d = JSON.readTree(json);
    if (!FORMAT.equals(d.path("format").asText())) {
      throw new IOException("not a " + FORMAT + " manifest (format " + d.path("format") + ")");
    }
    SnapshotIdentity id = new SnapshotIdentity(d.path("volume").asText(), d.path("volumeUuid").asText(),
        d.path("snapshot").asText(), d.path("snapshotId").asLong(), Instant.parse(d.path("snapshotCreated").asText()),
        d.path("size").asLong());
    List<ChunkEntry> chunks = new ArrayList<>();
    for (JsonNode c : d.path("chunks")) {
      boolean zero = c.path("zero").asBoolean(false);
      chunks.add(new ChunkEntry(c.path("offset").asLong(), c.path("length").asLong(),
          zero ? null : c.path("sha256").asText(), zero));
    }
    JsonNode wm = d.path("writerMetadata");
    return new ImageManifest(id, d.path("level").asText(),
        d.path("baseSnapshotId").isNull() ? -1 : d.path("baseSnapshotId").asLong(-1),
        d.path("baseSnapshot").isNull() ? null : d.path("baseSnapshot").asText(),
        d.path("chunkSize").asInt(), d.path("tapeBlockSize").asInt(), Instant.parse(d.path("started").asText()),
        d.path("ended").isNull() || d.path("ended").isMissingNode() ? null : Instant.parse(d.path("ended").asText()),
        wm.isMissingNode() || wm.isNull() ? null : wm, chunks);
  }
}
