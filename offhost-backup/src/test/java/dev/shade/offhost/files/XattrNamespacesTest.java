package dev.shade.offhost.files;

import static dev.shade.testing.live.TreeFixture.sh;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.nativeio.Xattrs;
import dev.shade.testing.LoopFilesystem;
import dev.shade.testing.Tools;
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
 * xattrs of the user, trusted and security namespaces on a real ext4 filesystem: archived as
 * SCHILY.xattr.NAME, extracted by GNU tar with --xattrs --xattrs-include='*', restored by
 * {@link FilesExtractor} (as root), while the ACL stays an ACL and no system.* xattr is archived.
 */
class XattrNamespacesTest {
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
      assertTrue(raw.contains("SCHILY.acl.access="), "the ACL as an ACL");
      assertTrue(!raw.contains("SCHILY.xattr.system."), "no system.* xattr");

      // GNU tar, onto ext4 as well
      Path gnu = Files.createDirectories(fs.mountPoint().resolve("gnu"));
      sh("cd '" + gnu + "' && tar -x --xattrs --xattrs-include='*' --acls -f '" + archive + "'");
      check(gnu.resolve("files"));
      assertTrue(sh("getfacl -n -p '" + gnu.resolve("files/pg/data.db") + "'").contains("user:1234:rw-"));

      // shade's restore
      Path to = fs.mountPoint().resolve("restored");
      FilesExtractor.Result r;
      try (InputStream in = Files.newInputStream(archive)) {
        r = FilesExtractor.extract(in, archive.toString(), Files.size(archive), List.of("*"), to, p -> {});
      }
      assertTrue(r.notes().isEmpty(), r.notes()::toString);
      check(to);
      assertTrue(sh("getfacl -n -p '" + to.resolve("pg/data.db") + "'").contains("user:1234:rw-"));
    }
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
