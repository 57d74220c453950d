package dev.shade.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/** Facts about the machine the tests run on, read from {@code /proc} and standard tools. Thread-safe. */
public final class Host {
  private Host() {}

  /** The effective uid of this process, from {@code /proc/self/status}. */
  public static int uid() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("Uid:")) {
          // Uid: real effective saved filesystem
          return Integer.parseInt(line.substring(4).trim().split("\\s+")[1]);
        }
      }
      throw new IllegalStateException("no Uid line in /proc/self/status");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** True when this process runs with effective uid 0. */
  public static boolean isRoot() {
    return uid() == 0;
  }

  /** Bytes of disk the file occupies, from {@code stat -c '%b %B'} (blocks times block unit). */
  public static long allocatedBytes(Path file) throws IOException, InterruptedException {
    String[] f = Command.run("stat", "-c", "%b %B", file.toString()).requireSuccess().trim().split(" ");
    return Long.parseLong(f[0]) * Long.parseLong(f[1]);
  }

  /** Deletes {@code root} and everything below it, not following links; missing is fine. */
  public static void deleteTree(Path root) throws IOException {
    if (root == null || !Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
