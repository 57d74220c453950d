package dev.shade.offhost.files;

import dev.shade.nativeio.FileHandle;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Restores the members of a files archive that match glob patterns into a directory, with their
 * owners, modes, times, user xattrs and ACLs, and refuses every member that would put anything
 * outside that directory.
 *
 * <p>Not thread-safe: one restore per instance.
 */
public final class FilesExtractor {
  /*
   * What is refused, before anything of the member is written (the restore stops there with an
   * error naming the member; what was restored before it stays, and nothing outside DIR is
   * touched at any point):
   *  - names with a NUL, absolute names, names with a ".." component, names outside files/;
   *  - a member whose parent in DIR is anything but a real directory: a symbolic link (one the
   *    archive made, "dir -> /etc" followed by "dir/passwd", or one that was in DIR before),
   *    a file; every parent is checked with lstat, from DIR down, and created where missing;
   *  - hard links whose target is outside the tree, is not a regular file this restore wrote
   *    (a symbolic link, say), or was not restored (its pattern did not match);
   *  - sizes the tape file cannot hold (TarReader checks every header against the bytes left).
   * The member itself is created with O_CREAT|O_EXCL|O_NOFOLLOW (an existing non-directory is
   * unlinked first, as GNU tar does), so a write never goes through a symbolic link.
   *
   * Attributes are put back in the order that keeps them: owner (lchown), then mode (chown
   * clears set-id bits), then ACL (setfacl, which also sets the group bits from the mask),
   * xattrs, and last the times; a directory's are set after its contents are restored, deepest
   * first, so creating its children does not change its mtime again. Owners are restored by
   * number: the names in the archive are the backup server's names for the production host's
   * ids, so the ids are the faithful record.
   */

  /** What a restore did. */
  /**
   * What a restore did: the archive's manifest (its last member) and that member's SHA-256 (null
   * when the archive ends without one), the members in the archive, the regular files and bytes
   * written, what was restored (paths in the volume) and notes for the user.
   */
  public record Result(FilesManifest manifest, String manifestSha256, long members, long files, long bytes,
      List<String> restored, List<String> notes) {}

  private static final int BUFFER = 1 << 20;

  /** The directory restored into, as a real path. */
  private final Path dir;
  /** The patterns. */
  private final List<PathMatcher> patterns;
  /** Relative paths of regular files this restore wrote (hard-link targets). */
  private final Set<String> written = new HashSet<>();
  /** Directories whose attributes are set at the end. */
  private final Deque<Runnable> directories = new ArrayDeque<>();
  /** What was restored, by relative path. */
  private final List<String> restored = new ArrayList<>();
  /** Things a user should know (xattrs of other namespaces left out). */
  private final List<String> notes = new ArrayList<>();
  /** Told each restored path. */
  private final Consumer<String> progress;
  /** Whether setfacl is here. */
  private final boolean acls = PosixAcls.available();
  private final ByteBuffer buf = ByteBuffer.allocate(BUFFER);
  private long files;
  private long bytes;
  private IOException deferred;

  private FilesExtractor(Path dir, List<PathMatcher> patterns, Consumer<String> progress) {
    this.dir = dir;
    this.patterns = patterns;
    this.progress = progress;
  }

  /**
   * Restores the members of the files archive in {@code in} (of at most {@code limit} bytes)
   * that match one of {@code globs} into {@code dir} (created if missing). A glob matches a
   * member's path in the volume ({@code etc/hosts}) or in the archive ({@code files/etc/hosts});
   * a directory that matches brings everything under it. {@code source} names the archive in
   * messages.
   */
  public static Result extract(InputStream in, String source, long limit, List<String> globs, Path dir,
      Consumer<String> progress) throws IOException {
    if (globs.isEmpty()) {
      throw new IllegalArgumentException("no patterns");
    }
    List<PathMatcher> ms = new ArrayList<>();
    for (String g : globs) {
      String p = g.startsWith("/") ? g.substring(1) : g;
      while (p.endsWith("/") && p.length() > 1) {
        p = p.substring(0, p.length() - 1);
      }
      ms.add(FileSystems.getDefault().getPathMatcher("glob:" + p));
    }
    Files.createDirectories(dir);
    FilesExtractor x = new FilesExtractor(dir.toRealPath(), ms, progress);
    return x.run(new TarReader(in, source, limit));
  }

