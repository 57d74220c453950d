package dev.shade.offhost.drill;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * A filesystem mounted read-write at a scratch mount point ({@code mount}), unmounted by
 * {@link #close}. Needs root.
 *
 * <p>Not thread-safe.
 */
final class Mount implements AutoCloseable {
  private static final Duration LIMIT = Duration.ofMinutes(5);
  /** How long a busy mount is retried. */
  private static final long BUSY_RETRY_NANOS = 10_000_000_000L;

  /** The device mounted. */
  private final String device;
  /** Where. */
  private final Path mountPoint;
  /** True once unmounted. */
  private boolean closed;

  private Mount(String device, Path mountPoint) {
    this.device = device;
    this.mountPoint = mountPoint;
  }

  /** Mounts {@code device} (a filesystem of {@code type}, "" to let mount find out) at {@code mountPoint}. */
  static Mount mount(String device, String type, Path mountPoint) throws IOException {
    List<String> argv = new java.util.ArrayList<>(List.of(Programs.require("mount", "mount")));
    if (!type.isEmpty()) {
      argv.addAll(List.of("-t", type));
    }
    argv.addAll(List.of(device, mountPoint.toAbsolutePath().toString()));
    Programs.Result r = Programs.run(argv, LIMIT);
    if (!r.ok()) {
      throw new IOException("cannot mount " + device + " at " + mountPoint + ": " + r);
    }
    return new Mount(device, mountPoint);
  }

  /** The mount point. */
  Path mountPoint() {
    return mountPoint;
  }

  /** Unmounts; nothing if it already is. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    // a process that just exited (a stopped database server's last backend) may hold the mount
    // for a moment longer: a busy target is retried for a few seconds
    long deadline = System.nanoTime() + BUSY_RETRY_NANOS;
    while (true) {
      Programs.Result r = Programs.run(List.of(Programs.require("umount", "mount"),
          mountPoint.toAbsolutePath().toString()), LIMIT);
      if (r.ok()) {
        closed = true;
        return;
      }
      if (!r.output().contains("busy") || System.nanoTime() > deadline) {
        throw new IOException("cannot unmount " + this + ": " + r);
      }
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted while unmounting " + this);
      }
    }
  }

  @Override
  public String toString() {
    return device + " at " + mountPoint;
  }
}
