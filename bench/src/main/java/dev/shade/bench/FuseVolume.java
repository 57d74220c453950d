package dev.shade.bench;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * One NBD export with a fresh ext4 filesystem on it, mounted: nbdfuse shows the export as a
 * file, a loop device sits on that file, ext4 is made and mounted on it, as a database host
 * would put a filesystem on a shade volume.
 *
 * <p>Not thread-safe: one thread sets it up and closes it (close may also come from a shutdown
 * hook, which is why it is synchronized).
 */
final class FuseVolume implements Closeable {
  /*
   * nbdfuse runs in the foreground until SIGTERM and then unmounts its FUSE mount itself. The
   * loop device uses buffered I/O (FUSE files refuse O_DIRECT here); a flush of it becomes an
   * fsync of nbdfuse's file, which nbdfuse sends as an NBD FLUSH. Teardown goes the other way:
   * unmount (retrying while busy, then lazily), detach only this loop device, stop nbdfuse.
   */

  /** How long nbdfuse may take to show its file, and an unmount to stop being busy. */
  private static final Duration WAIT = Duration.ofSeconds(30);
  /** Bounds every helper program. */
  private static final Duration STEP = Duration.ofSeconds(120);

  /** Where the filesystem is mounted. */
  final Path mountPoint;
  /** The export's URI. */
  private final String uri;
  /** nbdfuse's mount directory. */
  private final Path fuseDir;
  /** nbdfuse. */
  private final Process nbdfuse;
  /** The loop device once attached, else null. */
  private String device;
  /** True while mounted. */
  private boolean mounted;
  /** True once closed. */
  private boolean closed;

  private FuseVolume(String uri, Path fuseDir, Path mountPoint, Process nbdfuse) {
    this.uri = uri;
    this.fuseDir = fuseDir;
    this.mountPoint = mountPoint;
    this.nbdfuse = nbdfuse;
  }

  /** Shows {@code uri} through nbdfuse in {@code work/fuse-NAME}, makes ext4 on it and mounts it on {@code work/NAME}. */
  static FuseVolume open(Path work, String name, String uri) throws IOException, InterruptedException {
    Path fuseDir = work.resolve("fuse-" + name);
    Path mountPoint = work.resolve(name);
    Files.createDirectories(fuseDir);
    Files.createDirectories(mountPoint);
    Path file = fuseDir.resolve("disk");
    Process p = Programs.start(work, work.resolve("nbdfuse-" + name + ".log"), List.of("nbdfuse", file.toString(), uri));
    FuseVolume v = new FuseVolume(uri, fuseDir, mountPoint, p);
    try {
      long deadline = System.nanoTime() + WAIT.toNanos();
      while (!Files.exists(file)) {
        if (!p.isAlive() || System.nanoTime() > deadline) {
          throw new IOException("nbdfuse did not show " + uri + " as " + file + ": "
              + Programs.tail(work.resolve("nbdfuse-" + name + ".log"), 5));
        }
        Thread.sleep(20);
      }
      Programs.Result loop = Programs.run(work, STEP, List.of("losetup", "--find", "--show", "--direct-io=off",
          file.toString()));
      if (!loop.ok() || !loop.stdout().strip().startsWith("/dev/")) {
        throw new IOException("cannot attach a loop device to " + file + ": " + loop.failure());
      }
      v.device = loop.stdout().strip();
      require(work, "mkfs.ext4", "-q", "-F", v.device);
      require(work, "mount", v.device, mountPoint.toString());
      v.mounted = true;
      return v;
    } catch (IOException | InterruptedException | RuntimeException e) {
      v.close();
      throw e;
    }
  }

  /** Unmounts, detaches the loop device and stops nbdfuse, as far as each was set up. */
  @Override
  public synchronized void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    Path dir = mountPoint.getParent();
    try {
      if (mounted && !unmount(dir, mountPoint)) {
        System.err.println("bench: " + mountPoint + " stayed busy for " + WAIT.toSeconds() + " s; unmounted it lazily");
      }
      if (device != null) {
        // only this device: never losetup -D, other programs on the machine may have their own
        Programs.run(dir, STEP, List.of("losetup", "--detach", device));
      }
      Programs.stop(nbdfuse, Duration.ofSeconds(10));
      if (Programs.run(dir, STEP, List.of("mountpoint", "-q", fuseDir.toString())).ok()) {
        unmount(dir, fuseDir);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while taking down " + this, e);
    }
  }

  /** Unmounts {@code path}, retrying while busy for {@link #WAIT}; then lazily, returning false. */
  private static boolean unmount(Path dir, Path path) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (true) {
      Programs.Result r = Programs.run(dir, STEP, List.of("umount", path.toString()));
      if (r.ok()) {
        return true;
      }
      if (System.nanoTime() > deadline) {
        Programs.run(dir, STEP, List.of("umount", "--lazy", path.toString()));
        return false;
      }
      Thread.sleep(100);
    }
  }

  private static void require(Path dir, String... command) throws IOException, InterruptedException {
    Programs.Result r = Programs.run(dir, STEP, List.of(command));
    if (!r.ok()) {
      throw new IOException(r.failure());
    }
  }

  @Override
  public String toString() {
    return "ext4 on " + uri + " (" + (device == null ? "no loop device" : device) + ") at " + mountPoint;
  }
}
