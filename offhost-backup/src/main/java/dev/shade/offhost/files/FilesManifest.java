package dev.shade.offhost.files;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.filter.FilteringParserDelegate;
import com.fasterxml.jackson.core.filter.TokenFilter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.time.Instant;
import java.util.function.Consumer;

/**
 * What a files archive holds: {@code shade-files.json} (its first member, without counts and end
 * time) and {@code manifest.json} (its last, complete). docs/tape-format.md has the schema.
 *
 * @param volume the volume's name
 * @param volumeUuid the volume's stable identity
 * @param snapshot the snapshot's name
 * @param snapshotId the snapshot's stable id
 * @param snapshotCreated when the snapshot was taken
 * @param size the snapshot's size in bytes
 * @param filesystem the filesystem type found on the snapshot ({@code ext4}, {@code xfs}, ...), or null
 * @param tapeBlockSize the tape record size the archive was written with
 * @param started when the backup began
 * @param ended when the tree was written; null in the header
 * @param counts what the tree held; null in the header
 * @param writerMetadata the snapshot's writer metadata ({@code shade.writers}), or null
 */
public record FilesManifest(String volume, String volumeUuid, String snapshot, long snapshotId, Instant snapshotCreated,
    long size, String filesystem, int tapeBlockSize, Instant started, Instant ended, Counts counts,
    JsonNode writerMetadata) {
  /** The format this version writes. */
  public static final String FORMAT = "shade-files-1";
  /** The first member (its name gives the tape file the kind {@code files} in {@code shade tape list}). */
  public static final String HEADER_MEMBER = "shade-files.json";
  /** The last member. */
  public static final String MANIFEST_MEMBER = "manifest.json";
  /** The directory of the archive that holds the snapshot's tree: member {@code files/etc/hosts} is {@code /etc/hosts}. */
  public static final String TREE = "files/";

  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * What a tree held: {@code entries} members in all (the root directory included), of which
   * {@code directories}, {@code regularFiles} (first links), {@code hardLinks} (second and later
   * links), {@code symlinks}, {@code specialFiles} (devices, fifos), {@code sparseFiles} (regular
   * files stored in GNU's sparse format); {@code skipped} sockets (tar cannot hold them);
   * {@code bytes}, the regular files' sizes; {@code dataBytes}, the file bytes stored (holes left out).
   */
  public record Counts(long entries, long directories, long regularFiles, long hardLinks, long symlinks,
      long specialFiles, long sparseFiles, long skipped, long bytes, long dataBytes) {}

  /** The key of the manifest's list of every regular file's checksum. */
  public static final String CHECKSUMS = "checksums";

  /**
   * One regular file's entry in the manifest's {@code checksums}: its path in the volume, size,
   * data bytes (the size less its holes), SHA-256 of that data, and its number of parts (1 for
   * a file stored in one member).
   */
  public record FileChecksum(String path, long size, long data, String sha256, int parts) {}

  /** This manifest with its end time and counts. */
  public FilesManifest complete(Instant end, Counts c) {
    return new FilesManifest(volume, volumeUuid, snapshot, snapshotId, snapshotCreated, size, filesystem, tapeBlockSize,
        started, end, c, writerMetadata);
  }

  /** The JSON document. */
  public ObjectNode toJson() {
    ObjectNode o = JSON.createObjectNode().put("format", FORMAT).put("kind", "files");
    o.put("volume", volume).put("volumeUuid", volumeUuid).put("snapshot", snapshot).put("snapshotId", snapshotId)
        .put("snapshotCreated", snapshotCreated.toString()).put("size", size).put("level", "full")
        .put("filesystem", filesystem).put("tree", TREE).put("tapeBlockSize", tapeBlockSize)
        .put("started", started.toString()).put("ended", ended == null ? null : ended.toString());
    if (counts != null) {
      o.put("files", counts.entries()).put("bytes", counts.bytes()).put("dataBytes", counts.dataBytes());
      o.putObject("counts").put("directories", counts.directories()).put("regularFiles", counts.regularFiles())
          .put("hardLinks", counts.hardLinks()).put("symlinks", counts.symlinks())
          .put("specialFiles", counts.specialFiles()).put("sparseFiles", counts.sparseFiles())
          .put("skippedSockets", counts.skipped());
    } else {
      o.putNull("files").putNull("bytes").putNull("dataBytes");
    }
    o.set("writerMetadata", writerMetadata == null ? JSON.nullNode() : writerMetadata);
    return o;
  }

  /** The JSON bytes, pretty-printed. */
  public byte[] bytes() {
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(toJson());
    } catch (IOException e) {
      throw new IllegalStateException("cannot write the files manifest JSON", e);
    }
  }

  /**
   * Reads the {@code checksums} of manifest member {@code json} one by one, without building
   * them as a tree (a tree of millions of files holds as many); returns false when the manifest
   * has none (written before checksums were kept).
   */
  public static boolean checksums(byte[] json, Consumer<FileChecksum> each) throws IOException {
    try (JsonParser p = JSON.getFactory().createParser(json)) {
      if (p.nextToken() != JsonToken.START_OBJECT) {
        throw new IOException("the files manifest is not a JSON object");
      }
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        String key = p.getCurrentName();
        JsonToken v = p.nextToken();
        if (!key.equals(CHECKSUMS)) {
          p.skipChildren();
          continue;
        }
        if (v != JsonToken.START_ARRAY) {
          throw new IOException("the files manifest's " + CHECKSUMS + " is not a list");
        }
        while (p.nextToken() == JsonToken.START_OBJECT) {
          String path = null;
          String sha = null;
          long size = -1;
          long data = -1;
          int parts = 1;
          while (p.nextToken() == JsonToken.FIELD_NAME) {
            String k = p.getCurrentName();
            p.nextToken();
            switch (k) {
              case "path" -> path = p.getValueAsString();
              case "sha256" -> sha = p.getValueAsString();
              case "size" -> size = p.getValueAsLong(-1);
              case "data" -> data = p.getValueAsLong(-1);
              case "parts" -> parts = p.getValueAsInt(1);
              default -> p.skipChildren();
            }
          }
          if (path == null || sha == null) {
            throw new IOException("an entry of the files manifest's " + CHECKSUMS + " lacks its path or sha256 (near "
                + path + ")");
          }
          each.accept(new FileChecksum(path, size, data, sha, parts));
        }
        return true;
      }
      return false;
    }
  }

  /** Parses a header or manifest member (its {@code checksums} left out: {@link #checksums} reads them). */
  public static FilesManifest parse(byte[] json) throws IOException {
    JsonNode d;
    try (JsonParser p = new FilteringParserDelegate(JSON.getFactory().createParser(json), new TokenFilter() {
      @Override
      public TokenFilter includeProperty(String name) {
        return name.equals(CHECKSUMS) ? null : TokenFilter.INCLUDE_ALL;
      }
    }, TokenFilter.Inclusion.INCLUDE_ALL_AND_PATH, true)) {
      d = JSON.readTree(p);
    }
    if (d == null) {
      throw new IOException("the files manifest is empty");
    }
    if (!FORMAT.equals(d.path("format").asText())) {
      throw new IOException("not a " + FORMAT + " manifest (format " + d.path("format") + ")");
    }
    Counts c = null;
    if (d.path("files").isNumber()) {
      JsonNode k = d.path("counts");
      c = new Counts(d.path("files").asLong(), k.path("directories").asLong(), k.path("regularFiles").asLong(),
          k.path("hardLinks").asLong(), k.path("symlinks").asLong(), k.path("specialFiles").asLong(),
          k.path("sparseFiles").asLong(), k.path("skippedSockets").asLong(), d.path("bytes").asLong(),
          d.path("dataBytes").asLong());
    }
    JsonNode wm = d.path("writerMetadata");
    return new FilesManifest(d.path("volume").asText(), d.path("volumeUuid").asText(), d.path("snapshot").asText(),
        d.path("snapshotId").asLong(), Instant.parse(d.path("snapshotCreated").asText()), d.path("size").asLong(),
        d.path("filesystem").isTextual() ? d.path("filesystem").asText() : null, d.path("tapeBlockSize").asInt(),
        Instant.parse(d.path("started").asText()),
        d.path("ended").isTextual() ? Instant.parse(d.path("ended").asText()) : null, c,
        wm.isMissingNode() || wm.isNull() ? null : wm);
  }
}
