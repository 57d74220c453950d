package dev.shade.nativeio;

import java.nio.file.Path;
import java.util.List;

/**
 * Opens a path with {@link FileHandle} as whoever runs it and reports the outcome, one fact a
 * line; run in a child JVM as an unprivileged user by {@link PermissionDeniedTest}.
 */
final class OpenProbe {
  private OpenProbe() {}

  /** Usage: {@code OpenProbe ro|rw PATH}; prints the lines of {@link #describe}. */
  public static void main(String[] args) {
    describe(args[0], Path.of(args[1])).forEach(System.out::println);
  }

  /**
   * Opens {@code path} read-only ({@code "ro"}) or read-write ({@code "rw"}): {@code [opened]}
   * on success, otherwise the exception's simple class name, errno name, call, resource and
   * message.
   */
  static List<String> describe(String mode, Path path) {
    try {
      FileHandle f = mode.equals("rw") ? FileHandle.openReadWrite(path)
          : FileHandle.openReadOnly(path);
      f.close();
      return List.of("opened");
    } catch (ErrnoException e) {
      return List.of(e.getClass().getSimpleName(), Errno.name(e.errno()), e.call(),
          e.resource(), e.getMessage());
    }
  }
}
