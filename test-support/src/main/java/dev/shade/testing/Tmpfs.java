package dev.shade.testing;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A small tmpfs mounted for one test, to fill up (ENOSPC) without touching a real disk. Needs
 * root; {@link #mount} skips the test (fails it under {@code CI=true}) when it cannot be had.
 *
 * <p>Not thread-safe: one test mounts it and unmounts it.
 */
public final class Tmpfs implements AutoCloseable {
  /** Where it is mounted. */
  private final Path mountPoint;
  /** True until it was unmounted. */
  private boolean mounted = true;

  private Tmpfs(Path mountPoint) {
    this.mountPoint = mountPoint;
  }

  /**
   * Mounts a tmpfs of {@code size} ({@code mount -o size=}, e.g. "4m") on the existing empty
   * directory {@code mountPoint}, named {@code name} in the mount table; {@code options} are
   * more {@code mount -o} options (may be empty, e.g. "mode=0700").
   */
  public static Tmpfs mount(Path mountPoint, String name, String size, String options)
      throws IOException, InterruptedException {
    Tools.requireRoot("mount a " + size + " tmpfs");
    Tools.require("mount", "mount", "umount", "mount");
    Command c = Command.run("mount", "-t", "tmpfs", "-o", "size=" + size + (options.isEmpty() ? "" : "," + options),
        name, mountPoint.toString());
    if (c.exitCode() != 0) {
      Tools.unavailable("cannot mount a tmpfs (no CAP_SYS_ADMIN in this container?): " + c);
    }
    return new Tmpfs(mountPoint);
  }

  /** The directory it is mounted on. */
  public Path path() {
    return mountPoint;
  }

  /**
   * Unmounts it; when something still holds it open, detaches it ({@code umount --lazy}) so no
   * mount outlives the test run, and returns false. True on a clean unmount or if already done.
   */
  public boolean unmount() throws IOException, InterruptedException {
    if (!mounted) {
      return true;
    }
    mounted = false;
    Command c = Command.run("umount", mountPoint.toString());
    if (c.exitCode() == 0) {
      return true;
    }
    Command.run("umount", "--lazy", mountPoint.toString()).requireSuccess();
    return false;
  }

  @Override
  public void close() throws IOException, InterruptedException {
    unmount();
  }

  @Override
  public String toString() {
    return "tmpfs on " + mountPoint;
  }
}
