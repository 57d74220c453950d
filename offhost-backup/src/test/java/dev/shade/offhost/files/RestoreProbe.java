package dev.shade.offhost.files;

import dev.shade.nativeio.Xattrs;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Restores a files archive (args: the archive, the directory) and prints each note, then
 * {@code user.NAME=VALUE} for each xattr of {@code DIR/a}: run in a child JVM as another user.
 */
public final class RestoreProbe {
  private RestoreProbe() {}

  public static void main(String[] args) throws Exception {
    Path archive = Path.of(args[0]);
    Path dir = Path.of(args[1]);
    FilesExtractor.Result r;
    try (InputStream in = Files.newInputStream(archive)) {
      r = FilesExtractor.extract(in, archive.toString(), Files.size(archive), List.of("*"), dir, p -> {});
    }
    for (String n : r.notes()) {
      System.out.println("note " + n);
    }
    for (String n : Xattrs.list(dir.resolve("a"))) {
      System.out.println("xattr " + n + "=" + new String(Xattrs.get(dir.resolve("a"), n), StandardCharsets.UTF_8));
    }
  }
}
