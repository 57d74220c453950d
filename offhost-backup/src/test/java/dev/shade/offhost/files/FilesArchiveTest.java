package dev.shade.offhost.files;

import static dev.shade.testing.live.TreeFixture.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.testing.Tools;
import dev.shade.testing.live.TreeFixture;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A files archive of a real tree (long names, a 9 GiB sparse file, links, owners, modes,
 * xattrs, ACLs, a fifo, a device node): GNU tar lists it and extracts it with every attribute,
 * and {@link FilesExtractor} restores it, a file of it, and a directory of it, equal to the
 * original.
 */
class FilesArchiveTest {
  @TempDir static Path tmp;
  static Path src;
  static Path archive;
  static FilesArchiveWriter.Result written;

  @BeforeAll
  static void writeArchive() throws Exception {
    Tools.requireRoot("make files of other owners and device nodes");
    Tools.require("getfacl", "acl");
    Tools.require("setfacl", "acl");
    Tools.require("tar", "tar");
    src = Files.createDirectories(tmp.resolve("src"));
    TreeFixture.populate(src);
    archive = tmp.resolve("a.tar");
    FilesManifest header = new FilesManifest("db", "0f0e", "s1", 7, Instant.parse("2026-01-02T03:04:05Z"), 1 << 30,
        "ext4", 10240, Instant.now(), null, null, null);
    try (OutputStream out = Files.newOutputStream(archive)) {
      written = FilesArchiveWriter.write(out, 10240, src, header, true, (d, t) -> {});
    }
  }

  @Test
  void manifest_countsTheTree() {
    FilesManifest.Counts c = written.manifest().counts();
    assertEquals(1, c.sparseFiles(), c::toString);
    assertEquals(2, c.hardLinks(), c::toString);
    assertEquals(3, c.symlinks(), c::toString);
    assertEquals(2, c.specialFiles(), c::toString);
    assertTrue(c.bytes() > TreeFixture.BIG, c::toString);
    assertTrue(c.dataBytes() < 8 << 20, "holes are not stored: " + c);
    assertTrue(written.archiveBytes() < 16 << 20, "archive of " + written.archiveBytes() + " bytes");
  }

  @Test
  void gnuTar_listsAndExtractsEveryAttribute() throws Exception {
    String list = sh("tar -t -f '" + archive + "'");
    List<String> names = list.lines().toList();
    assertEquals(FilesManifest.HEADER_MEMBER, names.get(0));
    assertEquals(FilesManifest.MANIFEST_MEMBER, names.get(names.size() - 1));
    assertTrue(names.contains("files/data/db/big.img"), list);
    assertTrue(names.contains("files/data/" + TreeFixture.LONG + "/" + TreeFixture.LONG + "/" + TreeFixture.LONG + "/"
        + TreeFixture.LONG + ".bin"), list);
    Path gnu = Files.createDirectories(tmp.resolve("gnu"));
    sh("cd '" + gnu + "' && tar -x --xattrs --xattrs-include='*' --acls --numeric-owner -f '" + archive + "'");
    TreeFixture.assertSameTree(TreeFixture.describe(src), TreeFixture.describe(gnu.resolve("files")));
    assertTrue(TreeFixture.allocated(gnu.resolve("files/data/db/big.img")) < 16 << 20, "GNU tar restores the holes");
    // one file alone, as an operator restores it
    Path one = Files.createDirectories(tmp.resolve("gnu-one"));
    sh("cd '" + one + "' && tar -x --xattrs --xattrs-include='*' --acls -f '" + archive + "' 'files/srv/app dir é/run me.sh'");
    assertEquals(TreeFixture.describe(src.resolve("srv/app dir é")).get("run me.sh"),
        TreeFixture.describe(one.resolve("files/srv/app dir é")).get("run me.sh"));
  }

  @Test
  void extractor_restoresAll_oneFile_oneDirectory() throws Exception {
    Map<String, String> original = TreeFixture.describe(src);
    Path all = tmp.resolve("all");
    FilesExtractor.Result r = extract(List.of("*"), all);
    TreeFixture.assertSameTree(original, TreeFixture.describe(all));
    assertTrue(TreeFixture.allocated(all.resolve("data/db/big.img")) < 16 << 20, "the restore keeps the holes");
    assertEquals(written.manifest().counts(), r.manifest().counts());

    Path one = tmp.resolve("one");
    extract(List.of("etc/hosts"), one);
    assertEquals(original.get("etc/hosts"), TreeFixture.describe(one).get("etc/hosts"));
    assertEquals(List.of("etc"), children(one));

    Path dir = tmp.resolve("dir");
    extract(List.of("files/srv"), dir);
    Map<String, String> want = new TreeMap<>();
    original.forEach((k, v) -> {
      if (k.startsWith("srv")) {
        want.put(k, v);
      }
    });
    TreeFixture.assertSameTree(want, TreeFixture.describe(dir));

    // hard links come back as links when their first name is restored with them
    Path links = tmp.resolve("links");
    extract(List.of("data/db/page.db", "etc/page.db.link2"), links);
    assertEquals(Files.getAttribute(links.resolve("data/db/page.db"), "unix:ino"),
        Files.getAttribute(links.resolve("etc/page.db.link2"), "unix:ino"));
  }

  private static FilesExtractor.Result extract(List<String> patterns, Path to) throws Exception {
    try (InputStream in = Files.newInputStream(archive)) {
      return FilesExtractor.extract(in, archive.toString(), Files.size(archive), patterns, to, p -> {});
    }
  }

  private static List<String> children(Path d) throws Exception {
    List<String> out = new ArrayList<>();
    try (var s = Files.list(d)) {
      s.forEach(p -> out.add(p.getFileName().toString()));
    }
    return out;
  }
}
