package dev.shade.offhost.tape;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.nativeio.FileHandle;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * The state file of a one-drive library ({@link DriveLibrary}): the labelled cartridges the drive
 * has seen and their tape files, as JSON.
 *
 * <p>Holds no state of its own; the records it reads and writes are used by one thread at a time,
 * as their library is.
 */
final class DriveState {
  /*
   * Format shade-drive-1:
   *   {"format": "shade-drive-1", "device": "/dev/nst0", "blockSize": 262144,
   *    "cartridges": [{"label", "pool", "sequence", "created", "format", "earlyWarning",
   *                    "files": [{"firstBlock", "records", "bytes", "kind", "closed"}] or null}]}
   * in the order the cartridges were first seen (their slots); "files": null when they are not
   * known (read from the tape when the cartridge is next in the drive).
   */

  static final String FORMAT = "shade-drive-1";
  private static final ObjectMapper JSON = new ObjectMapper();

  /** A tape file as remembered. */
  static final class FileRec {
    /** The logical block of its first record (MTIOCPOS), -1 when not known. */
    long firstBlock;
    /** Its records. */
    long records;
    /** Their bytes. */
    long bytes;
    /** What it holds: {@link TapeFileInfo#kind()}. */
    String kind;
    /** A filemark ends it. */
    boolean closed;
    /** The first bytes written, to tell the kind when the file ends; null once told. */
    ByteArrayOutputStream peek;

    FileRec(long firstBlock, long records, long bytes, String kind, boolean closed) {
      this.firstBlock = firstBlock;
      this.records = records;
      this.bytes = bytes;
      this.kind = kind;
      this.closed = closed;
    }
  }

  /** A cartridge as remembered. */
  static final class Known {
    /** Its label, null for the blank in the drive. */
    TapeLabel label;
    /**
     * Not a cartridge of this library, and not blank: data of another program without a label, or
     * another cartridge with the label of one this library knows. Nothing is written to it unless
     * it is labelled by force.
     */
    boolean foreign;
    /** Its data reached the early warning. */
    boolean earlyWarning;
    /** Its tape files, null when not known (read from the tape when next in the drive). */
    List<FileRec> files;
  }

  /** The cartridges remembered in {@code stateFile}; none when it does not exist yet. */
  static List<Known> load(Path stateFile) throws IOException {
    List<Known> known = new ArrayList<>();
    if (!Files.exists(stateFile)) {
      return known;
    }
    JsonNode doc;
    try {
      doc = JSON.readTree(stateFile.toFile());
      if (!FORMAT.equals(doc.path("format").asText())) {
        throw new TapeException("tape drive state format '" + doc.path("format").asText() + "' is not supported"
            + " (expected " + FORMAT + "): " + stateFile);
      }
      for (JsonNode c : doc.path("cartridges")) {
        Known k = new Known();
        k.label = new TapeLabel(c.path("label").asText(), c.path("pool").asText(), c.path("sequence").asInt(),
            Instant.parse(c.path("created").asText()), c.path("format").asText());
        k.earlyWarning = c.path("earlyWarning").asBoolean();
        if (c.path("files").isArray()) {
          k.files = new ArrayList<>();
          for (JsonNode f : c.path("files")) {
            k.files.add(new FileRec(f.path("firstBlock").asLong(), f.path("records").asLong(),
                f.path("bytes").asLong(), f.path("kind").asText(), f.path("closed").asBoolean()));
          }
        }
        known.add(k);
      }
    } catch (TapeException e) {
      throw e;
    } catch (IOException | RuntimeException e) {
      throw new TapeException("tape drive state is damaged (" + e.getMessage() + "); move it away and the cartridges"
          + " are read again as they are loaded: " + stateFile, e);
    }
    return known;
  }

  /** Writes {@code known} to {@code stateFile} atomically (temporary file, fsync, rename, fsync of the directory). */
  static void save(Path stateFile, Path device, int blockSize, List<Known> known) throws IOException {
    ObjectNode doc = JSON.createObjectNode().put("format", FORMAT).put("device", device.toString())
        .put("blockSize", blockSize);
    ArrayNode carts = doc.putArray("cartridges");
    for (Known k : known) {
      ObjectNode c = carts.addObject().put("label", k.label.label()).put("pool", k.label.pool())
          .put("sequence", k.label.sequence()).put("created", k.label.created().toString())
          .put("format", k.label.format()).put("earlyWarning", k.earlyWarning);
      if (k.files == null) {
        c.putNull("files");
      } else {
        ArrayNode files = c.putArray("files");
        for (FileRec f : k.files) {
          files.addObject().put("firstBlock", f.firstBlock).put("records", f.records).put("bytes", f.bytes)
              .put("kind", f.peek != null ? "data" : f.kind).put("closed", f.closed);
        }
      }
    }
    Path tmp = Path.of(stateFile + ".tmp");
    try (OutputStream out = Files.newOutputStream(tmp)) {
      JSON.writerWithDefaultPrettyPrinter().writeValue(out, doc);
    }
    try (FileHandle h = FileHandle.openReadWrite(tmp)) {
      h.fsync();
    }
    Files.move(tmp, stateFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    try (FileHandle d = FileHandle.open(stateFile.toAbsolutePath().getParent(),
        FileHandle.O_RDONLY | FileHandle.O_DIRECTORY, 0)) {
      d.fsync();
    }
  }

  private DriveState() {}
}