  private Result run(TarReader tar) throws IOException {
    TarReader.Entry e = tar.next();
    if (e == null || !e.name().equals(FilesManifest.HEADER_MEMBER)) {
      throw new IOException("not a shade files archive: its first member is " + (e == null ? "missing" : e.name())
          + ", not " + FilesManifest.HEADER_MEMBER);
    }
    FilesManifest manifest = FilesManifest.parse(tar.data().readAllBytes());
    long members = 0;
    String manifestSha = null;
    while ((e = tar.next()) != null) {
      if (e.name().equals(FilesManifest.MANIFEST_MEMBER) && e.isRegular()) {
        byte[] body = readBounded(tar.data(), e, 16 << 20);
        manifest = FilesManifest.parse(body);
        manifestSha = sha256(body);
        continue;
      }
      members++;
      String rel = checkName(e.name(), e);
      if (rel.isEmpty() || !selected(rel)) {
        continue;
      }
      restore(tar, e, rel);
    }
    while (!directories.isEmpty()) {
      directories.pop().run();
    }
    if (deferred != null) {
      throw deferred;
    }
    return new Result(manifest, manifestSha, members, files, bytes, List.copyOf(restored), List.copyOf(notes));
  }

  /** The member's path relative to the tree ("" for the tree's root); refuses names that would escape it. */
  static String checkName(String name, TarReader.Entry e) throws IOException {
    if (name.indexOf('\0') >= 0) {
      throw refused(name, "its name holds a NUL byte");
    }
    if (name.startsWith("/")) {
      throw refused(name, "it has an absolute name");
    }
    List<String> parts = new ArrayList<>();
    for (String c : name.split("/")) {
      if (c.equals("..")) {
        throw refused(name, "its name has a '..' component");
      }
      if (!c.isEmpty() && !c.equals(".")) {
        parts.add(c);
      }
    }
    if (parts.isEmpty() || !parts.get(0).equals(FilesManifest.TREE.substring(0, FilesManifest.TREE.length() - 1))) {
      throw refused(name, "it is outside the archive's tree " + FilesManifest.TREE);
    }
    return String.join("/", parts.subList(1, parts.size()));
  }

  private boolean selected(String rel) {
    Path p = Path.of(rel);
    for (Path q = p; q != null; q = q.getParent()) {
      Path full = Path.of(FilesManifest.TREE).resolve(q);
      for (PathMatcher m : patterns) {
        if (m.matches(q) || m.matches(full)) {
          return true;
        }
      }
    }
    return false;
  }

  private void restore(TarReader tar, TarReader.Entry e, String rel) throws IOException {
    Path target = parentsChecked(rel, e.name(), true);
    BasicFileAttributes existing = lstat(target);
    if (existing != null && !(existing.isDirectory() && e.isDirectory())) {
      if (existing.isDirectory()) {
        try (var s = Files.list(target)) {
          if (s.findAny().isPresent()) {
            throw refused(e.name(), "a non-empty directory " + target + " is in its place");
          }
        }
      }
      Files.delete(target); // unlinks a symbolic link itself, never what it points to
    }
    switch (e.type()) {
      case '5' -> {
        if (existing == null || !existing.isDirectory()) {
          Files.createDirectory(target);
        }
        Path t = target;
        directories.push(() -> {
          try {
            attributes(t, e, false);
          } catch (IOException ex) {
            if (deferred == null) {
              deferred = ex;
            }
          }
        });
      }
      case '0', 0, '7' -> {
        writeFile(tar, e, target);
        attributes(target, e, false);
        written.add(rel);
        files++;
      }
      case '2' -> {
        if (e.linkName().indexOf('\0') >= 0) {
          throw refused(e.name(), "its link target holds a NUL byte");
        }
        Files.createSymbolicLink(target, Path.of(e.linkName()));
        attributes(target, e, true);
      }
      case '1' -> {
        String to = checkName(e.linkName(), e);
        if (!written.contains(to)) {
          throw refused(e.name(), "it is a hard link to " + e.linkName() + ", which this restore did not write"
              + " (restore it too: add a pattern that matches it)");
        }
        Path source = parentsChecked(to, e.name(), false);
        BasicFileAttributes s = lstat(source);
        if (s == null || !s.isRegularFile()) {
          throw refused(e.name(), "it is a hard link to " + e.linkName() + ", which is not a regular file in " + dir);
        }
        Files.createLink(target, source);
        files++;
      }
      case '3', '4', '6' -> {
        // the mode is given at creation: Java's chmod opens the file, and an open of a fifo waits for a writer
        String mode = Integer.toOctalString(e.mode() & 07777);
        List<String> cmd = e.type() == '6' ? List.of("mkfifo", "-m", mode, "--", target.toString())
            : List.of("mknod", "-m", mode, "--", target.toString(), e.type() == '3' ? "c" : "b",
                Integer.toString(e.devMajor()), Integer.toString(e.devMinor()));
        run(cmd, "create " + e.name() + " as " + target);
        attributes(target, e, true);
      }
      default -> {
        notes.add("skipped " + e.name() + ": tar member type '" + (char) e.type() + "' is not restored");
        return;
      }
    }
    restored.add(rel);
    progress.accept(rel);
  }

