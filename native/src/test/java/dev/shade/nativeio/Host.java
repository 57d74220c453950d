package dev.shade.nativeio;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Facts about the machine the tests run on, read from {@code /proc} and standard tools. */
final class Host {
  private Host() {}

  /** True when this process runs with effective uid 0. */
  static boolean isRoot() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("Uid:")) {
          // Uid: real effective saved filesystem
          return line.substring(4).trim().split("\\s+")[1].equals("0");
        }
      }
      throw new IllegalStateException("no Uid line in /proc/self/status");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** True when {@code tool} is an executable file in a directory of {@code PATH}. */
  static boolean hasTool(String tool) {
    String path = System.getenv().getOrDefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    for (String dir : path.split(":")) {
      if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, tool))) {
        return true;
      }
    }
    return false;
  }

  /** Bytes of disk the file occupies, from {@code stat -c '%b %B'} (blocks times block unit). */
  static long allocatedBytes(Path file) throws IOException, InterruptedException {
    String[] f = Command.run("stat", "-c", "%b %B", file.toString()).requireSuccess().trim()
        .split(" ");
    return Long.parseLong(f[0]) * Long.parseLong(f[1]);
  }

  /** Deletes {@code root} and everything below it; missing is fine. */
  static void deleteTree(Path root) throws IOException {
    if (root == null || !Files.exists(root, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try (var walk = Files.walk(root)) {
      for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
