package dev.shade.offhost.files;

import dev.shade.nativeio.FileHandle;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.nio.file.attribute.UserPrincipal;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;

/**
 * Writes one files archive: {@code shade-files.json}, the tree under a directory as
 * {@code files/...} members that GNU tar extracts with every attribute, then
 * {@code manifest.json}. docs/tape-format.md describes the layout.
 *
 * <p>Not thread-safe: one archive per instance, written by one thread.
 */
public final class FilesArchiveWriter {
  /*
   * Every tree member is two tar entries, both written through commons-compress's
   * TarArchiveOutputStream: a POSIX extended header ('x') whose records this class formats,
   * then the ustar entry. The records carry everything ustar cannot: the full path and link
   * target, mtime/atime/ctime with nanoseconds, sizes of 8 GiB and more, uname/gname, user
   * xattrs (SCHILY.xattr.user.*), ACLs (SCHILY.acl.access/default) and the sparse map's
   * GNU.sparse.* keys. commons-compress turns GNU.sparse.* keys given to an entry into entry
   * fields and does not write them back, hence the hand-made header; the ustar entry after it
   * is kept inside ustar's limits (an ASCII name of at most 99 bytes, base-256 numbers for
   * what does not fit in octal) so the stream adds no second extended header of its own.
   *
   * A sparse file (fewer data bytes than its size, found with lseek SEEK_DATA/SEEK_HOLE) is
   * stored in GNU tar's PAX sparse format 1.0: the ustar name GNUSparseFile.0/NAME (what a
   * tar without sparse support extracts), GNU.sparse.major=1, minor=0, name=the real name,
   * realsize=the file's size, and a data block starting with the map in decimal text (the
   * count, then offset and length of each data segment, one number a line, padded with NULs
   * to 512 bytes), followed by the segments' bytes. A file that ends in a hole gets a last,
   * empty segment at its size, as GNU tar writes it.
   *
   * Hard links: a non-directory with more than one link is stored whole the first time its
   * (device, inode) is met in the walk; later names are hard-link entries ('1') naming the
   * first. The walk is depth first, names in each directory sorted, never following a
   * symbolic link.
   */

  /** Told how many file bytes were archived so far of about how many. */
  public interface Progress {
    void update(long done, long total);
  }

  /** What was written. */
  public record Result(FilesManifest manifest, String manifestSha256, long archiveBytes) {}

  /** Bytes read from a file at a time. */
  private static final int BUFFER = 1 << 20;
  /** The largest number ustar's 12-byte octal size field holds. */
  private static final long USTAR_MAX_SIZE = 077777777777L;
  /** The largest id ustar's 8-byte octal uid/gid fields hold. */
  private static final long USTAR_MAX_ID = 07777777L;

  /** The stream being written. */
  private final TarArchiveOutputStream tar;
  /** The directory whose tree is archived. */
  private final Path root;
  /** ACLs of the tree, by path relative to the root; empty when ACLs are not read. */
  private final Map<String, PosixAcls.Acl> acls;
  /** First archive name of each (device, inode) with more than one link. */
  private final Map<String, String> firstLinks = new HashMap<>();
  /** Told the bytes done. */
  private final Progress progress;
  /** About how many bytes the tree's files hold (the filesystem's used space). */
  private final long expected;
  /** Read buffer. */
  private final ByteBuffer buf = ByteBuffer.allocate(BUFFER);
  /** mtime of the archive's own members (the snapshot's creation). */
  private final long metaTime;
  private long entries;
  private long directories;
  private long regular;
  private long hardLinks;
  private long symlinks;
  private long special;
  private long sparse;
  private long skipped;
  private long bytes;
  private long dataBytes;

  private FilesArchiveWriter(TarArchiveOutputStream tar, Path root, Map<String, PosixAcls.Acl> acls, Progress progress,
      long expected, long metaTime) {
    this.tar = tar;
    this.root = root;
    this.acls = acls;
    this.progress = progress;
    this.expected = expected;
    this.metaTime = metaTime;
  }

  /** True when getfacl and setfacl (the acl package) are installed, so that ACLs can be archived and restored. */
  public static boolean aclToolsInstalled() {
    return PosixAcls.available();
  }

