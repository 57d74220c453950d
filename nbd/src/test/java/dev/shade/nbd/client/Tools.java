package dev.shade.nbd.client;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Finds the external programs the client tests run against; a missing one skips the test with
 * the reason, except under CI=true, where bin/test installs them, so a missing one fails it.
 */
final class Tools {
  private Tools() {}

  private static final Map<String, String> PACKAGES = Map.of(
      "nbdkit", "nbdkit", "qemu-nbd", "qemu-utils", "qemu-img", "qemu-utils", "nbdcopy", "libnbd-bin",
      "nbdinfo", "libnbd-bin", "openssl", "openssl", "stat", "coreutils");

  /** The absolute path of {@code tool} on PATH or in the sbin folders, if any. */
  static Optional<Path> find(String tool) {
    Set<String> dirs = new LinkedHashSet<>();
    String path = System.getenv("PATH");
    if (path != null) {
      for (String d : path.split(File.pathSeparator)) {
        if (!d.isEmpty()) {
          dirs.add(d);
        }
      }
    }
    dirs.addAll(List.of("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"));
    for (String d : dirs) {
      Path p = Path.of(d, tool);
      if (Files.isRegularFile(p) && Files.isExecutable(p)) {
        return Optional.of(p);
      }
    }
    return Optional.empty();
  }

  /** Skips (or, under CI=true, fails) the calling test unless every tool is installed. */
  static void require(String... tools) {
    List<String> missing = new ArrayList<>();
    Set<String> packages = new LinkedHashSet<>();
    for (String t : tools) {
      if (find(t).isEmpty()) {
        missing.add(t);
        packages.add(PACKAGES.getOrDefault(t, t));
      }
    }
    if (missing.isEmpty()) {
      return;
    }
    String why = String.join(", ", missing) + " not installed (Debian: apt-get install " + String.join(" ", packages)
        + "; bin/test installs them)";
    if ("true".equals(System.getenv("CI"))) {
      fail(why + ", and CI=true requires every tool");
    }
    assumeTrue(false, "skipped: " + why);
  }
}
