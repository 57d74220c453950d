package dev.shade.offhost.backup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

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
 * @param zstdLevel the zstd level chunks were compressed with (1..19), or 0: stored plain
 * @param stored the bytes of each chunk's member where that is not the chunk's length (a chunk
 *     stored as a zstd frame, its member named with {@link #ZSTD_SUFFIX}), by offset; empty
 *     when nothing is compressed
 * @param checksum the checksum of every chunk
 */
public record ImageManifest(SnapshotIdentity snapshot, String level, long baseSnapshotId, String baseSnapshot,
    int chunkSize, int tapeBlockSize, Instant started, Instant ended, JsonNode writerMetadata, List<ChunkEntry> chunks,
    int zstdLevel, Map<Long, Long> stored, ChunkChecksum checksum) {
  /** The format of an archive whose chunks are stored plain (what every archive was before compression). */
  public static final String FORMAT = "shade-image-1";
  /**
   * The format of an archive written with zstd compression: a reader of {@link #FORMAT} alone
   * would take a {@code .zst} member for a chunk's bytes, so it must refuse the archive.
   */
  public static final String FORMAT_ZSTD = "shade-image-2";
  /**
   * The format of an archive whose chunks have CRC-32C checksums (compressed or not, as its
   * {@code compression} says): a reader of the two formats above would look for each chunk's
   * {@code sha256}, so it must refuse the archive.
   */
  public static final String FORMAT_CRC32C = "shade-image-3";
  /** The suffix of a chunk member that holds one zstd frame of the chunk's bytes. */
  public static final String ZSTD_SUFFIX = ".zst";
  /** The default zstd level. */
  public static final int DEFAULT_ZSTD_LEVEL = 3;
  /** The first member (its name gives the tape file the kind {@code image} in {@code shade tape list}). */
  public static final String HEADER_MEMBER = "shade-image.json";
  /** The last member. */
  public static final String MANIFEST_MEMBER = "manifest.json";
  public static final String FULL = "full";
  public static final String INCREMENTAL = "incremental";

  private static final ObjectMapper JSON = new ObjectMapper();

  public ImageManifest {
    chunks = List.copyOf(chunks);
    stored = Map.copyOf(stored);
    if (zstdLevel < 0 || zstdLevel > 19) {
      throw new IllegalArgumentException("zstd level must be 0 (none) or 1..19: " + zstdLevel);
    }
    java.util.Objects.requireNonNull(checksum, "checksum");
  }

  /** A manifest whose chunks have the {@link ChunkChecksum#DEFAULT default} checksum. */
  public ImageManifest(SnapshotIdentity snapshot, String level, long baseSnapshotId, String baseSnapshot,
      int chunkSize, int tapeBlockSize, Instant started, Instant ended, JsonNode writerMetadata, List<ChunkEntry> chunks,
      int zstdLevel, Map<Long, Long> stored) {
    this(snapshot, level, baseSnapshotId, baseSnapshot, chunkSize, tapeBlockSize, started, ended, writerMetadata,
        chunks, zstdLevel, stored, ChunkChecksum.DEFAULT);
  }

  /** A manifest of chunks stored plain, with the default checksum. */
  public ImageManifest(SnapshotIdentity snapshot, String level, long baseSnapshotId, String baseSnapshot,
      int chunkSize, int tapeBlockSize, Instant started, Instant ended, JsonNode writerMetadata,
      List<ChunkEntry> chunks) {
    this(snapshot, level, baseSnapshotId, baseSnapshot, chunkSize, tapeBlockSize, started, ended, writerMetadata,
        chunks, 0, Map.of());
  }

  /** This manifest with its chunks and end time. */
  public ImageManifest complete(Instant end, List<ChunkEntry> all) {
    return complete(end, all, Map.of());
  }

  /** This manifest with its chunks, end time and the stored sizes of its compressed chunks. */
  public ImageManifest complete(Instant end, List<ChunkEntry> all, Map<Long, Long> storedSizes) {
    return new ImageManifest(snapshot, level, baseSnapshotId, baseSnapshot, chunkSize, tapeBlockSize, started, end,
        writerMetadata, all, zstdLevel, storedSizes, checksum);
  }

  /** True when the archive was written with zstd compression. */
  public boolean compressed() {
    return zstdLevel > 0;
  }

  /**
   * The format of this archive, the oldest that describes it: {@link #FORMAT_CRC32C} for CRC-32C
   * checksums, else {@link #FORMAT}, or {@link #FORMAT_ZSTD} when compressed.
   */
  public String format() {
    if (checksum == ChunkChecksum.CRC32C) {
      return FORMAT_CRC32C;
    }
    return compressed() ? FORMAT_ZSTD : FORMAT;
  }

  /**
   * The member that holds chunk {@code c}: its {@link ChunkEntry#member()}, with
   * {@link #ZSTD_SUFFIX} when it is stored compressed.
   */
  public String member(ChunkEntry c) {
    return stored.containsKey(c.offset()) ? c.member() + ZSTD_SUFFIX : c.member();
  }

  /** The JSON document. */
  public ObjectNode toJson() {
    ObjectNode o = JSON.createObjectNode().put("format", format()).put("kind", "image");
    o.put("volume", snapshot.volume()).put("volumeUuid", snapshot.volumeUuid()).put("snapshot", snapshot.snapshot())
        .put("snapshotId", snapshot.snapshotId()).put("snapshotCreated", snapshot.created().toString())
        .put("size", snapshot.size()).put("level", level);
    if (snapshot.blockSize() > 0) {
      o.put("volumeBlockSize", snapshot.blockSize());
    }
    if (baseSnapshotId >= 0) {
      o.put("baseSnapshotId", baseSnapshotId).put("baseSnapshot", baseSnapshot);
    } else {
      o.putNull("baseSnapshotId").putNull("baseSnapshot");
    }
    o.put("chunkSize", chunkSize).put("tapeBlockSize", tapeBlockSize).put("checksum", checksum.id())
        .put("started", started.toString());
    if (compressed()) {
      o.put("compression", "zstd").put("compressionLevel", zstdLevel);
    }
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
        e.put("member", member(c)).put(checksum.key(), c.checksum());
        if (compressed()) {
          e.put("stored", stored.getOrDefault(c.offset(), c.length()));
        }
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
    String format = d.path("format").asText();
    if (!FORMAT.equals(format) && !FORMAT_ZSTD.equals(format) && !FORMAT_CRC32C.equals(format)) {
      throw new IOException("not a " + FORMAT + ", " + FORMAT_ZSTD + " or " + FORMAT_CRC32C + " manifest (format "
          + d.path("format") + ")");
    }
    ChunkChecksum checksum = ChunkChecksum.ofId(d.path("checksum").asText(ChunkChecksum.SHA256.id()));
    if (checksum != ChunkChecksum.SHA256 && !FORMAT_CRC32C.equals(format)) {
      throw new IOException("a " + format + " manifest with checksum " + d.path("checksum") + ", not \"sha-256\"");
    }
    int zstd = 0;
    if (FORMAT_ZSTD.equals(format) || FORMAT_CRC32C.equals(format) && d.has("compression")) {
      if (!"zstd".equals(d.path("compression").asText())) {
        throw new IOException("a " + format + " manifest with compression " + d.path("compression")
            + ", not \"zstd\"");
      }
      zstd = d.path("compressionLevel").asInt(DEFAULT_ZSTD_LEVEL);
    }
    Map<Long, Long> stored = new HashMap<>();
    SnapshotIdentity id = SnapshotIdentity.fromRecord(d);
    List<ChunkEntry> chunks = new ArrayList<>();
    for (JsonNode c : d.path("chunks")) {
      boolean zero = c.path("zero").asBoolean(false);
      if (!zero && c.path("member").asText().endsWith(ZSTD_SUFFIX)) {
        stored.put(c.path("offset").asLong(), c.path("stored").asLong(-1));
      }
      chunks.add(new ChunkEntry(c.path("offset").asLong(), c.path("length").asLong(),
          zero ? null : c.path(checksum.key()).asText(), zero));
    }
    JsonNode wm = d.path("writerMetadata");
    return new ImageManifest(id, d.path("level").asText(),
        d.path("baseSnapshotId").isNull() ? -1 : d.path("baseSnapshotId").asLong(-1),
        d.path("baseSnapshot").isNull() ? null : d.path("baseSnapshot").asText(),
        d.path("chunkSize").asInt(), d.path("tapeBlockSize").asInt(), Instant.parse(d.path("started").asText()),
        d.path("ended").isNull() || d.path("ended").isMissingNode() ? null : Instant.parse(d.path("ended").asText()),
        wm.isMissingNode() || wm.isNull() ? null : wm, chunks, zstd, stored, checksum);
  }
}
