package dev.shade.offhost.tape;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.time.Instant;
import java.util.Optional;
import java.util.regex.Pattern;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * The label of a cartridge: tape file 0, a small PAX tar with one member,
 * {@code shade-label.json} = {@code {label, pool, sequence, created, format}}, so
 * {@code tar -xO} of that file shows it.
 *
 * @param label the cartridge's name, unique in a library (like a barcode): 1 to 32 of
 *     {@code A-Z a-z 0-9 . _ -}
 * @param pool the media pool it belongs to, same characters
 * @param sequence its number within the pool, from 1
 * @param created when it was labelled
 * @param format the label format, {@link #FORMAT}
 */
public record TapeLabel(String label, String pool, int sequence, Instant created, String format) {
  /** The format this version writes. */
  public static final String FORMAT = "shade-tape-1";
  /** The one member of the label tar. */
  public static final String MEMBER = "shade-label.json";

  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9._-]{1,32}");
  private static final ObjectMapper JSON = new ObjectMapper();

  public TapeLabel {
    requireName("label", label);
    requireName("pool", pool);
    if (sequence < 1) {
      throw new IllegalArgumentException("label sequence must be at least 1: " + sequence);
    }
    if (created == null || format == null) {
      throw new IllegalArgumentException("a label needs its creation time and format");
    }
  }

  /** A new label created now in the current format. */
  public static TapeLabel of(String label, String pool, int sequence) {
    return new TapeLabel(label, pool, sequence, Instant.ofEpochMilli(System.currentTimeMillis()), FORMAT);
  }

  /** Fails unless {@code name} is a valid label or pool name. */
  public static void requireName(String what, String name) {
    if (name == null || !NAME.matcher(name).matches()) {
      throw new IllegalArgumentException(what + " must be 1 to 32 of A-Z a-z 0-9 . _ -: "
          + (name == null ? "(none)" : "'" + name + "'"));
    }
  }

  /** The JSON document of the label member. */
  public byte[] json() {
    ObjectNode doc = JSON.createObjectNode()
        .put("label", label).put("pool", pool).put("sequence", sequence)
        .put("created", created.toString()).put("format", format);
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(doc);
    } catch (IOException e) {
      throw new IllegalStateException("cannot write the label JSON", e);
    }
  }

  /**
   * Writes this label as file 0 of the cartridge in {@code drive}: rewinds, writes the tar and a
   * filemark. Everything that was on the tape is gone (writing at the beginning ends the data).
   */
  public void write(TapeDrive drive) throws IOException {
    drive.rewind();
    try (TapeOutputStream out = new TapeOutputStream(drive);
        TarArchiveOutputStream tar = new TarArchiveOutputStream(out, drive.blockSize(), "UTF-8")) {
      tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
      byte[] body = json();
      TarArchiveEntry e = new TarArchiveEntry(MEMBER);
      e.setSize(body.length);
      e.setMode(0644);
      e.setModTime(created.toEpochMilli());
      e.setUserName("shade");
      e.setGroupName("shade");
      // a POSIX extended header, so the label is a PAX archive like every shade tape file
      e.addPaxHeader("comment", "shade tape label " + format);
      tar.putArchiveEntry(e);
      tar.write(body);
      tar.closeArchiveEntry();
      tar.finish();
    }
  }

  /**
   * Reads the label at the beginning of the tape in {@code drive}: rewinds and reads file 0.
   * Empty if the tape is blank or file 0 is not a shade label; then the drive is at the
   * beginning again. After a label, the drive is at the start of file 1.
   */
  public static Optional<TapeLabel> read(TapeDrive drive) throws IOException {
    drive.rewind();
    TapeInputStream in = new TapeInputStream(drive);
    Optional<TapeLabel> label = parse(in);
    if (label.isEmpty()) {
      drive.rewind();
    } else {
      in.skipToEnd();
    }
    return label;
  }

  /** The label in the tar stream {@code in}, or empty if its first member is not a shade label. */
  static Optional<TapeLabel> parse(InputStream in) throws IOException {
    byte[] body;
    try {
      TarArchiveInputStream tar = new TarArchiveInputStream(in, "UTF-8");
      TarArchiveEntry e = tar.getNextEntry();
      if (e == null || !e.getName().equals(MEMBER) || e.getSize() > 64 * 1024) {
        return Optional.empty();
      }
      ByteArrayOutputStream buf = new ByteArrayOutputStream();
      tar.transferTo(buf);
      body = buf.toByteArray();
    } catch (IOException | IllegalArgumentException e) {
      if (e instanceof TapeException) {
        throw e;
      }
      return Optional.empty(); // not a tar at all
    }
    try {
      JsonNode doc = JSON.readTree(body);
      return Optional.of(new TapeLabel(doc.path("label").asText(null), doc.path("pool").asText(null),
          doc.path("sequence").asInt(0), Instant.parse(doc.path("created").asText()),
          doc.path("format").asText(null)));
    } catch (IOException | RuntimeException e) {
      throw new TapeException("the tape's label (" + MEMBER + " in file 0) is not valid: " + e.getMessage(), e);
    }
  }
}
