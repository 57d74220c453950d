package dev.shade.offhost.drill;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * A loop device attached read-write to a scratch image ({@code losetup --find --show}), detached
 * by {@link #close}. Needs root.
 *
 * <p>Not thread-safe.
 */
final class LoopDevice implements AutoCloseable {
  private static final Duration LIMIT = Duration.ofSeconds(60);

  /** The image file. */
  private final Path image;
  /** The device, e.g. {@code /dev/loop3}. */
  private final String device;
  /** True once detached. */
  private boolean closed;

  private LoopDevice(Path image, String device) {
    this.image = image;
    this.device = device;
  }

  /** Attaches {@code image}. */
  static LoopDevice attach(Path image) throws IOException {
    String losetup = Programs.require("losetup", "util-linux");
    Programs.Result r = Programs.run(List.of(losetup, "--find", "--show", image.toAbsolutePath().toString()), LIMIT);
    String dev = r.output().strip();
    if (!r.ok() || !dev.startsWith("/dev/")) {
      throw new IOException("cannot attach " + image + " to a loop device (root and a free loop device are needed): "
          + r);
    }
    return new LoopDevice(image, dev);
  }

  /** The device path. */
  String device() {
    return device;
  }

  /** Detaches the device; nothing if it already is. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    Programs.Result r = Programs.run(List.of(Programs.require("losetup", "util-linux"), "--detach", device), LIMIT);
    if (!r.ok()) {
      throw new IOException("cannot detach " + this + ": " + r);
    }
    closed = true;
  }

  @Override
  public String toString() {
    return "loop device " + device + " of " + image;
  }
}
