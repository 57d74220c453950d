package dev.shade.requestor.ops;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.SnapshotRef;
import dev.shade.provider.Volume;
import dev.shade.requestor.writer.Writer;
import dev.shade.requestor.writer.WriterMetadata;
import dev.shade.requestor.writer.Writers;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The backup-complete step: the off-host service has a snapshot safely on tape, so each writer
 * recorded with it may release what that snapshot no longer needs (PostgreSQL's archived WAL
 * before the backup's start, a hook's log purge), as Exchange truncates its logs after a backup.
 *
 * <p>The writers are rebuilt from the specs in the snapshot's {@value WriterMetadata#ATTRIBUTE}
 * attribute and run in this process (nothing is frozen, so no lease is needed), in the order
 * they were given. The time is recorded as the attribute {@value #ATTRIBUTE}; a second report
 * of the same snapshot runs the steps again (they must be idempotent: releasing what is already
 * released) and says so. For a snapshot set, report it on one member: the writers are the same.
 */
public final class BackupComplete {
  /** When backup-complete last ran for the snapshot (ISO-8601, UTC). */
  public static final String ATTRIBUTE = "shade.backupComplete";

  private static final ObjectMapper JSON = new ObjectMapper();

  private BackupComplete() {}

  /** Runs the step for snapshot {@code ref} of {@code v}; returns the report. */
  public static Map<String, Object> run(Volume v, SnapshotRef ref) throws IOException {
    SnapshotInfo s = v.snapshot(ref);
    List<WriterMetadata> metadata = metadata(s);
    String before = s.attributes().get(ATTRIBUTE);
    List<Map<String, Object>> steps = new ArrayList<>();
    IOException first = null;
    for (WriterMetadata m : metadata) {
      Map<String, Object> step = new LinkedHashMap<>();
      step.put("writer", m.writer());
      long t = System.nanoTime();
      try (Writer w = Writers.parse(m.writer())) {
        w.backupComplete(m);
        step.put("ok", true);
      } catch (IOException | RuntimeException e) {
        step.put("ok", false);
        step.put("error", e.getMessage());
        IOException wrapped = new IOException("backup-complete of " + m.writer() + " for snapshot '" + s.name()
            + "' of " + v.name() + " failed: " + e.getMessage(), e);
        if (first == null) {
          first = wrapped;
        } else {
          first.addSuppressed(wrapped);
        }
      }
      step.put("ms", Math.round((System.nanoTime() - t) / 10_000.0) / 100.0);
      steps.add(step);
    }
    if (first != null) {
      throw first;
    }
    Map<String, String> attributes = new LinkedHashMap<>(s.attributes());
    attributes.put(ATTRIBUTE, Instant.now().toString());
    SnapshotInfo marked = v.setSnapshotAttributes(SnapshotRef.ofId(s.id()), attributes);
    Map<String, Object> doc = new LinkedHashMap<>();
    doc.put("volume", v.name());
    doc.put("volumeUuid", v.uuid());
    doc.put("snapshot", VolumeCommands.snapshot(marked));
    doc.put("writers", steps);
    doc.put("previously", before);
    return doc;
  }

  /** The writers' metadata kept with {@code s}; empty when it was taken without writers. */
  public static List<WriterMetadata> metadata(SnapshotInfo s) throws IOException {
    String json = s.attributes().get(WriterMetadata.ATTRIBUTE);
    List<WriterMetadata> out = new ArrayList<>();
    if (json == null) {
      return out;
    }
    JsonNode list = JSON.readTree(json);
    for (JsonNode m : list) {
      out.add(JSON.treeToValue(m, WriterMetadata.class));
    }
    return out;
  }
}
