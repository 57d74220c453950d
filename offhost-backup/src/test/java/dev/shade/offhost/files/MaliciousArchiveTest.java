package dev.shade.offhost.files;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Crafted archives a restore must refuse without touching anything outside its directory:
 * {@code ..} components, absolute names, a symbolic link followed by a member under it, hard
 * links out of the tree or to a link, names with NUL, a size the archive cannot hold, and a
 * symbolic link already in the directory.
 */
class MaliciousArchiveTest {
  @TempDir Path tmp;
  Path dir;
  Path outside;
  Map<String, String> before;

  @BeforeEach
  void setUp() throws Exception {
    dir = Files.createDirectories(tmp.resolve("restore"));
    outside = Files.createDirectories(tmp.resolve("outside"));
    Files.writeString(outside.resolve("passwd"), "root:x:0:0\n");
    before = snapshot(tmp);
  }

  @Test
  void dotDot_isRefused() throws Exception {
    refused(tar(t -> file(t, "files/../../outside/x", "evil")), "'..' component");
  }

  @Test
  void dotDotAtTheTop_isRefused() throws Exception {
    refused(tar(t -> file(t, "../x", "evil")), "'..' component");
  }

  @Test
  void absoluteName_isRefused() throws Exception {
    refused(tar(t -> file(t, outside.resolve("x").toString(), "evil")), "absolute name");
  }

  @Test
  void symlinkThenFileUnderIt_isRefused() throws Exception {
    refused(tar(t -> {
      symlink(t, "files/dir", outside.toString());
      file(t, "files/dir/passwd", "evil");
    }), "is a symbolic link");
    assertTrue(Files.isSymbolicLink(dir.resolve("dir")), "the link itself is restored, never followed");
  }

  @Test
  void hardLinkOut_isRefused() throws Exception {
    refused(tar(t -> hardlink(t, "files/hl", "files/../../outside/passwd")), "'..' component");
    refused(tar(t -> hardlink(t, "files/hl", outside.resolve("passwd").toString())), "absolute name");
  }

  @Test
  void hardLinkToASymlink_isRefused() throws Exception {
    refused(tar(t -> {
      symlink(t, "files/sl", outside.resolve("passwd").toString());
      hardlink(t, "files/hl", "files/sl");
    }), "did not write");
  }

  @Test
  void nulInName_isRefused() throws Exception {
    refused(tar(t -> {
      PaxRecords pax = new PaxRecords().put("path", "files/a\0/../../outside/x");
      raw(t, pax, "files/a", 4, "evil".getBytes(StandardCharsets.UTF_8));
    }), "NUL");
  }

  @Test
  void hugeSize_isRefusedBeforeAnythingIsWritten() throws Exception {
    byte[] a = tar(t -> {
      PaxRecords pax = new PaxRecords().put("size", Long.toString(1L << 50)).put("path", "files/big");
      raw(t, pax, "files/big", 0, new byte[0]);
    });
    refused(a, "the header claims 1125899906842624 bytes");
    assertFalse(Files.exists(dir.resolve("big")));
  }

  @Test
  void symlinkAlreadyInTheDirectory_isNeverFollowed() throws Exception {
    Files.createSymbolicLink(dir.resolve("pre"), outside);
    Files.createSymbolicLink(dir.resolve("passwd"), outside.resolve("passwd"));
    before = snapshot(tmp);
    refused(tar(t -> file(t, "files/pre/passwd", "evil")), "is a symbolic link");
    // a member where a link is: the link is replaced, its target left alone
    extract(tar(t -> file(t, "files/passwd", "new")));
    assertFalse(Files.isSymbolicLink(dir.resolve("passwd")));
    assertEquals("new", Files.readString(dir.resolve("passwd")));
    assertEquals("root:x:0:0\n", Files.readString(outside.resolve("passwd")));
  }

  @Test
  void truncatedArchive_isNamed() throws Exception {
    byte[] a = tar(t -> file(t, "files/f", "x".repeat(5000)));
    byte[] cut = java.util.Arrays.copyOf(a, 4096); // inside files/f's data
    IOException e = assertThrows(IOException.class, () -> extract(cut));
    assertTrue(e.getMessage().contains("files/f"), e::getMessage);
    assertFalse(Files.exists(dir.resolve("f")), "a member cut short is removed");
    // cut between two members: the missing end of the archive is noticed too
    byte[] between = java.util.Arrays.copyOf(a, 3072);
    e = assertThrows(IOException.class, () -> extract(between));
    assertTrue(e.getMessage().contains("ends without"), e::getMessage);
  }

