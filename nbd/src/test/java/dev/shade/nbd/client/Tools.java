package dev.shade.nbd.client;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The external programs the client tests run against, by name, with the Debian package of each,
 * for {@link dev.shade.testing.Tools} (which skips, or fails under CI=true, when one is missing).
 */
final class Tools {
  private Tools() {}

  private static final Map<String, String> PACKAGES = Map.of(
      "nbdkit", "nbdkit", "qemu-nbd", "qemu-utils", "qemu-img", "qemu-utils", "nbdcopy", "libnbd-bin",
      "nbdinfo", "libnbd-bin", "openssl", "openssl", "stat", "coreutils");

  /** The absolute path of {@code tool} on PATH or in the sbin folders, if any. */
  static Optional<Path> find(String tool) {
    return dev.shade.testing.Tools.find(tool);
  }

  /** Skips (or, under CI=true, fails) the calling test unless every tool is installed. */
  static void require(String... tools) {
    Map<String, String> wanted = new LinkedHashMap<>();
    for (String t : tools) {
      wanted.put(t, PACKAGES.getOrDefault(t, t));
    }
    dev.shade.testing.Tools.require(wanted);
  }
}
