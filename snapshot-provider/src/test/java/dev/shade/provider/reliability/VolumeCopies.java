package dev.shade.provider.reliability;

import java.io.IOException;
import java.nio.file.Path;

/** For tests outside this package: the files of an open volume copied as a crash would leave them. */
public final class VolumeCopies {
  private VolumeCopies() {}

  /** Copies every file of the volume directory {@code from} to {@code to}, lock file included. */
  public static void copyOpen(Path from, Path to) throws IOException {
    TestFiles.copyTree(from, to);
  }

  /** Deletes {@code root} and everything under it; a missing root is fine. */
  public static void deleteTree(Path root) throws IOException {
    TestFiles.deleteTree(root);
  }
}
