package dev.shade.requestor.writer;

import java.util.List;
import java.util.Map;

/**
 * What a writer returns for a snapshot that is not in the snapshot's blocks: files to put back
 * beside its data when the snapshot is restored or attached (PostgreSQL's {@code backup_label}
 * and {@code tablespace_map}, with paths relative to the root of the filesystem the snapshot
 * holds), and facts (the backup's start and stop WAL positions). Stored durably with the
 * snapshot as the volume's snapshot attribute {@value #ATTRIBUTE}, and carried by every copy.
 *
 * @param writer the writer's spec
 * @param files files to write back, path relative to the snapshot's filesystem root
 * @param facts strings a later step needs (e.g. for backup-complete) or an operator wants to see
 */
public record WriterMetadata(String writer, List<File> files, Map<String, String> facts) {
  /** The snapshot attribute holding the JSON array of every writer's metadata. */
  public static final String ATTRIBUTE = "shade.writers";

  public WriterMetadata {
    files = List.copyOf(files);
    facts = Map.copyOf(facts);
  }

  /** No files, no facts. */
  public static WriterMetadata none(String writer) {
    return new WriterMetadata(writer, List.of(), Map.of());
  }

  /**
   * @param path relative to the root of the snapshot's filesystem, e.g. {@code pgdata/backup_label}
   * @param content the file's text
   * @param mode POSIX permission bits, e.g. 0600
   */
  public record File(String path, String content, int mode) {}
}