  /**
   * {@code dir/rel}, after checking that each of its parents in {@code dir} is a real directory
   * (creating missing ones when {@code create}); refuses a symbolic link or a file among them.
   */
  private Path parentsChecked(String rel, String member, boolean create) throws IOException {
    String[] parts = rel.split("/");
    Path p = dir;
    for (int i = 0; i < parts.length - 1; i++) {
      p = p.resolve(parts[i]);
      BasicFileAttributes a = lstat(p);
      if (a == null) {
        if (!create) {
          throw refused(member, "its path " + rel + " does not exist in " + dir);
        }
        Files.createDirectory(p);
      } else if (a.isSymbolicLink()) {
        throw refused(member, "its parent " + p + " is a symbolic link (to " + Files.readSymbolicLink(p)
            + "); a restore never writes through one");
      } else if (!a.isDirectory()) {
        throw refused(member, "its parent " + p + " is not a directory");
      }
    }
    return p.resolve(parts[parts.length - 1]);
  }

  private void writeFile(TarReader tar, TarReader.Entry e, Path target) throws IOException {
    InputStream data = tar.data();
    boolean ok = false;
    try (FileHandle h = FileHandle.open(target, FileHandle.O_WRONLY | FileHandle.O_CREAT | FileHandle.O_EXCL
        | 0400000 /* O_NOFOLLOW */, 0600)) {
      List<long[]> segments = e.sparse() != null ? e.sparse() : List.of(new long[] {0, e.size()});
      for (long[] s : segments) {
        long pos = s[0];
        long end = s[0] + s[1];
        while (pos < end) {
          int want = (int) Math.min(BUFFER, end - pos);
          int n = data.readNBytes(buf.array(), 0, want);
          if (n < want) {
            throw new IOException("member " + e.name() + " ends early at byte " + (pos + n));
          }
          h.writeFully(pos, buf.clear().limit(n));
          pos += n;
          bytes += n;
        }
      }
      if (e.sparse() != null) {
        h.truncate(e.realSize()); // the size, with the holes after the last segment
      }
      ok = true;
    } finally {
      if (!ok) {
        Files.deleteIfExists(target);
      }
    }
  }

