package dev.shade.provider;

import dev.shade.nativeio.AtomicFile;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;
import java.util.zip.CRC32C;

/**
 * The fixed description of a volume, kept in {@code volume.properties}: readable by a person,
 * checked by a CRC32C line at its end.
 */
record VolumeMeta(String uuid, VolumeConfig config, long createdMillis) {
  static final String FILE = "volume.properties";
  static final String FORMAT = "shade-volume-1";

  static VolumeMeta fresh(VolumeConfig config) {
    return new VolumeMeta(UUID.randomUUID().toString(), config, System.currentTimeMillis());
  }

  /** Writes the file atomically: temp file, fsync, rename, fsync of the directory. */
  void store(Path dir) throws IOException {
    StringBuilder sb = new StringBuilder();
    sb.append("# shade volume: do not edit, a checksum protects this file\n");
    for (Map.Entry<String, String> e : fields().entrySet()) {
      sb.append(e.getKey()).append('=').append(e.getValue()).append('\n');
    }
    String body = sb.toString();
    String text = body + "crc32c=" + crcHex(body) + "\n";
    AtomicFile.write(dir.resolve(FILE), text.getBytes(StandardCharsets.UTF_8), 0600);
  }

  private Map<String, String> fields() {
    Map<String, String> m = new LinkedHashMap<>();
    m.put("format", FORMAT);
    m.put("uuid", uuid);
    m.put("size", Long.toString(config.size()));
    m.put("blockSize", Integer.toString(config.blockSize()));
    m.put("diffMax", Long.toString(config.diffMax()));
    m.put("origin", config.origin() == null ? "" : config.origin().toString());
    m.put("diffArea", config.diffArea() == null ? "" : config.diffArea().toString());
    m.put("created", Long.toString(createdMillis));
    return m;
  }

  static boolean exists(Path dir) {
    return Files.isRegularFile(dir.resolve(FILE));
  }

  static VolumeMeta load(Path dir) throws IOException {
    Path file = dir.resolve(FILE);
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      throw new VolumeException("not a shade volume (no " + FILE + "): " + dir);
    } catch (java.nio.charset.CharacterCodingException e) {
      throw damaged(file, "not valid UTF-8");
    }
    int at = text.lastIndexOf("crc32c=");
    if (at < 0 || !text.endsWith("\n")) {
      throw damaged(file, "the checksum line is missing (truncated?)");
    }
    String body = text.substring(0, at);
    String stored = text.substring(at + 7).trim();
    if (!stored.equals(crcHex(body))) {
      throw damaged(file, "checksum mismatch");
    }
    Map<String, String> m = new LinkedHashMap<>();
    for (String line : body.split("\n")) {
      if (line.isBlank() || line.startsWith("#")) {
        continue;
      }
      int eq = line.indexOf('=');
      if (eq < 0) {
        throw damaged(file, "malformed line '" + line + "'");
      }
      m.put(line.substring(0, eq), line.substring(eq + 1));
    }
    if (!FORMAT.equals(m.get("format"))) {
      throw damaged(file, "unknown format '" + m.get("format") + "'");
    }
    try {
      VolumeConfig c = new VolumeConfig(Long.parseLong(m.get("size")), Integer.parseInt(m.get("blockSize")),
          Long.parseLong(m.get("diffMax")), path(m.get("origin")), path(m.get("diffArea")));
      return new VolumeMeta(m.get("uuid"), c, Long.parseLong(m.get("created")));
    } catch (RuntimeException e) {
      throw damaged(file, "bad value: " + e.getMessage());
    }
  }

  private static Path path(String s) {
    return s == null || s.isEmpty() ? null : Path.of(s);
  }

  private static VolumeException damaged(Path file, String why) {
    return new VolumeException("volume metadata is damaged (" + why + "): " + file);
  }

  private static String crcHex(String body) {
    CRC32C crc = new CRC32C();
    crc.update(ByteBuffer.wrap(body.getBytes(StandardCharsets.UTF_8)));
    return String.format("%08x", crc.getValue());
  }
}
