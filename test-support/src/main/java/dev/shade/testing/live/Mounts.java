package dev.shade.testing.live;

import dev.shade.testing.Command;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The mount table as {@code /proc/self/mountinfo} shows it, and unmounting with a bounded wait. Thread-safe. */
final class Mounts {
  /** How long an unmount keeps retrying while the filesystem is busy, before it detaches it lazily. */
  static final long UNMOUNT_WAIT_MILLIS = 10_000;

  private Mounts() {}

  /** True when something is mounted exactly on {@code mountPoint} (an absolute path). */
  static boolean mounted(Path mountPoint) throws IOException {
    String want = escape(mountPoint.toAbsolutePath().normalize().toString());
    for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
      // id parent major:minor root mountpoint options ...
      String[] f = line.split(" ");
      if (f.length > 4 && f[4].equals(want)) {
        return true;
      }
    }
    return false;
  }

  /**
   * Unmounts {@code mountPoint}, retrying for up to {@link #UNMOUNT_WAIT_MILLIS} while it is busy;
   * then detaches it lazily ({@code umount --lazy}), says so on stderr, and returns false. True on
   * a clean unmount, or when nothing was mounted there.
   */
  static boolean unmount(Path mountPoint, String what) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + UNMOUNT_WAIT_MILLIS * 1_000_000;
    Command last = null;
    while (mounted(mountPoint)) {
      last = Command.run("umount", mountPoint.toString());
      if (last.exitCode() == 0) {
        return true;
      }
      if (System.nanoTime() > deadline) {
        Command lazy = Command.run("umount", "--lazy", mountPoint.toString());
        System.err.println("shade live fixtures: " + what + " on " + mountPoint + " still busy after "
            + UNMOUNT_WAIT_MILLIS / 1000 + " s (" + last.output().strip() + "); detached it lazily: "
            + (lazy.exitCode() == 0 ? "done" : lazy));
        return false;
      }
      Thread.sleep(100);
    }
    return true;
  }

  /** The octal escapes of mountinfo: space, tab, newline and backslash. */
  private static String escape(String path) {
    return path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011").replace("\n", "\\012");
  }
}