  /**
   * Writes the archive of the tree under {@code root} to {@code out} (which the caller closes),
   * with {@code header} as its first member and the completed manifest as its last. ACLs are
   * read (getfacl) when {@code withAcls}.
   */
  public static Result write(OutputStream out, int tarBlockSize, Path root, FilesManifest header, boolean withAcls,
      Progress progress) throws IOException {
    Path r = root.toAbsolutePath().normalize();
    Map<String, PosixAcls.Acl> acls = withAcls ? PosixAcls.read(r) : Map.of();
    long expected;
    try {
      var store = Files.getFileStore(r);
      expected = Math.max(0, store.getTotalSpace() - store.getUnallocatedSpace());
    } catch (IOException e) {
      expected = -1;
    }
    TarArchiveOutputStream tar = new TarArchiveOutputStream(out, tarBlockSize, "UTF-8");
    tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
    tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_STAR);
    FilesArchiveWriter w = new FilesArchiveWriter(tar, r, acls, progress, expected,
        header.snapshotCreated().toEpochMilli());
    w.member(FilesManifest.HEADER_MEMBER, header.bytes(), true);
    w.walk(r, "");
    FilesManifest manifest = header.complete(Instant.ofEpochMilli(System.currentTimeMillis()),
        new FilesManifest.Counts(w.entries, w.directories, w.regular, w.hardLinks, w.symlinks, w.special, w.sparse,
            w.skipped, w.bytes, w.dataBytes));
    byte[] body = manifest.bytes();
    w.member(FilesManifest.MANIFEST_MEMBER, body, false);
    tar.finish();
    return new Result(manifest, sha256(body), tar.getBytesWritten());
  }

  private void member(String name, byte[] body, boolean pax) throws IOException {
    TarArchiveEntry e = new TarArchiveEntry(name);
    e.setSize(body.length);
    e.setMode(0644);
    e.setModTime(metaTime);
    e.setUserName("shade");
    e.setGroupName("shade");
    if (pax) {
      e.addPaxHeader("comment", "shade files archive " + FilesManifest.FORMAT);
    }
    tar.putArchiveEntry(e);
    tar.write(body);
    tar.closeArchiveEntry();
  }

  /** Archives {@code dir} (relative name {@code rel}, "" for the root) and everything under it. */
  private void walk(Path dir, String rel) throws IOException {
    add(dir, rel);
    List<String> names = new ArrayList<>();
    try (DirectoryStream<Path> s = Files.newDirectoryStream(dir)) {
      for (Path p : s) {
        names.add(p.getFileName().toString());
      }
    }
    names.sort(null);
    for (String n : names) {
      Path p = dir.resolve(n);
      String r = rel.isEmpty() ? n : rel + "/" + n;
      if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
        walk(p, r);
      } else {
        add(p, r);
      }
    }
  }

  /** Archives one file system object (a directory without its contents). */
  private void add(Path file, String rel) throws IOException {
    Map<String, Object> a = Files.readAttributes(file, "unix:*", LinkOption.NOFOLLOW_LINKS);
    int mode = (Integer) a.get("mode");
    int type = mode & 0170000;
    if (type == 0140000) {
      skipped++; // a socket: tar has no type for it (GNU tar: "socket ignored")
      return;
    }
    boolean dir = type == 0040000;
    String name = FilesManifest.TREE + rel + (dir && !rel.isEmpty() ? "/" : "");
    PaxRecords pax = new PaxRecords();
    long uid = ((Number) a.get("uid")).longValue();
    long gid = ((Number) a.get("gid")).longValue();
    FileTime mtime = (FileTime) a.get("lastModifiedTime");
    pax.put("mtime", PaxRecords.time(mtime));
    pax.put("atime", PaxRecords.time((FileTime) a.get("lastAccessTime")));
    pax.put("ctime", PaxRecords.time((FileTime) a.get("ctime")));
    if (uid > USTAR_MAX_ID) {
      pax.put("uid", Long.toString(uid));
    }
    if (gid > USTAR_MAX_ID) {
      pax.put("gid", Long.toString(gid));
    }
    String uname = principal(((UserPrincipal) a.get("owner")).getName(), uid);
    String gname = principal(((GroupPrincipal) a.get("group")).getName(), gid);
    if (uname != null) {
      pax.put("uname", uname);
    }
    if (gname != null) {
      pax.put("gname", gname);
    }

    TarArchiveEntry e;
    long stored = 0;
    List<long[]> segments = null;
    long size = 0;
    boolean sparseEntry = false;
    String devIno = a.get("dev") + ":" + a.get("ino");
    String first = !dir && ((Number) a.get("nlink")).intValue() > 1 ? firstLinks.get(devIno) : null;
    if (first != null) {
      e = new TarArchiveEntry(ustarName(name), TarConstants.LF_LINK);
      e.setLinkName(ustarName(first));
      pax.put("linkpath", first);
      hardLinks++;
    } else {
      if (!dir && ((Number) a.get("nlink")).intValue() > 1) {
        firstLinks.put(devIno, name);
      }
      switch (type) {
        case 0040000 -> {
          e = new TarArchiveEntry(ustarName(name), TarConstants.LF_DIR);
          directories++;
        }
        case 0120000 -> {
          String target = Files.readSymbolicLink(file).toString();
          e = new TarArchiveEntry(ustarName(name), TarConstants.LF_SYMLINK);
          e.setLinkName(ustarName(target));
          pax.put("linkpath", target);
          symlinks++;
        }
        case 0020000, 0060000, 0010000 -> {
          byte flag = type == 0020000 ? TarConstants.LF_CHR : type == 0060000 ? TarConstants.LF_BLK : TarConstants.LF_FIFO;
          e = new TarArchiveEntry(ustarName(name), flag);
          if (type != 0010000) {
            long rdev = ((Number) a.get("rdev")).longValue();
            e.setDevMajor((int) (((rdev >>> 8) & 0xfff) | ((rdev >>> 32) & ~0xfffL)));
            e.setDevMinor((int) ((rdev & 0xff) | ((rdev >>> 12) & ~0xffL)));
          }
          special++;
        }
        case 0100000 -> {
          size = ((Number) a.get("size")).longValue();
          segments = dataSegments(file, size);
          long data = 0;
          for (long[] s : segments) {
            data += s[1];
          }
          regular++;
          bytes += size;
          if (data < size) {
            if (segments.isEmpty() || segments.get(segments.size() - 1)[0] + segments.get(segments.size() - 1)[1] < size) {
              segments.add(new long[] {size, 0});
            }
            byte[] map = sparseMap(segments);
            stored = map.length + data;
            String fake = parentOf(name) + "GNUSparseFile.0/" + baseOf(name);
            e = new TarArchiveEntry(ustarName(fake), TarConstants.LF_NORMAL);
            if (!ustarName(fake).equals(fake)) {
              pax.put("path", fake);
            }
            pax.put("GNU.sparse.major", "1").put("GNU.sparse.minor", "0").put("GNU.sparse.name", name)
                .put("GNU.sparse.realsize", Long.toString(size));
            sparse++;
            sparseEntry = true;
          } else {
            segments = List.of(new long[] {0, size});
            stored = size;
            e = new TarArchiveEntry(ustarName(name), TarConstants.LF_NORMAL);
          }
          if (stored > USTAR_MAX_SIZE) {
            pax.put("size", Long.toString(stored));
          }
        }
        default -> throw new IOException("unknown file type " + Integer.toOctalString(type) + " of " + file);
      }
    }
    if (!sparseEntry) {
      pax.put("path", name);
    }
    // the order GNU tar writes: ACLs and xattrs after the times and names
    if (!acls.isEmpty() && (type == 0100000 || dir) && first == null) {
      PosixAcls.Acl acl = acls.get(rel);
      if (acl != null && acl.access() != null) {
        pax.put("SCHILY.acl.access", acl.access());
      }
      if (acl != null && acl.defaults() != null) {
        pax.put("SCHILY.acl.default", acl.defaults());
      }
    }
    if ((type == 0100000 || dir) && first == null) {
      xattrs(file, pax);
    }
    e.setMode(mode & 07777);
    e.setUserId(uid > USTAR_MAX_ID ? 0 : uid);
    e.setGroupId(gid > USTAR_MAX_ID ? 0 : gid);
    if (uname != null && isShortAscii(uname)) {
      e.setUserName(uname);
    }
    if (gname != null && isShortAscii(gname)) {
      e.setGroupName(gname);
    }
    e.setModTime(mtime.toMillis() / 1000 * 1000);
    e.setSize(stored);
    byte[] body = pax.bytes();
    TarArchiveEntry x = new TarArchiveEntry(ustarName("PaxHeaders/" + baseOf(name)),
        TarConstants.LF_PAX_EXTENDED_HEADER_LC);
    x.setSize(body.length);
    x.setModTime(e.getModTime());
    tar.putArchiveEntry(x);
    tar.write(body);
    tar.closeArchiveEntry();
    tar.putArchiveEntry(e);
    if (stored > 0) {
      if (sparseEntry) {
        tar.write(sparseMap(segments));
      }
      copy(file, segments, size);
    }
    tar.closeArchiveEntry();
    entries++;
  }

  /** The data segments of a regular file ({offset, length}), by SEEK_DATA and SEEK_HOLE. */
  private static List<long[]> dataSegments(Path file, long size) throws IOException {
    List<long[]> out = new ArrayList<>();
    if (size == 0) {
      return out;
    }
    try (FileHandle h = FileHandle.open(file, FileHandle.O_RDONLY | 0400000 /* O_NOFOLLOW */, 0)) {
      long at = 0;
      while (at < size) {
        long data = h.nextData(at);
        if (data < 0 || data >= size) {
          break;
        }
        long hole = h.nextHole(data);
        if (hole < 0 || hole > size) {
          hole = size;
        }
        out.add(new long[] {data, hole - data});
        at = hole;
      }
    }
    return out;
  }

  /** The sparse map of format 1.0, padded with NULs to a multiple of 512 bytes. */
  private static byte[] sparseMap(List<long[]> segments) {
    StringBuilder s = new StringBuilder().append(segments.size()).append('\n');
    for (long[] g : segments) {
      s.append(g[0]).append('\n').append(g[1]).append('\n');
    }
    byte[] text = s.toString().getBytes(StandardCharsets.US_ASCII);
    byte[] padded = new byte[(text.length + 511) / 512 * 512];
    System.arraycopy(text, 0, padded, 0, text.length);
    return padded;
  }

  /** Writes the segments' bytes of {@code file} to the tar. */
  private void copy(Path file, List<long[]> segments, long size) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
      for (long[] g : segments) {
        long pos = g[0];
        long end = g[0] + g[1];
        while (pos < end) {
          buf.clear().limit((int) Math.min(BUFFER, end - pos));
          int n = ch.read(buf, pos);
          if (n < 0) {
            throw new IOException("file " + file + " ends at " + pos + " while its size was " + size
                + " (it changed while being archived)");
          }
          tar.write(buf.array(), 0, n);
          pos += n;
          dataBytes += n;
          progress.update(dataBytes, Math.max(expected, dataBytes));
        }
      }
    }
  }

  /** Adds the user xattrs of {@code file} as SCHILY.xattr.user.NAME. */
  private static void xattrs(Path file, PaxRecords pax) throws IOException {
    UserDefinedFileAttributeView v = Files.getFileAttributeView(file, UserDefinedFileAttributeView.class,
        LinkOption.NOFOLLOW_LINKS);
    if (v == null) {
      return;
    }
    List<String> names;
    try {
      names = new ArrayList<>(v.list());
    } catch (UnsupportedOperationException | java.nio.file.FileSystemException e) {
      return; // the filesystem keeps no user xattrs
    }
    names.sort(null);
    for (String n : names) {
      ByteBuffer b = ByteBuffer.allocate(v.size(n));
      v.read(n, b);
      byte[] value = new byte[b.position()];
      b.flip().get(value);
      pax.put("SCHILY.xattr.user." + n, value);
    }
  }

  /** A user or group name worth recording: null when the id has none (Java gives the number). */
  private static String principal(String name, long id) {
    return name == null || name.equals(Long.toString(id)) ? null : name;
  }

  private static boolean isShortAscii(String s) {
    return s.length() < 32 && StandardCharsets.US_ASCII.newEncoder().canEncode(s);
  }

  /** A name that fits ustar's name field alone: ASCII, at most 99 bytes (the PAX path has the real one). */
  static String ustarName(String name) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < name.length(); i++) {
      char c = name.charAt(i);
      b.append(c >= 0x20 && c < 0x7f ? c : '_');
    }
    if (b.length() > 99) {
      boolean slash = name.endsWith("/");
      b.setLength(slash ? 98 : 99);
      if (slash) {
        b.append('/');
      }
    }
    return b.toString();
  }

  private static String parentOf(String name) {
    String n = name.endsWith("/") ? name.substring(0, name.length() - 1) : name;
    int i = n.lastIndexOf('/');
    return i < 0 ? "" : n.substring(0, i + 1);
  }

  private static String baseOf(String name) {
    String n = name.endsWith("/") ? name.substring(0, name.length() - 1) : name;
    return n.substring(n.lastIndexOf('/') + 1);
  }

  private static String sha256(byte[] b) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
