package dev.shade.nativeio;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * Touches a mapping where the kernel answers with SIGBUS and reports what the caller saw, one
 * fact a line. Runs in a child JVM so that a broken fault path kills only that JVM.
 */
final class MappingFaultProbe {
  private MappingFaultProbe() {}

  /**
   * {@code truncated PATH}: maps a new two-page file, shrinks it to zero and reads the second
   * page. {@code hole PATH}: maps the existing (sparse) file and writes its first byte.
   * Prints the exception class and message (or "no error"), then "alive".
   */
  public static void main(String[] args) throws Exception {
    Path path = Path.of(args[1]);
    switch (args[0]) {
      case "truncated" -> {
        try (FileHandle f = FileHandle.create(path)) {
          f.writeFully(0, ByteBuffer.wrap(new byte[(int) (2 * MappedFile.PAGE)]));
          try (MappedFile m = MappedFile.map(f, false)) {
            f.truncate(0);
            report(() -> m.read(MappedFile.PAGE, ByteBuffer.allocate(1)));
          }
        }
      }
      case "hole" -> {
        try (FileHandle f = FileHandle.openReadWrite(path);
            MappedFile m = MappedFile.map(f, true)) {
          report(() -> m.write(0, ByteBuffer.wrap(new byte[] {1})));
        }
      }
      default -> throw new IllegalArgumentException("unknown mode: " + args[0]);
    }
    System.out.println("alive");
  }

  /** An access that may fail. */
  private interface Access {
    void run() throws IOException;
  }

  private static void report(Access access) {
    try {
      access.run();
      System.out.println("no error");
    } catch (IOException e) {
      System.out.println(e.getClass().getSimpleName());
      System.out.println(e.getMessage());
    }
  }
}
