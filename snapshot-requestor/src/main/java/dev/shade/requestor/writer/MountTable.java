package dev.shade.requestor.writer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The mounts this process sees, read from {@code /proc/self/mountinfo}: which mount point a path
 * is on, and what is mounted there (source device, filesystem type, options), for the fs writer
 * and for placing PostgreSQL's {@code backup_label} relative to its filesystem.
 *
 * <p>Immutable and thread-safe: a table is a copy of the file at the time it was read.
 */
final class MountTable {
  /*
   * A mountinfo line (proc(5)):
   *   36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
   *   (1)(2)(3)   (4)   (5)         (6)      (7...)    (-) (8)    (9)       (10)
   * The optional fields (7) end at a lone "-". Spaces, tabs, newlines and backslashes in paths
   * are written as octal escapes (\040). When mounts are stacked on one mount point, the last
   * line is the one on top, the one a path lookup sees.
   */

  /** The file every table is read from unless a test gives another. */
  static final Path PROC_MOUNTINFO = Path.of("/proc/self/mountinfo");

  /**
   * One mount.
   *
   * @param mountPoint where it is mounted, absolute
   * @param root the directory of the source filesystem mounted there ("/" unless a bind mount)
   * @param fsType e.g. {@code ext4}
   * @param source e.g. {@code /dev/nbd0}
   * @param mountOptions per-mount options, e.g. {@code rw,relatime}
   * @param superOptions the filesystem's own options, e.g. {@code rw,errors=remount-ro}
   */
  record Mount(Path mountPoint, String root, String fsType, String source, String mountOptions,
      String superOptions) {
    /**
     * The {@code mount -o} options that mount it again as it is now: the per-mount options and
     * the filesystem's own, without repeating {@code rw}/{@code ro}.
     */
    String remountOptions() {
      List<String> all = new ArrayList<>(List.of(mountOptions.split(",")));
      for (String o : superOptions.split(",")) {
        if (!o.isEmpty() && !o.equals("rw") && !o.equals("ro") && !all.contains(o)) {
          all.add(o);
        }
      }
      all.removeIf(String::isEmpty);
      return String.join(",", all);
    }
  }

  /** Every mount, in file order. */
  private final List<Mount> mounts;
  /** Where they were read from, for messages. */
  private final Path source;

  private MountTable(List<Mount> mounts, Path source) {
    this.mounts = List.copyOf(mounts);
    this.source = source;
  }

  /** Reads this process's mount table. */
  static MountTable read() throws IOException {
    return read(PROC_MOUNTINFO);
  }

  /** Reads a mount table in mountinfo format from {@code file}. */
  static MountTable read(Path file) throws IOException {
    List<Mount> mounts = new ArrayList<>();
    int n = 0;
    for (String line : Files.readAllLines(file)) {
      n++;
      if (line.isBlank()) {
        continue;
      }
      mounts.add(parse(line, file, n));
    }
    return new MountTable(mounts, file);
  }

  private static Mount parse(String line, Path file, int lineNumber) throws IOException {
    String[] f = line.split(" ");
    int dash = -1;
    for (int i = 6; i < f.length; i++) {
      if (f[i].equals("-")) {
        dash = i;
        break;
      }
    }
    if (f.length < 6 || dash < 0 || dash + 3 > f.length) {
      throw new IOException("unreadable mount line " + lineNumber + " of " + file + ": " + line);
    }
    String superOptions = dash + 3 < f.length ? f[dash + 3] : "";
    return new Mount(Path.of(unescape(f[4])), unescape(f[3]), f[dash + 1], unescape(f[dash + 2]), f[5],
        superOptions);
  }

  /** Decodes mountinfo's octal escapes ({@code \040} is a space). */
  static String unescape(String s) {
    if (s.indexOf('\\') < 0) {
      return s;
    }
    StringBuilder sb = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '\\' && isOctal(s, i + 1) && isOctal(s, i + 2) && isOctal(s, i + 3)) {
        sb.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
        i += 3;
      } else {
        sb.append(c);
      }
    }
    return sb.toString();
  }

  private static boolean isOctal(String s, int i) {
    return i < s.length() && s.charAt(i) >= '0' && s.charAt(i) <= '7';
  }

  /** The mount on top of {@code mountPoint} (absolute, normalized), if that is a mount point. */
  Optional<Mount> at(Path mountPoint) {
    Path p = mountPoint.toAbsolutePath().normalize();
    Mount found = null;
    for (Mount m : mounts) {
      if (m.mountPoint().equals(p)) {
        found = m; // a later line is mounted over an earlier one
      }
    }
    return Optional.ofNullable(found);
  }

  /**
   * The mount that holds {@code path} (absolute, symbolic links already resolved): the one with
   * the longest mount point that is {@code path} or one of its parents.
   */
  Mount holding(Path path) {
    Path p = path.toAbsolutePath().normalize();
    Mount best = null;
    for (Mount m : mounts) {
      if (p.startsWith(m.mountPoint())
          && (best == null || m.mountPoint().getNameCount() >= best.mountPoint().getNameCount())) {
        best = m;
      }
    }
    if (best == null) {
      throw new IllegalStateException("no mount holds " + p + " in " + source + " (not even /)");
    }
    return best;
  }

  @Override
  public String toString() {
    return source + " (" + mounts.size() + " mounts)";
  }
}
