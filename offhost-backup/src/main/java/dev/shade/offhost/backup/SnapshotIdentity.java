package dev.shade.offhost.backup;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Instant;

/**
 * Which snapshot a source serves, as the agent's export description says.
 *
 * @param volume the volume's name
 * @param volumeUuid the volume's uuid, what backups are kept by
 * @param snapshot the snapshot's name
 * @param snapshotId its stable id (never reused), what the catalog records
 * @param created when it was taken
 * @param size bytes
 * @param blockSize the volume's copy-on-write block size, what a volume restored from its backup
 *     gets unless told otherwise; 0 when the source did not say (an agent older than this field,
 *     a backup recorded before it)
 */
public record SnapshotIdentity(String volume, String volumeUuid, String snapshot, long snapshotId, Instant created,
    long size, int blockSize) {
  public SnapshotIdentity {
    if (volume == null || volumeUuid == null || snapshot == null || created == null || snapshotId < 0 || size < 0
        || blockSize < 0) {
      throw new IllegalArgumentException("incomplete snapshot identity: " + volume + "/" + volumeUuid + "@" + snapshot
          + " id " + snapshotId);
    }
  }

  /** An identity whose volume block size is not known. */
  public SnapshotIdentity(String volume, String volumeUuid, String snapshot, long snapshotId, Instant created,
      long size) {
    this(volume, volumeUuid, snapshot, snapshotId, created, size, 0);
  }

  /**
   * The identity as a manifest and a job record hold it: {@code volume}, {@code volumeUuid},
   * {@code snapshot}, {@code snapshotId}, {@code snapshotCreated}, {@code size} and, when known,
   * {@code volumeBlockSize} in {@code d}.
   *
   * @throws java.time.format.DateTimeParseException when {@code snapshotCreated} is not a time
   */
  static SnapshotIdentity fromRecord(JsonNode d) {
    return new SnapshotIdentity(d.path("volume").asText(), d.path("volumeUuid").asText(), d.path("snapshot").asText(),
        d.path("snapshotId").asLong(), Instant.parse(d.path("snapshotCreated").asText()), d.path("size").asLong(),
        Math.max(0, d.path("volumeBlockSize").asInt(0)));
  }

  @Override
  public String toString() {
    return volume + "@" + snapshot + " (id " + snapshotId + ", volume " + volumeUuid + ")";
  }
}
