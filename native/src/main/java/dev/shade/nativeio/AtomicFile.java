package dev.shade.nativeio;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Replaces a small file all at once: the bytes go to a temporary file beside it (created with
 * the given mode, so the content is never readable more widely), which is fsynced and renamed
 * over the target; then the directory is fsynced, so after a crash the target holds the old
 * bytes or the new ones, never a part. Stateless and thread-safe; two writers of one target
 * race as renames do (the last rename wins), and the temporary file's name is unique to each.
 */
public final class AtomicFile {
  private AtomicFile() {}

  /**
   * Writes {@code bytes} to {@code target}, replacing it, with permission bits {@code mode}
   * (e.g. {@code 0600}).
   *
   * @throws IOException naming the file when a step fails; the target is then unchanged and the
   *     temporary file removed
   */
  public static void write(Path target, byte[] bytes, int mode) throws IOException {
    Path dir = target.toAbsolutePath().getParent();
    Path tmp = dir.resolve("." + target.getFileName() + "." + ProcessHandle.current().pid() + "."
        + Long.toHexString(System.nanoTime()) + ".tmp");
    try {
      try (FileHandle fh = FileHandle.open(tmp, FileHandle.O_RDWR | FileHandle.O_CREAT | FileHandle.O_EXCL
          | FileHandle.O_TRUNC, mode)) {
        fh.writeFully(0, ByteBuffer.wrap(bytes));
        fh.fsync();
      }
      // open() applies the umask: set the mode the caller asked for
      Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString(rwx(mode)));
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(tmp);
    }
    syncDirectory(dir);
  }

  /** fsyncs the directory {@code dir}, so a rename or a new entry in it is durable. */
  public static void syncDirectory(Path dir) throws IOException {
    try (FileHandle d = FileHandle.open(dir, FileHandle.O_RDONLY | FileHandle.O_DIRECTORY, 0)) {
      d.fsync();
    }
  }

  private static String rwx(int mode) {
    String letters = "rwxrwxrwx";
    StringBuilder b = new StringBuilder(9);
    for (int i = 0; i < 9; i++) {
      b.append((mode & (1 << (8 - i))) != 0 ? letters.charAt(i) : '-');
    }
    return b.toString();
  }
}
