package dev.shade.nativeio;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AtomicFileTest {
  @TempDir Path tmp;

  @Test
  void replacesTheFileWithTheModeAskedForAndLeavesNothingBeside() throws IOException {
    Path f = tmp.resolve("meta.json");
    Files.writeString(f, "old");
    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-rw-rw-"));
    AtomicFile.write(f, "new".getBytes(StandardCharsets.UTF_8), 0640);
    assertArrayEquals("new".getBytes(StandardCharsets.UTF_8), Files.readAllBytes(f));
    assertEquals("rw-r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
    AtomicFile.write(tmp.resolve("fresh"), new byte[0], 0600);
    assertEquals(0, Files.size(tmp.resolve("fresh")));
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(tmp.resolve("fresh"))));
    try (Stream<Path> s = Files.list(tmp)) {
      assertEquals(2, s.count(), "no temporary file left");
    }
  }

  @Test
  void aMissingDirectoryFailsNamingTheFile() {
    Path f = tmp.resolve("no/such/dir/file");
    IOException e = assertThrows(IOException.class, () -> AtomicFile.write(f, new byte[1], 0600));
    assertEquals(true, e.getMessage().contains("no/such/dir"), e.getMessage());
  }
}
