package dev.shade.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/** Removal of the working directories that commands and benchmarks create. */
public final class Directories {
  private Directories() {}

  /** Deletes everything under {@code root}, and {@code root} itself unless {@code keepRoot}. */
  public static void delete(Path root, boolean keepRoot) throws IOException {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path p : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) {
        if (!keepRoot || !p.equals(root)) {
          Files.deleteIfExists(p);
        }
      }
    }
  }
}
