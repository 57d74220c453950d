package dev.shade.offhost.backup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * Drill records as they are written on tape after a fire drill: a small PAX tar with one member,
 * {@code shade-drill.json}, holding every column of the catalog rows of drills (ids, times and
 * every step included), so that a catalog rebuilt from the tapes ({@link CatalogRebuild}) has
 * them. Usually one drill; more when earlier drills' records could not go on tape then.
 * docs/tape-format.md, "Verification and drill records", has the format.
 *
 * @param drills the catalog's rows, each with its id
 * @param written when the record was written
 */
public record DrillRecordFile(List<Catalog.DrillRecord> drills, Instant written) implements TapeRecord {
  /** The format this version writes; a reader refuses others. */
  public static final String FORMAT = "shade-drill-1";
  /** The one member (its name gives the tape file the kind {@code drill} in {@code shade tape list}). */
  public static final String MEMBER = "shade-drill.json";

  private static final ObjectMapper JSON = new ObjectMapper();

  public DrillRecordFile {
    drills = List.copyOf(drills);
  }

  /** The JSON document. */
  public ObjectNode toJson() {
    ObjectNode o = JSON.createObjectNode().put("format", FORMAT).put("kind", "drill");
    ArrayNode a = o.putArray("drills");
    for (Catalog.DrillRecord d : drills) {
      ObjectNode n = a.addObject().put("id", d.id()).put("volume", d.volume()).put("volumeUuid", d.volumeUuid())
          .put("snapshot", d.snapshot());
      if (d.snapshotId() >= 0) {
        n.put("snapshotId", d.snapshotId());
      } else {
        n.putNull("snapshotId");
      }
      ArrayNode chain = n.putArray("jobChain");
      d.jobChain().forEach(chain::add);
      n.put("started", d.started().toString()).put("ended", d.ended().toString()).put("outcome", d.outcome())
          .put("failedStep", d.failedStep()).put("error", d.error());
      millis(n, "firstByteMillis", d.firstByteSeconds());
      millis(n, "restoreMillis", d.restoreSeconds());
      n.put("bytesRestored", d.bytesRestored()).put("fsck", d.fsck()).put("databaseCheck", d.databaseCheck());
      ArrayNode steps = n.putArray("steps");
      for (Catalog.DrillStep s : d.steps()) {
        steps.addObject().put("name", s.name()).put("outcome", s.outcome()).put("seconds", s.seconds())
            .put("detail", s.detail());
      }
    }
    o.put("written", written.toString());
    return o;
  }

  private static void millis(ObjectNode n, String key, double seconds) {
    if (seconds >= 0) {
      n.put(key, Math.round(seconds * 1000));
    } else {
      n.putNull(key);
    }
  }

  @Override
  public void write(OutputStream out, int blockSize) throws IOException {
    RecordTar.write(out, blockSize, MEMBER, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(toJson()), written,
        "shade drill record " + FORMAT);
  }

  /** Reads a record from the tar stream {@code in}; fails if its first member is not one. */
  public static DrillRecordFile read(InputStream in) throws IOException {
    return parse(RecordTar.read(in, MEMBER, "shade drill record"));
  }

  /** Parses the JSON of {@link #MEMBER}. */
  public static DrillRecordFile parse(byte[] json) throws IOException {
    JsonNode doc = JSON.readTree(json);
    if (!FORMAT.equals(doc.path("format").asText())) {
      throw new IOException("not a " + FORMAT + " drill record (format " + doc.path("format") + ")");
    }
    try {
      List<Catalog.DrillRecord> out = new ArrayList<>();
      for (JsonNode d : doc.path("drills")) {
        List<Long> chain = new ArrayList<>();
        d.path("jobChain").forEach(j -> chain.add(j.asLong()));
        List<Catalog.DrillStep> steps = new ArrayList<>();
        for (JsonNode s : d.path("steps")) {
          steps.add(new Catalog.DrillStep(s.path("name").asText(), s.path("outcome").asText(),
              s.path("seconds").asDouble(), VerifyRecordFile.text(s, "detail")));
        }
        out.add(new Catalog.DrillRecord(d.path("id").asLong(), d.path("volume").asText(),
            VerifyRecordFile.text(d, "volumeUuid"), VerifyRecordFile.text(d, "snapshot"),
            d.hasNonNull("snapshotId") ? d.get("snapshotId").asLong() : -1, chain,
            Instant.parse(d.path("started").asText()), Instant.parse(d.path("ended").asText()),
            d.path("outcome").asText(), VerifyRecordFile.text(d, "failedStep"), VerifyRecordFile.text(d, "error"),
            seconds(d, "firstByteMillis"), seconds(d, "restoreMillis"), d.path("bytesRestored").asLong(),
            VerifyRecordFile.text(d, "fsck"), VerifyRecordFile.text(d, "databaseCheck"), steps));
      }
      return new DrillRecordFile(out, Instant.parse(doc.path("written").asText()));
    } catch (RuntimeException e) {
      throw new IOException("drill record is damaged: " + e.getMessage(), e);
    }
  }

  private static double seconds(JsonNode d, String key) {
    return d.hasNonNull(key) ? d.get(key).asLong() / 1000.0 : -1;
  }
}
