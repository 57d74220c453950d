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
 * Verification records as they are written on tape after a verify: a small PAX tar with one
 * member, {@code shade-verify.json}, holding every column of the catalog rows of the
 * verifications (ids and times included) of archives of one pool, so that a catalog rebuilt from
 * the tapes ({@link CatalogRebuild}) has them. docs/tape-format.md, "Verification and drill
 * records", has the format.
 *
 * @param verifications the catalog's rows, each with its id
 * @param written when the record was written
 */
public record VerifyRecordFile(List<Catalog.VerificationRecord> verifications, Instant written)
    implements TapeRecord {
  /** The format this version writes; a reader refuses others. */
  public static final String FORMAT = "shade-verify-1";
  /** The one member (its name gives the tape file the kind {@code verify} in {@code shade tape list}). */
  public static final String MEMBER = "shade-verify.json";

  private static final ObjectMapper JSON = new ObjectMapper();

  public VerifyRecordFile {
    verifications = List.copyOf(verifications);
  }

  /** The JSON document. */
  public ObjectNode toJson() {
    ObjectNode o = JSON.createObjectNode().put("format", FORMAT).put("kind", "verify");
    ArrayNode a = o.putArray("verifications");
    for (Catalog.VerificationRecord v : verifications) {
      a.addObject().put("id", v.id()).put("runStarted", v.runStarted().toString()).put("jobId", v.jobId())
          .put("archiveId", v.archiveId()).put("cartridge", v.cartridge()).put("fileNumber", v.fileNumber())
          .put("verified", v.verified().toString()).put("outcome", v.outcome()).put("bytes", v.bytes())
          .put("millis", Math.round(v.seconds() * 1000)).put("chunk", v.chunk()).put("error", v.error());
    }
    o.put("written", written.toString());
    return o;
  }

  @Override
  public void write(OutputStream out, int blockSize) throws IOException {
    RecordTar.write(out, blockSize, MEMBER, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(toJson()), written,
        "shade verification record " + FORMAT);
  }

  /** Reads a record from the tar stream {@code in}; fails if its first member is not one. */
  public static VerifyRecordFile read(InputStream in) throws IOException {
    return parse(RecordTar.read(in, MEMBER, "shade verification record"));
  }

  /** Parses the JSON of {@link #MEMBER}. */
  public static VerifyRecordFile parse(byte[] json) throws IOException {
    JsonNode d = JSON.readTree(json);
    if (!FORMAT.equals(d.path("format").asText())) {
      throw new IOException("not a " + FORMAT + " verification record (format " + d.path("format") + ")");
    }
    try {
      List<Catalog.VerificationRecord> out = new ArrayList<>();
      for (JsonNode v : d.path("verifications")) {
        out.add(new Catalog.VerificationRecord(v.path("id").asLong(), Instant.parse(v.path("runStarted").asText()),
            v.path("jobId").asLong(), v.path("archiveId").asLong(), v.path("cartridge").asText(),
            v.path("fileNumber").asInt(), Instant.parse(v.path("verified").asText()), v.path("outcome").asText(),
            v.path("bytes").asLong(), v.path("millis").asLong() / 1000.0, text(v, "chunk"), text(v, "error")));
      }
      return new VerifyRecordFile(out, Instant.parse(d.path("written").asText()));
    } catch (RuntimeException e) {
      throw new IOException("verification record is damaged: " + e.getMessage(), e);
    }
  }

  /** The text of {@code key}, null when it is null or missing. */
  static String text(JsonNode o, String key) {
    return o.hasNonNull(key) ? o.get(key).asText() : null;
  }
}
