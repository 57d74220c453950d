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
 * A job's full record as it is written on tape after its archive: a small PAX tar with one
 * member, {@code shade-job.json}, holding every catalog row of the job (the job, its archive,
 * pieces and chunks, times included), so that a catalog rebuilt from the tapes alone
 * ({@link CatalogRebuild}) has everything the lost one had. docs/tape-format.md, "Job records",
 * has the format.
 *
 * @param job the job's catalog row (its archive too, when it has one)
 * @param pieces the archive's pieces, empty without an archive
 * @param chunks the archive's chunks, empty without an archive
 * @param written when the record was written
 * @param owner the process that ran the job (schema step 5), or null when the catalog has none
 */
public record JobRecordFile(Catalog.JobRecord job, List<PieceEntry> pieces, List<ChunkEntry> chunks,
    Instant written, JobOwner owner) {
  /** The format this version writes; a reader refuses others. */
  public static final String FORMAT = "shade-job-1";
  /** The one member (its name gives the tape file the kind {@code job} in {@code shade tape list}). */
  public static final String MEMBER = "shade-job.json";

  private static final ObjectMapper JSON = new ObjectMapper();

  public JobRecordFile {
    pieces = List.copyOf(pieces);
    chunks = List.copyOf(chunks);
  }

  /** A record without the process that ran the job. */
  public JobRecordFile(Catalog.JobRecord job, List<PieceEntry> pieces, List<ChunkEntry> chunks, Instant written) {
    this(job, pieces, chunks, written, null);
  }

  /** The JSON document. */
  public ObjectNode toJson() {
    Catalog.JobRecord j = job;
    SnapshotIdentity s = j.snapshot();
    ObjectNode o = JSON.createObjectNode().put("format", FORMAT).put("kind", "job");
    ObjectNode jo = o.putObject("job").put("id", j.id()).put("volume", s.volume()).put("volumeUuid", s.volumeUuid())
        .put("snapshot", s.snapshot()).put("snapshotId", s.snapshotId())
        .put("snapshotCreated", s.created().toString()).put("size", s.size()).put("level", j.level())
        .put("format", j.format());
    if (s.blockSize() > 0) {
      jo.put("volumeBlockSize", s.blockSize());
    }
    if (j.baseJobId() >= 0) {
      jo.put("baseJob", j.baseJobId());
    } else {
      jo.putNull("baseJob");
    }
    if (j.baseSnapshotId() >= 0) {
      jo.put("baseSnapshotId", j.baseSnapshotId());
    } else {
      jo.putNull("baseSnapshotId");
    }
    jo.put("pool", j.pool()).put("chunkSize", j.chunkSize()).put("started", j.started().toString())
        .put("ended", j.ended() == null ? null : j.ended().toString()).put("outcome", j.outcome())
        .put("message", j.message()).put("bytes", j.bytes());
    if (owner != null) {
      // added after the keys of shade-job-1's first version, which readers that do not know them ignore
      jo.put("host", owner.host()).put("pid", owner.pid())
          .put("processStarted", owner.processStarted() == null ? null : owner.processStarted().toString())
          .put("library", owner.library());
    }
    Catalog.ArchiveRecord a = j.archive();
    if (a == null) {
      o.putNull("archive");
    } else {
      ObjectNode ao = o.putObject("archive").put("id", a.id()).put("cartridge", a.cartridge())
          .put("fileNumber", a.fileNumber()).put("bytes", a.bytes()).put("manifestSha256", a.manifestSha256())
          .put("chunkChecksum", a.chunkChecksum().id());
      // each chunk's value under the key its manifest uses: sha256 (records written before CRC-32C have only these) or crc32c
      String key = a.chunkChecksum().key();
      ArrayNode ps = ao.putArray("pieces");
      for (PieceEntry p : pieces) {
        ps.addObject().put("piece", p.piece()).put("cartridge", p.cartridge()).put("fileNumber", p.fileNumber())
            .put("bytes", p.bytes()).put("firstOffset", p.firstOffset()).put("endOffset", p.endOffset())
            .put("chunks", p.chunks());
      }
      ArrayNode cs = ao.putArray("chunks");
      for (ChunkEntry c : chunks) {
        ObjectNode co = cs.addObject().put("offset", c.offset()).put("length", c.length());
        if (c.zero()) {
          co.put("zero", true);
        } else {
          co.put(key, c.checksum());
        }
      }
    }
    o.put("written", written.toString());
    return o;
  }

  /** Writes the record as a tar to {@code out} (a tape file's stream, which the caller ends). */
  public void write(OutputStream out, int blockSize) throws IOException {
    byte[] body = JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(toJson());
    RecordTar.write(out, blockSize, MEMBER, body, written, "shade job record " + FORMAT);
  }

  /** Reads a record from the tar stream {@code in}; fails if its first member is not one. */
  public static JobRecordFile read(InputStream in) throws IOException {
    return parse(RecordTar.read(in, MEMBER, "shade job record"));
  }

  /** Parses the JSON of {@link #MEMBER}. */
  public static JobRecordFile parse(byte[] json) throws IOException {
    JsonNode d = JSON.readTree(json);
    if (!FORMAT.equals(d.path("format").asText())) {
      throw new IOException("not a " + FORMAT + " job record (format " + d.path("format") + ")");
    }
    try {
      JsonNode j = d.path("job");
      SnapshotIdentity s = SnapshotIdentity.fromRecord(j);
      JsonNode a = d.path("archive");
      Catalog.ArchiveRecord archive = null;
      List<PieceEntry> pieces = new ArrayList<>();
      List<ChunkEntry> chunks = new ArrayList<>();
      if (a.isObject()) {
        archive = new Catalog.ArchiveRecord(a.path("id").asLong(), j.path("id").asLong(), a.path("cartridge").asText(),
            a.path("fileNumber").asInt(), a.path("bytes").asLong(), a.path("manifestSha256").asText(),
            ChunkChecksum.ofId(a.path("chunkChecksum").asText(ChunkChecksum.SHA256.id())));
        String key = archive.chunkChecksum().key();
        for (JsonNode p : a.path("pieces")) {
          pieces.add(new PieceEntry(p.path("piece").asInt(), p.path("cartridge").asText(), p.path("fileNumber").asInt(),
              p.path("bytes").asLong(), p.path("firstOffset").asLong(), p.path("endOffset").asLong(),
              p.path("chunks").asInt()));
        }
        for (JsonNode c : a.path("chunks")) {
          boolean zero = c.path("zero").asBoolean(false);
          chunks.add(new ChunkEntry(c.path("offset").asLong(), c.path("length").asLong(),
              zero ? null : c.path(key).asText(), zero));
        }
      }
      Catalog.JobRecord job = new Catalog.JobRecord(j.path("id").asLong(), s, j.path("level").asText(),
          j.path("baseJob").isNull() ? -1 : j.path("baseJob").asLong(),
          j.path("baseSnapshotId").isNull() ? -1 : j.path("baseSnapshotId").asLong(), j.path("pool").asText(),
          j.path("chunkSize").asInt(), Instant.parse(j.path("started").asText()),
          j.path("ended").isNull() ? null : Instant.parse(j.path("ended").asText()), j.path("outcome").asText(),
          j.path("message").isNull() ? null : j.path("message").asText(), j.path("bytes").asLong(), archive,
          j.path("format").asText(Catalog.FORMAT_IMAGE));
      JobOwner owner = null;
      if (j.hasNonNull("host")) {
        owner = new JobOwner(j.path("host").asText(), j.path("pid").asLong(),
            j.path("processStarted").isNull() ? null : Instant.parse(j.path("processStarted").asText()),
            j.path("library").isNull() ? null : j.path("library").asText());
      }
      return new JobRecordFile(job, pieces, chunks, Instant.parse(d.path("written").asText()), owner);
    } catch (RuntimeException e) {
      throw new IOException("job record is damaged: " + e.getMessage(), e);
    }
  }
}
