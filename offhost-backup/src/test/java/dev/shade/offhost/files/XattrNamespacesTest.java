package dev.shade.offhost.files;

import static dev.shade.testing.live.TreeFixture.sh;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.jna.Native;
import dev.shade.nativeio.Xattrs;
import dev.shade.testing.ChildJvm;
import dev.shade.testing.Command;
import dev.shade.testing.Host;
import dev.shade.testing.LoopFilesystem;
import dev.shade.testing.Tools;
import java.nio.file.attribute.PosixFilePermissions;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * xattrs of the user, trusted and security namespaces on a real ext4 filesystem, of files,
 * directories, symbolic links (the link's own, not its target's) and fifos: archived as
 * SCHILY.xattr.NAME, extracted by GNU tar with --xattrs --xattrs-include='*', restored by
 * {@link FilesExtractor} (as root), while the ACL stays an ACL and no system.* xattr is archived;
 * a restore by another user leaves trusted.* and security.* out with a note, and a user.* xattr
 * on a link (which Linux does not keep) is left out with a note.
 */
class XattrNamespacesTest {
  /** The uid and gid of nobody. */
  private static final int NOBODY = 65534;

  @TempDir Path tmp;

  @Test
  void trustedAndSecurityXattrs_archived_gnuTarAndRestoreBringThemBack() throws Exception {
    Tools.requireRoot("set trusted.* xattrs");
    Tools.require("tar", "tar");
    Tools.require("setfacl", "acl");
    Tools.require("getfacl", "acl");
    try (LoopFilesystem fs = LoopFilesystem.create(tmp.resolve("fs"), 64L << 20)) {
      Path src = Files.createDirectories(fs.mountPoint().resolve("src"));
      Path f = Files.createDirectories(src.resolve("pg")).resolve("data.db");
      Files.writeString(f, "rows\n");
      Xattrs.set(f, "user.origin", "production".getBytes(StandardCharsets.UTF_8));
      Xattrs.set(f, "trusted.shade.tier", new byte[] {0, 1, 2, (byte) 0xff});
      Xattrs.set(f, "security.shade", "label-x".getBytes(StandardCharsets.UTF_8));
      Xattrs.set(f.getParent(), "trusted.dir", "d".getBytes(StandardCharsets.UTF_8));
      Path link = Files.createSymbolicLink(src.resolve("pg/current"), Path.of("data.db"));
      Xattrs.set(link, "trusted.link", "the link's own".getBytes(StandardCharsets.UTF_8));
      Path fifo = src.resolve("pg/notify");
      sh("mkfifo '" + fifo + "'");
      Xattrs.set(fifo, "security.fifo", "f".getBytes(StandardCharsets.UTF_8));
      sh("setfacl -m u:1234:rw '" + f + "'");
      assertTrue(Xattrs.list(f).contains("system.posix_acl_access"), Xattrs.list(f)::toString);

      Path archive = tmp.resolve("a.tar");
      FilesManifest header = new FilesManifest("db", "0f0e", "s1", 7, Instant.EPOCH, 1 << 20, "ext4", 10240,
          Instant.now(), null, null, null);
      try (OutputStream out = Files.newOutputStream(archive)) {
        FilesArchiveWriter.write(out, 10240, src, header, true, (d, t) -> {});
      }
      String raw = new String(Files.readAllBytes(archive), StandardCharsets.ISO_8859_1);
      assertTrue(raw.contains("SCHILY.xattr.trusted.shade.tier="), "trusted.* archived");
      assertTrue(raw.contains("SCHILY.xattr.security.shade=label-x"), "security.* archived");
      assertTrue(raw.contains("SCHILY.xattr.trusted.link=the link's own"), "a link's xattr archived");
      assertTrue(raw.contains("SCHILY.xattr.security.fifo=f"), "a fifo's xattr archived");
      assertTrue(raw.contains("SCHILY.acl.access="), "the ACL as an ACL");
      assertTrue(!raw.contains("SCHILY.xattr.system."), "no system.* xattr");

      // GNU tar, onto ext4 as well
      Path gnu = Files.createDirectories(fs.mountPoint().resolve("gnu"));
      sh("cd '" + gnu + "' && tar -x --xattrs --xattrs-include='*' --acls -f '" + archive + "'");
      check(gnu.resolve("files"));
      checkLinkAndFifo(gnu.resolve("files"));
      assertTrue(sh("getfacl -n -p '" + gnu.resolve("files/pg/data.db") + "'").contains("user:1234:rw-"));

      // shade's restore
      Path to = fs.mountPoint().resolve("restored");
      FilesExtractor.Result r;
      try (InputStream in = Files.newInputStream(archive)) {
        r = FilesExtractor.extract(in, archive.toString(), Files.size(archive), List.of("*"), to, p -> {});
      }
      assertTrue(r.notes().isEmpty(), r.notes()::toString);
      check(to);
      checkLinkAndFifo(to);
      assertTrue(sh("getfacl -n -p '" + to.resolve("pg/data.db") + "'").contains("user:1234:rw-"));
    }
  }