  private void refused(byte[] archive, String why) throws Exception {
    IOException e = assertThrows(IOException.class, () -> extract(archive));
    assertTrue(e.getMessage().contains(why), e::getMessage);
    Map<String, String> after = snapshot(tmp);
    after.keySet().removeIf(k -> k.startsWith("restore/"));
    Map<String, String> was = new TreeMap<>(before);
    was.keySet().removeIf(k -> k.startsWith("restore/"));
    assertEquals(was, after, "nothing outside the restore directory changed");
  }

  private void extract(byte[] archive) throws IOException {
    FilesExtractor.extract(new ByteArrayInputStream(archive), "crafted", archive.length, List.of("*"), dir, p -> {});
  }

  interface Body {
    void write(TarArchiveOutputStream t) throws IOException;
  }

  /** A files archive: the header member, then what {@code body} writes. */
  private static byte[] tar(Body body) throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    try (TarArchiveOutputStream t = new TarArchiveOutputStream(b, "UTF-8")) {
      t.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      t.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
      FilesManifest h = new FilesManifest("v", "u", "s", 1, Instant.EPOCH, 0, "ext4", 512, Instant.EPOCH, null, null,
          null);
      TarArchiveEntry e = new TarArchiveEntry(FilesManifest.HEADER_MEMBER);
      byte[] hb = h.bytes();
      e.setSize(hb.length);
      t.putArchiveEntry(e);
      t.write(hb);
      t.closeArchiveEntry();
      body.write(t);
    }
    return b.toByteArray();
  }

  private static void file(TarArchiveOutputStream t, String name, String content) throws IOException {
    TarArchiveEntry e = new TarArchiveEntry(name, true);
    byte[] c = content.getBytes(StandardCharsets.UTF_8);
    e.setSize(c.length);
    e.setMode(0644);
    t.putArchiveEntry(e);
    t.write(c);
    t.closeArchiveEntry();
  }

  private static void symlink(TarArchiveOutputStream t, String name, String target) throws IOException {
    TarArchiveEntry e = new TarArchiveEntry(name, TarConstants.LF_SYMLINK, true);
    e.setLinkName(target);
    t.putArchiveEntry(e);
    t.closeArchiveEntry();
  }

  private static void hardlink(TarArchiveOutputStream t, String name, String target) throws IOException {
    TarArchiveEntry e = new TarArchiveEntry(name, TarConstants.LF_LINK, true);
    e.setLinkName(target);
    t.putArchiveEntry(e);
    t.closeArchiveEntry();
  }

  /** An extended header of our own records, then a ustar entry of {@code size} with {@code data}. */
  private static void raw(TarArchiveOutputStream t, PaxRecords pax, String name, long size, byte[] data)
      throws IOException {
    byte[] body = pax.bytes();
    TarArchiveEntry x = new TarArchiveEntry("PaxHeaders/x", TarConstants.LF_PAX_EXTENDED_HEADER_LC);
    x.setSize(body.length);
    t.putArchiveEntry(x);
    t.write(body);
    t.closeArchiveEntry();
    TarArchiveEntry e = new TarArchiveEntry(name, true);
    e.setSize(data.length);
    t.putArchiveEntry(e);
    t.write(data);
    t.closeArchiveEntry();
  }

  /** Every path under {@code root} with its type and content (files) or target (links). */
  private static Map<String, String> snapshot(Path root) throws IOException {
    Map<String, String> m = new TreeMap<>();
    try (Stream<Path> s = Files.walk(root)) {
      for (Path p : s.toList()) {
        String rel = root.relativize(p).toString();
        if (Files.isSymbolicLink(p)) {
          m.put(rel, "-> " + Files.readSymbolicLink(p));
        } else if (Files.isRegularFile(p)) {
          m.put(rel, Files.readString(p));
        } else {
          m.put(rel, "dir");
        }
      }
    }
    return m;
  }
}