  /**
   * Owner, mode, ACL, xattrs, times: in that order (see the class comment). For a symbolic link,
   * a fifo or a device ({@code noOpen}), only what can be set without opening it: owner and times.
   */
  private void attributes(Path p, TarReader.Entry e, boolean noOpen) throws IOException {
    boolean symlink = noOpen;
    Files.setAttribute(p, "unix:uid", (int) e.uid(), LinkOption.NOFOLLOW_LINKS);
    Files.setAttribute(p, "unix:gid", (int) e.gid(), LinkOption.NOFOLLOW_LINKS);
    if (!symlink) {
      Files.setAttribute(p, "unix:mode", e.mode() & 07777, LinkOption.NOFOLLOW_LINKS);
      if ((e.aclAccess() != null || e.aclDefault() != null) && (e.isRegular() || e.isDirectory())) {
        if (acls) {
          PosixAcls.apply(p, e.aclAccess(), e.aclDefault());
        } else {
          notes.add("the ACL of " + e.name() + " is not restored: setfacl is not installed (the acl package)");
        }
      }
      if (!e.xattrs().isEmpty() && (e.isRegular() || e.isDirectory())) {
        UserDefinedFileAttributeView v = Files.getFileAttributeView(p, UserDefinedFileAttributeView.class,
            LinkOption.NOFOLLOW_LINKS);
        for (Map.Entry<String, byte[]> x : e.xattrs().entrySet()) {
          if (x.getKey().startsWith("user.")) {
            v.write(x.getKey().substring(5), ByteBuffer.wrap(x.getValue()));
          } else if (!x.getKey().startsWith("system.posix_acl_")) {
            notes.add("xattr " + x.getKey() + " of " + e.name() + " is not restored (only user.* xattrs are)");
          }
        }
      }
    }
    FileTime m = FileTime.from(e.mtime());
    FileTime a = e.atime() == null ? m : FileTime.from(e.atime());
    if (symlink) {
      exactTimes(p, m.toInstant(), a.toInstant()); // Java's setTimes opens the file, even with NOFOLLOW_LINKS
    } else {
      Files.getFileAttributeView(p, BasicFileAttributeView.class, LinkOption.NOFOLLOW_LINKS).setTimes(m, a, null);
    }
  }

  /** The times of a link, fifo or device, set without opening it: touch -h (utimensat with AT_SYMLINK_NOFOLLOW). */
  private void exactTimes(Path p, Instant m, Instant a) throws IOException {
    BasicFileAttributes got = Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    if (got.lastModifiedTime().toInstant().equals(m) && got.lastAccessTime().toInstant().equals(a)) {
      return;
    }
    run(List.of("touch", "-h", "-a", "-d", "@" + a.getEpochSecond() + "." + String.format("%09d", a.getNano()), "--",
        p.toString()), "set the access time of " + p);
    run(List.of("touch", "-h", "-m", "-d", "@" + m.getEpochSecond() + "." + String.format("%09d", m.getNano()), "--",
        p.toString()), "set the modification time of " + p);
  }

  private static BasicFileAttributes lstat(Path p) throws IOException {
    try {
      return Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    } catch (java.nio.file.NoSuchFileException e) {
      return null;
    }
  }

  private static byte[] readBounded(InputStream in, TarReader.Entry e, int max) throws IOException {
    if (e.size() > max) {
      throw new IOException("member " + e.name() + " has " + e.size() + " bytes, more than the " + max + " taken");
    }
    return in.readAllBytes();
  }

  private static void run(List<String> cmd, String what) throws IOException {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    try (InputStream o = p.getInputStream()) {
      p.getOutputStream().close();
      String out = new String(o.readAllBytes(), StandardCharsets.UTF_8).strip();
      if (!p.waitFor(60, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException("cannot " + what + ": " + cmd.get(0) + " did not finish in 60 s");
      }
      if (p.exitValue() != 0) {
        throw new IOException("cannot " + what + ": " + String.join(" ", cmd) + " exited with " + p.exitValue() + ": "
            + out);
      }
    } catch (InterruptedException ex) {
      p.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted: " + what, ex);
    }
  }

  private static String sha256(byte[] b) {
    try {
      return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(b));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static IOException refused(String member, String why) {
    return new UnsafeMemberException(member, "refusing archive member '" + member.replace("\0", "\\0") + "': " + why);
  }

  /** A member that would be written outside the restore's directory, or through a link. */
  public static final class UnsafeMemberException extends IOException {
    /** The member's name. */
    private final String member;

    UnsafeMemberException(String member, String message) {
      super(message);
      this.member = member;
    }

    /** The member's name as the archive gives it. */
    public String member() {
      return member;
    }
  }
}
