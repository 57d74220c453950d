package dev.shade.offhost.drill;

import java.io.IOException;
import java.time.Duration;
import java.util.List;

/**
 * Checks the filesystem on a device without repairing it: {@code e2fsck -fn} for ext2/3/4,
 * {@code xfs_repair -n} for XFS, {@code fsck -n} for anything else, the type found by
 * {@code blkid}.
 *
 * <p>An ext4 whose journal needs recovery (a snapshot taken without freezing the filesystem:
 * crash-consistent) would fail {@code e2fsck -n} for that alone, though mounting it replays the
 * journal as a crash recovery does; its journal is replayed first ({@code e2fsck -E
 * journal_only}, on the scratch copy), and the verdict says so.
 *
 * <p>Thread-safe: stateless.
 */
final class FilesystemCheck {
  private static final Duration LIMIT = Duration.ofMinutes(30);

  private FilesystemCheck() {}

  /** The verdict: the filesystem type, whether it is clean, and what the checker said. */
  record Verdict(String type, boolean clean, String summary) {}

  /** The filesystem type of {@code device} as blkid reports it, or "" when it finds none. */
  static String type(String device) throws IOException {
    Programs.Result r = Programs.run(List.of(Programs.require("blkid", "util-linux"), "-o", "value", "-s", "TYPE",
        device), Duration.ofSeconds(60));
    return r.ok() ? r.output().strip() : "";
  }

  /** Checks {@code device}, holding a filesystem of {@code type}. */
  static Verdict check(String device, String type) throws IOException {
    String replayed = "";
    if (type.startsWith("ext") && needsRecovery(device)) {
      Programs.Result r = Programs.run(List.of(Programs.require("e2fsck", "e2fsprogs"), "-E", "journal_only", "-p",
          device), LIMIT);
      if (r.exitCode() >= 4) {
        return new Verdict(type, false, "its journal needed recovery, and replaying it failed: " + r);
      }
      replayed = "journal replayed first (the snapshot was crash-consistent); ";
    }
    List<String> argv;
    switch (type) {
      case "ext2", "ext3", "ext4" -> argv = List.of(Programs.require("e2fsck", "e2fsprogs"), "-f", "-n", device);
      case "xfs" -> argv = List.of(Programs.require("xfs_repair", "xfsprogs"), "-n", device);
      default -> argv = List.of(Programs.require("fsck", "util-linux"), "-n", device);
    }
    Programs.Result r = Programs.run(argv, LIMIT);
    String[] lines = r.output().strip().split("\n");
    String last = lines.length == 0 ? "" : lines[lines.length - 1].strip();
    String program = argv.get(0).substring(argv.get(0).lastIndexOf('/') + 1);
    String summary = program + " exited with " + r.exitCode() + (last.isEmpty() ? "" : ": " + last);
    summary = replayed + summary;
    return new Verdict(type, r.ok(), r.ok() ? summary : summary + " (" + Programs.clip(r.output().strip()) + ")");
  }

  /** True when the ext2/3/4 superblock of {@code device} has the feature needs_recovery. */
  private static boolean needsRecovery(String device) throws IOException {
    Programs.Result r = Programs.run(List.of(Programs.require("dumpe2fs", "e2fsprogs"), "-h", device),
        Duration.ofSeconds(60));
    return r.output().lines().anyMatch(l -> l.startsWith("Filesystem features:") && l.contains("needs_recovery"));
  }
}
