package dev.shade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.offhost.backup.SnapshotIdentity;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import dev.shade.requestor.ops.VolumeCommands;
import dev.shade.requestor.writer.WriterMetadata;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The writer metadata an image restore brought back from the archive, and keeping it with the
 * restored copy: a descriptor as {@code shade snapshot export} writes beside its image, or a
 * snapshot of a restored volume that carries the source snapshot's attributes.
 *
 * <p>Thread-safe: immutable.
 */
final class RestoredMetadata {
  /*
   * The archive's manifest holds what the backup found in the snapshot's attributes (AgentSnapshots
   * .writerMetadata): shade.writers parsed (an array of {writer, files, facts}), or, for a snapshot
   * taken without writers, {"attributes": {...}}, or null when the backup had no metadata. The
   * attributes put back are therefore shade.writers alone when there were writers, the snapshot's
   * attributes otherwise. shade.writers goes back as the compact JSON text the requestor stores.
   */

  /** The restored snapshot, as the catalog knows it. */
  private final SnapshotIdentity snapshot;
  /** The manifest's writer metadata, or null. */
  private final JsonNode writerMetadata;

  RestoredMetadata(SnapshotIdentity snapshot, JsonNode writerMetadata) {
    this.snapshot = snapshot;
    this.writerMetadata = writerMetadata;
  }

  /** The manifest's writer metadata, or null. */
  JsonNode writerMetadata() {
    return writerMetadata;
  }

  /** The snapshot's attributes that the archive carries (empty without writer metadata). */
  Map<String, String> attributes() {
    Map<String, String> a = new LinkedHashMap<>();
    JsonNode wm = writerMetadata;
    if (wm == null || wm.isNull() || wm.isMissingNode()) {
      return a;
    }
    if (wm.isObject() && wm.path("attributes").isObject()) {
      wm.get("attributes").fields().forEachRemaining(e -> a.put(e.getKey(), e.getValue().asText()));
    } else {
      a.put(WriterMetadata.ATTRIBUTE, wm.isTextual() ? wm.asText() : wm.toString());
    }
    return a;
  }

  /** The writer files, as "PATH (WRITER)"; empty when the metadata holds none. */
  List<String> files() {
    List<String> out = new ArrayList<>();
    if (writerMetadata != null && writerMetadata.isArray()) {
      for (JsonNode w : writerMetadata) {
        for (JsonNode f : w.path("files")) {
          out.add(f.path("path").asText() + " (" + w.path("writer").asText() + ")");
        }
      }
    }
    return out;
  }

  /**
   * Writes the snapshot's descriptor to {@code target}: the same document an export writes beside
   * its image, naming the copy {@code image}; the block size of the source volume is not in the
   * archive and is left out.
   */
  void writeDescriptor(Path target, String image) throws IOException {
    Map<String, Object> s = new LinkedHashMap<>();
    s.put("name", snapshot.snapshot());
    s.put("id", snapshot.snapshotId());
    s.put("created", snapshot.created().toString());
    s.put("attributes", attributes());
    VolumeCommands.writeDescriptor(target, snapshot.volume(), snapshot.volumeUuid(), snapshot.size(), null, image, s);
  }

  /**
   * Takes a snapshot of the restored volume in {@code dir} carrying the source snapshot's attributes,
   * named after it ({@code NAME-restored}, {@code NAME-restored-2}, ... when the volume already has
   * one of that name); returns its name.
   */
  String snapshotVolume(Path dir) throws IOException {
    try (Volume v = Volume.open(dir)) {
      Set<String> taken = new HashSet<>();
      for (SnapshotInfo s : v.snapshots()) {
        taken.add(s.name());
      }
      String name = snapshot.snapshot();
      for (int n = 1; taken.contains(name); n++) {
        name = snapshot.snapshot() + "-restored" + (n == 1 ? "" : "-" + n);
      }
      return v.createSnapshot(name, attributes()).name();
    }
  }
}
