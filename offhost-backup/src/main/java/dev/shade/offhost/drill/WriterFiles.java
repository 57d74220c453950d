package dev.shade.offhost.drill;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * The writer metadata of a snapshot as its archive's manifest holds it (a JSON array of
 * {@code {writer, files: [{path, content, mode}], facts}}, docs/writers.md), and putting its
 * files back into a mounted copy of the snapshot, as {@code shade snapshot metadata --write-to}
 * does: at their paths relative to the root of the copy's filesystem, with their modes and the
 * owner of the directory they go into.
 *
 * <p>Thread-safe: immutable.
 */
final class WriterFiles {
  /** The writers' entries; empty when the snapshot was taken without writers. */
  private final List<JsonNode> writers;

  private WriterFiles(List<JsonNode> writers) {
    this.writers = List.copyOf(writers);
  }

  /** The metadata in {@code manifestWriterMetadata} (null, or anything that is not an array: none). */
  static WriterFiles of(JsonNode manifestWriterMetadata) {
    List<JsonNode> w = new ArrayList<>();
    if (manifestWriterMetadata != null && manifestWriterMetadata.isArray()) {
      manifestWriterMetadata.forEach(w::add);
    }
    return new WriterFiles(w);
  }

  /** Number of files the metadata holds. */
  int fileCount() {
    int n = 0;
    for (JsonNode w : writers) {
      n += w.path("files").size();
    }
    return n;
  }

  /** Writes every file under {@code root}; returns their paths relative to it. */
  List<String> writeTo(Path root) throws IOException {
    List<String> written = new ArrayList<>();
    Path base = root.toAbsolutePath().normalize();
    for (JsonNode w : writers) {
      for (JsonNode f : w.path("files")) {
        String rel = f.path("path").asText();
        Path target = base.resolve(rel).normalize();
        if (rel.isEmpty() || Path.of(rel).isAbsolute() || !target.startsWith(base) || target.equals(base)) {
          throw new IOException("writer metadata of " + w.path("writer").asText() + " names a file outside the copy: "
              + rel);
        }
        Path parent = target.getParent();
        if (!Files.isDirectory(parent, LinkOption.NOFOLLOW_LINKS)) {
          throw new IOException("cannot put back " + rel + " (writer " + w.path("writer").asText() + "): " + parent
              + " is not a directory of the copy");
        }
        Path tmp = Files.createTempFile(parent, ".shade-", ".tmp");
        try {
          Files.writeString(tmp, f.path("content").asText(), StandardCharsets.UTF_8);
          Files.setPosixFilePermissions(tmp, permissions(f.path("mode").asInt(0600)));
          Files.setOwner(tmp, Files.getOwner(parent));
          Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
          Files.deleteIfExists(tmp);
        }
        written.add(rel);
      }
    }
    return written;
  }

  /**
   * The path in the copy, relative to its root, of the data directory of the first writer whose
   * spec starts with {@code kind} and that put back a file named {@code fileName} (PostgreSQL's
   * {@code backup_label}).
   */
  Optional<String> directoryOf(String kind, String fileName) {
    for (JsonNode w : writers) {
      if (!w.path("writer").asText().startsWith(kind)) {
        continue;
      }
      for (JsonNode f : w.path("files")) {
        Path p = Path.of(f.path("path").asText());
        if (p.getFileName() != null && p.getFileName().toString().equals(fileName)) {
          return Optional.of(p.getParent() == null ? "" : p.getParent().toString());
        }
      }
    }
    return Optional.empty();
  }

  /**
   * {@code path} relative to the root of the copy: a relative path as it is; an absolute one (a
   * path on the production host) with the longest mount point the metadata knows cut off (a
   * writer's {@code mountPoint} fact, an {@code fs:} writer's path), else with its leading slash.
   */
  String relative(String path) {
    if (!path.startsWith("/")) {
      return path;
    }
    Path p = Path.of(path).normalize();
    Path best = null;
    for (JsonNode w : writers) {
      List<String> candidates = new ArrayList<>();
      String mp = w.path("facts").path("mountPoint").asText("");
      if (!mp.isEmpty()) {
        candidates.add(mp);
      }
      String spec = w.path("writer").asText();
      if (spec.startsWith("fs:")) {
        candidates.add(spec.substring(3));
      }
      for (String c : candidates) {
        Path m = Path.of(c).normalize();
        if (m.isAbsolute() && p.startsWith(m) && (best == null || m.getNameCount() > best.getNameCount())) {
          best = m;
        }
      }
    }
    return best != null ? best.relativize(p).toString() : path.substring(1);
  }

  private static Set<PosixFilePermission> permissions(int mode) {
    Set<PosixFilePermission> out = EnumSet.noneOf(PosixFilePermission.class);
    PosixFilePermission[] bits = {PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE,
        PosixFilePermission.OTHERS_READ, PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE,
        PosixFilePermission.GROUP_READ, PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE,
        PosixFilePermission.OWNER_READ};
    for (int i = 0; i < bits.length; i++) {
      if ((mode & (1 << i)) != 0) {
        out.add(bits[i]);
      }
    }
    return out;
  }
}
