package dev.shade.testing.live;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A tree holding what a files archive must keep (long names, a sparse file larger than 8 GiB,
 * symbolic and hard links, modes, owners, user xattrs, ACLs, a fifo, a device node), and a
 * description of a tree to compare copies by: every entry's type, mode, owner, mtime to the
 * nanosecond, size, link target, hard-link group, user xattrs and ACL, and the bytes of every
 * data segment.
 */
public final class TreeFixture {
  /** The sparse file's size: more than ustar's 8 GiB. */
  public static final long BIG = 9L << 30;
  /** A path component of 120 characters: names longer than ustar's 100. */
  public static final String LONG = "l".repeat(60) + "-" + "o".repeat(59);

  private TreeFixture() {}

  /** Fills {@code root} (an existing, empty directory on a filesystem with xattrs and ACLs). */
  public static void populate(Path root) throws Exception {
    Path etc = Files.createDirectories(root.resolve("etc"));
    Files.writeString(etc.resolve("hosts"), "127.0.0.1 localhost\n");
    Files.writeString(etc.resolve("shadow"), "root:*:19000:0:99999:7:::\n");
    sh("chmod 0640 '" + etc.resolve("shadow") + "' && chown 0:42 '" + etc.resolve("shadow") + "'");
    Path deep = Files.createDirectories(root.resolve("data").resolve(LONG).resolve(LONG).resolve(LONG));
    Files.write(deep.resolve(LONG + ".bin"), random(1, 3 * 1024 * 1024 + 17));
    Path db = Files.createDirectories(root.resolve("data/db"));
    // a sparse file of 9 GiB: 1 MiB of data at the start, 64 KiB at 8.5 GiB, a hole at the end
    try (FileChannel c = FileChannel.open(db.resolve("big.img"), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      c.write(ByteBuffer.wrap(random(2, 1 << 20)), 0);
      c.write(ByteBuffer.wrap(random(3, 64 << 10)), (17L << 29));
    }
    sh("truncate -s " + BIG + " '" + db.resolve("big.img") + "'");
    Files.write(db.resolve("page.db"), random(4, 256 * 1024));
    Files.createFile(db.resolve("empty"));
    Files.createSymbolicLink(root.resolve("data/current"), Path.of("db/page.db"));
    Files.createSymbolicLink(root.resolve("data/outside"), Path.of("/etc/passwd"));
    Files.createSymbolicLink(root.resolve("data/" + LONG + "-link"), Path.of(LONG + "/" + LONG + "/" + LONG + "/"
        + LONG + ".bin"));
    Files.createLink(root.resolve("data/db/page.db.link1"), db.resolve("page.db"));
    Files.createLink(root.resolve("etc/page.db.link2"), db.resolve("page.db"));
    Path app = Files.createDirectories(root.resolve("srv/app dir é"));
    Files.writeString(app.resolve("run me.sh"), "#!/bin/sh\necho hi\n");
    sh("chmod 4755 '" + app.resolve("run me.sh") + "' && chown 1234:5678 '" + app.resolve("run me.sh") + "'");
    sh("chown 1234:5678 '" + app + "' && chmod 2775 '" + app + "'");
    UserDefinedFileAttributeView x = Files.getFileAttributeView(app.resolve("run me.sh"),
        UserDefinedFileAttributeView.class);
    x.write("color", ByteBuffer.wrap("blue".getBytes(StandardCharsets.UTF_8)));
    x.write("binary", ByteBuffer.wrap(new byte[] {0, 1, 2, (byte) 0xff, '\n', '='}));
    Files.getFileAttributeView(etc.resolve("hosts"), UserDefinedFileAttributeView.class)
        .write("checksum", ByteBuffer.wrap("abc".getBytes(StandardCharsets.UTF_8)));
    sh("setfacl -m u:1234:rw,g:5678:r '" + etc.resolve("hosts") + "'");
    sh("setfacl -m u:1234:rwx -d -m u:1234:rwx,g::r-x '" + app + "'");
    sh("setfacl -m u:4321:r '" + app.resolve("run me.sh") + "'");
    sh("mkfifo -m 0620 '" + root.resolve("srv/fifo") + "'");
    sh("mknod -m 0600 '" + root.resolve("srv/null") + "' c 1 3");
    sh("touch -h -d '2021-03-04 05:06:07.123456789' '" + root.resolve("data/current") + "'");
    sh("touch -d '2020-01-02 03:04:05.987654321' '" + etc.resolve("hosts") + "'");
    sh("touch -d '2019-01-02 03:04:05.5' '" + db.resolve("big.img") + "'");
  }

  /** Every entry under {@code root} (the root itself left out), described; see the class comment. */
  public static Map<String, String> describe(Path root) throws Exception {
    Map<String, String> out = new TreeMap<>();
    Map<Object, String> inodes = new TreeMap<>();
    List<Path> all;
    try (Stream<Path> s = Files.walk(root)) {
      all = new ArrayList<>(s.filter(p -> !p.equals(root)).sorted().toList());
    }
    for (Path p : all) {
      String rel = root.relativize(p).toString();
      Map<String, Object> a = Files.readAttributes(p, "unix:*", LinkOption.NOFOLLOW_LINKS);
      int mode = (Integer) a.get("mode");
      StringBuilder d = new StringBuilder();
      d.append(String.format("mode=%06o uid=%s gid=%s", mode, a.get("uid"), a.get("gid")));
      boolean symlink = (mode & 0170000) == 0120000;
      d.append(" mtime=").append(a.get("lastModifiedTime"));
      if (symlink) {
        d.append(" -> ").append(Files.readSymbolicLink(p));
      } else {
        if ((mode & 0170000) == 0100000) {
          d.append(" size=").append(a.get("size")).append(" data=").append(dataDigest(p));
          if ((Integer) a.get("nlink") > 1) {
            String key = a.get("dev") + ":" + a.get("ino");
            inodes.putIfAbsent(key, rel);
            d.append(" links=").append(a.get("nlink")).append(" group=").append(inodes.get(key));
          }
        }
        if ((mode & 0170000) == 0020000) {
          d.append(" rdev=").append(a.get("rdev"));
        }
        if ((mode & 0170000) == 0100000 || (mode & 0170000) == 0040000) {
          UserDefinedFileAttributeView v = Files.getFileAttributeView(p, UserDefinedFileAttributeView.class,
              LinkOption.NOFOLLOW_LINKS);
          List<String> names = new ArrayList<>(v.list());
          names.sort(null);
          for (String n : names) {
            ByteBuffer b = ByteBuffer.allocate(v.size(n));
            v.read(n, b);
            d.append(" xattr.").append(n).append('=').append(java.util.HexFormat.of().formatHex(b.array(), 0,
                b.position()));
          }
          d.append(" acl=").append(sh("getfacl -n -p -c -- '" + p + "'").replace('\n', ','));
        }
      }
      out.put(rel, d.toString());
    }
    return out;
  }

  /**
   * A digest of the file's non-zero 1 MiB blocks and their offsets: equal for two files of equal
   * content, however their holes lie (the size is compared apart).
   */
  static String dataDigest(Path p) throws Exception {
    java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
    ByteBuffer b = ByteBuffer.allocateDirect(1 << 20);
    byte[] chunk = new byte[1 << 20];
    try (FileChannel c = FileChannel.open(p, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
      long pos = 0;
      while (true) {
        b.clear();
        int n = c.read(b, pos);
        if (n < 0) {
          break;
        }
        b.flip();
        if (!isZero(b)) {
          b.get(chunk, 0, n);
          md.update(Long.toString(pos).getBytes(StandardCharsets.US_ASCII));
          md.update(chunk, 0, n);
        }
        pos += n;
      }
    }
    return java.util.HexFormat.of().formatHex(md.digest()).substring(0, 16);
  }

  private static boolean isZero(ByteBuffer b) {
    int i = b.position();
    int end = b.limit();
    for (; i + 8 <= end; i += 8) {
      if (b.getLong(i) != 0) {
        return false;
      }
    }
    for (; i < end; i++) {
      if (b.get(i) != 0) {
        return false;
      }
    }
    return true;
  }

  /** Bytes the file takes on disk ({@code stat -c %b} blocks of 512): small for a sparse file. */
  public static long allocated(Path p) throws Exception {
    return Long.parseLong(sh("stat -c %b -- '" + p + "'").strip()) * 512;
  }

  /** {@code n} bytes of a seeded pseudo-random stream. */
  public static byte[] random(long seed, int n) {
    byte[] b = new byte[n];
    new java.util.Random(seed).nextBytes(b);
    return b;
  }

  /** Runs a bash script; returns its stdout; fails on a non-zero exit. */
  public static String sh(String script) throws Exception {
    Process p = new ProcessBuilder("bash", "-c", "set -eo pipefail; " + script).start();
    String out;
    String err;
    try (InputStream s = p.getInputStream(); InputStream e = p.getErrorStream()) {
      out = new String(s.readAllBytes(), StandardCharsets.UTF_8);
      err = new String(e.readAllBytes(), StandardCharsets.UTF_8);
    }
    assertTrue(p.waitFor(300, TimeUnit.SECONDS), script);
    assertEquals(0, p.exitValue(), () -> script + ": " + out + err);
    return out;
  }

  /** Asserts two descriptions equal, entry by entry, naming the first difference. */
  public static void assertSameTree(Map<String, String> expected, Map<String, String> actual) {
    for (Map.Entry<String, String> e : expected.entrySet()) {
      assertEquals(e.getValue(), actual.get(e.getKey()), "entry " + e.getKey());
    }
    assertEquals(expected.keySet(), actual.keySet());
  }
}
