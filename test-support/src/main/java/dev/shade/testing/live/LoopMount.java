package dev.shade.testing.live;

import dev.shade.testing.Command;
import dev.shade.testing.Tools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A file (an image, or the file nbdfuse shows) attached to a loop device and its filesystem
 * mounted, for tests that put a real filesystem on a shade volume or on a copy of a snapshot.
 *
 * <p>Each piece can be undone and redone on its own ({@link #unmount}, {@link #detach},
 * {@link #attach}, {@link #mount}), for tests that take an application off the volume and bring
 * it back. {@link #close} undoes whatever is still set up, and a JVM shutdown hook does the same
 * for a test that never got to close it, so no mount or loop device outlives the test run.
 *
 * <p>Not thread-safe: one test drives it (the shutdown hook runs when the test no longer does).
 */
public final class LoopMount implements AutoCloseable {
  /** The file behind the loop device. */
  private final Path file;
  /** Where the filesystem is mounted. */
  private final Path mountPoint;
  /** Extra {@code mount -o} options, or "". */
  private final String options;
  /** The loop device while attached ({@code /dev/loopN}), else null. */
  private String device;
  /** True while the filesystem is mounted. */
  private boolean mounted;

  private LoopMount(Path file, Path mountPoint, String options) {
    this.file = file;
    this.mountPoint = mountPoint;
    this.options = options;
  }

  /**
   * Skips the calling test (fails it under {@code CI=true}) unless this process is root and has
   * losetup, mkfs.ext4, e2fsck, mount and a free loop device.
   */
  public static void requireTools() throws IOException, InterruptedException {
    Tools.requireRoot("attach loop devices and mount filesystems");
    Tools.require("losetup", "util-linux", "mount", "mount", "umount", "mount", "mkfs.ext4", "e2fsprogs",
        "e2fsck", "e2fsprogs");
    Tools.requireLoopDevice();
  }

  /**
   * Attaches {@code file} to a free loop device ({@code losetup --find --show --direct-io=off}),
   * makes an ext4 filesystem on it when {@code format} ({@code mkfs.ext4 -q -F}), and mounts it on
   * {@code mountPoint} (created if missing) with the extra {@code mount -o} {@code options} ("" for
   * none). On failure, undoes what it did.
   */
  public static LoopMount mount(Path file, Path mountPoint, boolean format, String options)
      throws IOException, InterruptedException {
    LoopMount m = unmounted(file, mountPoint, options);
    try {
      m.attach();
      if (format) {
        mkfs(m.device);
      }
      m.mount();
      return m;
    } catch (IOException | InterruptedException | RuntimeException | Error e) {
      m.closeQuietly(e);
      throw e;
    }
  }

  /** The same, with nothing attached or mounted yet: {@link #attach} and {@link #mount} do that. */
  static LoopMount unmounted(Path file, Path mountPoint, String options) {
    LoopMount m = new LoopMount(file.toAbsolutePath(), mountPoint.toAbsolutePath(), options);
    Teardown.register(m);
    return m;
  }

  /** Makes an empty ext4 filesystem on {@code device} ({@code mkfs.ext4 -q -F}). */
  static void mkfs(String device) throws IOException, InterruptedException {
    mkfs(device, List.of());
  }

  /** The same with the extra {@code mkfs.ext4} {@code options} before the device. */
  static void mkfs(String device, List<String> options) throws IOException, InterruptedException {
    List<String> argv = new ArrayList<>(List.of("mkfs.ext4", "-q", "-F"));
    argv.addAll(options);
    argv.add(device);
    Command c = Command.run(argv.toArray(String[]::new));
    if (c.exitCode() != 0) {
      throw new IOException("cannot make an ext4 filesystem on " + device + ": " + c);
    }
  }

  /**
   * Checks and repairs the ext4 filesystem in {@code fileOrDevice} ({@code e2fsck -fy}), as a
   * crash-consistent copy needs before it is mounted (its journal is replayed). Returns e2fsck's
   * output; fails when e2fsck says errors are left (exit status 4 or more).
   */
  public static String fsck(Path fileOrDevice) throws IOException, InterruptedException {
    Command c = Command.run("e2fsck", "-fy", fileOrDevice.toString());
    if (c.exitCode() >= 4 || c.exitCode() < 0) {
      throw new AssertionError("the filesystem in " + fileOrDevice + " has errors e2fsck left: " + c);
    }
    return c.output();
  }

  /** Attaches the file to a free loop device; nothing when attached already. */
  public void attach() throws IOException, InterruptedException {
    if (device != null) {
      return;
    }
    Command c = Command.run("losetup", "--find", "--show", "--direct-io=off", file.toString());
    if (c.exitCode() != 0 || !c.output().strip().startsWith("/dev/")) {
      throw new IOException("cannot attach " + file + " to a loop device: " + c);
    }
    device = c.output().strip();
  }

  /** Mounts the filesystem on the loop device (attaching it first if needed); nothing when mounted. */
  public void mount() throws IOException, InterruptedException {
    if (mounted) {
      return;
    }
    attach();
    Files.createDirectories(mountPoint);
    Command c = options.isEmpty() ? Command.run("mount", device, mountPoint.toString())
        : Command.run("mount", "-o", options, device, mountPoint.toString());
    if (c.exitCode() != 0) {
      throw new IOException("cannot mount " + device + " (" + file + ") on " + mountPoint + ": " + c);
    }
    mounted = true;
  }

  /**
   * Unmounts the filesystem, waiting up to {@value Mounts#UNMOUNT_WAIT_MILLIS} ms while something
   * still uses it; after that it is detached lazily ({@code umount --lazy}, said on stderr) and
   * this returns false. True on a clean unmount or when it was not mounted.
   */
  public boolean unmount() throws IOException, InterruptedException {
    if (!mounted) {
      return true;
    }
    mounted = false;
    return Mounts.unmount(mountPoint, "ext4 on " + device);
  }

  /** Detaches the loop device (unmounting first if needed); nothing when detached. */
  public void detach() throws IOException, InterruptedException {
    unmount();
    if (device == null) {
      return;
    }
    String d = device;
    device = null;
    // only this device, and only while it is still on this file (something outside the fixture,
    // a hook, may have detached it, and another test may have the number now): never losetup -D
    Command back = Command.run("losetup", "--noheadings", "--output", "BACK-FILE", d);
    if (back.exitCode() != 0 || !back.output().strip().startsWith(file.toString())) {
      System.err.println("shade live fixtures: loop device " + d + " is no longer on " + file + " ("
          + back.output().strip() + "); not detaching it");
      return;
    }
    Command c = Command.run("losetup", "--detach", d);
    if (c.exitCode() != 0) {
      throw new IOException("cannot detach loop device " + d + " from " + file + ": " + c);
    }
  }

  /** Where the filesystem is (or was) mounted. */
  public Path mountPoint() {
    return mountPoint;
  }

  /** The file behind the loop device. */
  public Path file() {
    return file;
  }

  /** The loop device while attached, such as {@code /dev/loop3}; null when detached. */
  public String device() {
    return device;
  }

  /** True while the filesystem is mounted. */
  public boolean mounted() {
    return mounted;
  }

  /** Unmounts and detaches whatever is still set up. */
  @Override
  public void close() throws IOException, InterruptedException {
    try {
      detach();
    } finally {
      Teardown.done(this);
    }
  }

  private void closeQuietly(Throwable cause) {
    try {
      close();
    } catch (Exception e) {
      cause.addSuppressed(e);
    }
  }

  @Override
  public String toString() {
    return file + (device == null ? "" : " on " + device) + (mounted ? " mounted on " + mountPoint : "");
  }
}
