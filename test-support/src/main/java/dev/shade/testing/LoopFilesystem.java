package dev.shade.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A real ext4 filesystem for one test: a sparse image file, attached to a free loop device,
 * formatted and mounted. Needs root, {@code losetup}, {@code mkfs.ext4} and {@code mount};
 * {@link #create} skips the test (fails it under {@code CI=true}) when they cannot be had.
 *
 * <p>{@link #close} thaws it (in case a test left it frozen, which would hang the unmount),
 * unmounts it and detaches the loop device, whatever state it is in.
 *
 * <p>Not thread-safe: one test makes it and closes it.
 */
public final class LoopFilesystem implements AutoCloseable {
  /** The image file behind the loop device. */
  private final Path image;
  /** The loop device, e.g. {@code /dev/loop3}. */
  private final String device;
  /** Where it is mounted. */
  private final Path mountPoint;
  /** True while the loop device is attached. */
  private boolean attached = true;

  private LoopFilesystem(Path image, String device, Path mountPoint) {
    this.image = image;
    this.device = device;
    this.mountPoint = mountPoint;
  }

  /**
   * Makes an ext4 filesystem of {@code sizeBytes} in {@code dir/ext4.img} and mounts it on
   * {@code dir/mnt} (both created).
   */
  public static LoopFilesystem create(Path dir, long sizeBytes) throws IOException, InterruptedException {
    Tools.requireRoot("attach a loop device and mount ext4");
    Tools.require("losetup", "util-linux", "mkfs.ext4", "e2fsprogs", "mount", "mount", "umount", "mount",
        "fsfreeze", "util-linux");
    Tools.requireLoopDevice();
    Path image = dir.resolve("ext4.img");
    Path mnt = Files.createDirectories(dir.resolve("mnt"));
    Command.run("truncate", "-s", Long.toString(sizeBytes), image.toString()).requireSuccess();
    Command attach = Command.run("losetup", "--find", "--show", image.toString());
    if (attach.exitCode() != 0 || !attach.output().startsWith("/dev/loop")) {
      Tools.unavailable("cannot attach a loop device: " + attach);
    }
    LoopFilesystem fs = new LoopFilesystem(image, attach.output().strip(), mnt);
    try {
      Command.run("mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", fs.device).requireSuccess();
      fs.mount();
      return fs;
    } catch (IOException | RuntimeException | Error | InterruptedException e) {
      fs.close();
      throw e;
    }
  }

  /** Mounts it again (after {@link #unmount}, or after a test unmounted it itself). */
  public void mount() throws IOException, InterruptedException {
    Command.run("mount", "-t", "ext4", device, mountPoint.toString()).requireSuccess();
  }

  /** Unmounts it (thawing it first), lazily if something holds it; missing mount is fine. */
  public void unmount() throws IOException, InterruptedException {
    if (!isMounted()) {
      return;
    }
    Command.run("fsfreeze", "--unfreeze", mountPoint.toString()); // EINVAL when not frozen: fine
    Command c = Command.run("umount", mountPoint.toString());
    if (c.exitCode() != 0) {
      Command.run("umount", "--lazy", mountPoint.toString()).requireSuccess();
    }
  }

  /** True when something is mounted on {@link #mountPoint()} now (per /proc/self/mounts). */
  public boolean isMounted() throws IOException {
    String target = mountPoint.toAbsolutePath().toString();
    for (String line : Files.readAllLines(Path.of("/proc/self/mounts"))) {
      String[] f = line.split(" ");
      if (f.length > 1 && f[1].equals(target)) {
        return true;
      }
    }
    return false;
  }

  /** The directory it is mounted on. */
  public Path mountPoint() {
    return mountPoint;
  }

  /** The loop device, e.g. {@code /dev/loop3}. */
  public String device() {
    return device;
  }

  @Override
  public void close() throws IOException, InterruptedException {
    try {
      unmount();
    } finally {
      if (attached) {
        attached = false;
        Command.run("losetup", "-d", device).requireSuccess();
      }
      Files.deleteIfExists(image);
    }
  }

  @Override
  public String toString() {
    return "ext4 on " + device + " (" + image + ") at " + mountPoint;
  }
}