  @Test
  void notRoot_trustedAndSecurityXattrsLeftOutWithANote_userXattrRestored() throws Exception {
    Tools.requireRoot("run the restore as another user (setpriv)");
    Tools.require("setpriv", "util-linux");
    Path shared = Files.createTempDirectory("shade-xattr-");
    try {
      Files.setPosixFilePermissions(shared, PosixFilePermissions.fromString("rwxr-xr-x"));
      Path scratch = Files.createDirectory(shared.resolve("scratch"));
      Files.setPosixFilePermissions(scratch, PosixFilePermissions.fromString("rwxrwxrwx"));
      String cp = ChildJvm.copyClasspath(Files.createDirectory(shared.resolve("cp")), RestoreProbe.class,
          FilesExtractor.class, Xattrs.class, Native.class, ObjectMapper.class, JsonFactory.class, JsonProperty.class,
          TarArchiveEntry.class);
      // an archive of one file owned by nobody, with a user, a trusted and a security xattr
      Path archive = shared.resolve("a.tar");
      FilesManifest h = new FilesManifest("db", "u", "s", 1, Instant.EPOCH, 0, "ext4", 512, Instant.EPOCH, null, null,
          null);
      try (TarArchiveOutputStream t = new TarArchiveOutputStream(Files.newOutputStream(archive), "UTF-8")) {
        t.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        put(t, new TarArchiveEntry(FilesManifest.HEADER_MEMBER), h.bytes());
        TarArchiveEntry a = new TarArchiveEntry("files/a");
        a.setIds(NOBODY, NOBODY);
        a.addPaxHeader("SCHILY.xattr.user.kept", "yes");
        a.addPaxHeader("SCHILY.xattr.trusted.tier", "gold");
        a.addPaxHeader("SCHILY.xattr.security.label", "x");
        put(t, a, "data\n".getBytes(StandardCharsets.UTF_8));
        TarArchiveEntry l = new TarArchiveEntry("files/l", TarConstants.LF_SYMLINK);
        l.setLinkName("a");
        l.setIds(NOBODY, NOBODY);
        l.addPaxHeader("SCHILY.xattr.user.onalink", "no");
        put(t, l, new byte[0]);
      }
      Files.setPosixFilePermissions(archive, PosixFilePermissions.fromString("rw-r--r--"));
      try (LoopFilesystem fs = LoopFilesystem.create(shared.resolve("fs"), 32L << 20)) {
        Path to = Files.createDirectory(fs.mountPoint().resolve("to"));
        Files.setPosixFilePermissions(fs.mountPoint(), PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.setAttribute(to, "unix:uid", NOBODY);
        Files.setAttribute(to, "unix:gid", NOBODY);
        Command c = ChildJvm.run(List.of("setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY, "--clear-groups", "--"),
            cp, scratch, RestoreProbe.class, archive.toString(), to.toString());
        List<String> out = List.of(c.requireSuccess().strip().split("\n"));
        assertTrue(out.contains("xattr user.kept=yes"), out::toString);
        assertTrue(out.contains("note xattr trusted.tier of files/a is not restored: the trusted namespace needs root"),
            out::toString);
        assertTrue(out.contains("note xattr security.label of files/a is not restored: the security namespace needs root"),
            out::toString);
        assertTrue(out.contains("note xattr user.onalink of files/l is not restored: Linux keeps user.* xattrs on regular"
            + " files and directories only"), out::toString);
        assertEquals("a", Files.readSymbolicLink(to.resolve("l")).toString());
        assertEquals(null, Xattrs.get(to.resolve("a"), "trusted.tier"));
        assertEquals("data\n", Files.readString(to.resolve("a")));
      }
    } finally {
      Host.deleteTree(shared);
    }
  }

  private static void put(TarArchiveOutputStream t, TarArchiveEntry e, byte[] body) throws Exception {
    e.setSize(body.length);
    t.putArchiveEntry(e);
    t.write(body);
    t.closeArchiveEntry();
  }

  /** The link's and the fifo's own xattrs are back, and the link's is not on its target. */
  private static void checkLinkAndFifo(Path root) throws Exception {
    Path link = root.resolve("pg/current");
    assertEquals("data.db", Files.readSymbolicLink(link).toString());
    assertArrayEquals("the link's own".getBytes(StandardCharsets.UTF_8), Xattrs.get(link, "trusted.link"));
    assertEquals(null, Xattrs.get(root.resolve("pg/data.db"), "trusted.link"), "not set through the link");
    assertArrayEquals("f".getBytes(StandardCharsets.UTF_8), Xattrs.get(root.resolve("pg/notify"), "security.fifo"));
  }

  private static void check(Path root) throws Exception {
    Path f = root.resolve("pg/data.db");
    assertArrayEquals("production".getBytes(StandardCharsets.UTF_8), Xattrs.get(f, "user.origin"));
    assertArrayEquals(new byte[] {0, 1, 2, (byte) 0xff}, Xattrs.get(f, "trusted.shade.tier"));
    assertArrayEquals("label-x".getBytes(StandardCharsets.UTF_8), Xattrs.get(f, "security.shade"));
    assertArrayEquals("d".getBytes(StandardCharsets.UTF_8), Xattrs.get(root.resolve("pg"), "trusted.dir"));
    assertEquals("rows\n", Files.readString(f));
  }
}
