package dev.shade.nativeio;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link Xattrs} on a file of the test's temporary directory: set, list, get, a missing one, a missing file. */
class XattrsTest {
  @TempDir Path tmp;

  @Test
  void setListGet_roundTrip_binaryAndEmptyValues() throws Exception {
    Path f = Files.writeString(tmp.resolve("f"), "x");
    try {
      Xattrs.set(f, "user.probe", new byte[] {1});
    } catch (ErrnoException e) {
      org.junit.jupiter.api.Assumptions.abort("the temporary directory's filesystem keeps no user xattrs: " + e.getMessage());
    }
    byte[] big = new byte[3000];
    for (int i = 0; i < big.length; i++) {
      big[i] = (byte) i;
    }
    Xattrs.set(f, "user.big", big);
    Xattrs.set(f, "user.empty", new byte[0]);
    Xattrs.set(f, "user.text", "é".getBytes(StandardCharsets.UTF_8));
    assertTrue(Xattrs.list(f).containsAll(java.util.List.of("user.probe", "user.big", "user.empty", "user.text")),
        Xattrs.list(f)::toString);
    assertArrayEquals(big, Xattrs.get(f, "user.big"));
    assertArrayEquals(new byte[0], Xattrs.get(f, "user.empty"));
    assertEquals("é", new String(Xattrs.get(f, "user.text"), StandardCharsets.UTF_8));
    assertNull(Xattrs.get(f, "user.missing"));
    ErrnoException e = assertThrows(ErrnoException.class, () -> Xattrs.list(tmp.resolve("none")));
    assertTrue(e.getMessage().contains("llistxattr") && e.getMessage().contains("none"), e::getMessage);
  }
}
