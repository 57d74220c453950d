package dev.shade.offhost.files;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.nativeio.ErrnoException;
import dev.shade.nativeio.FileHandle;
import dev.shade.nativeio.Xattrs;
import dev.shade.offhost.backup.ImageArchiveWriter;
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
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.security.MessageDigest;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Restores the members of a files archive (one piece or several) that match glob patterns into
 * a directory, with their owners, modes, times, xattrs and ACLs, checking every restored file's
 * SHA-256 against the manifest and putting back the snapshot's writer files where their
 * directory is restored whole; refuses every member that would put anything outside that
 * directory. {@link #verify} reads a whole archive the same way and writes nothing.
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
   * ids, so the ids are the faithful record. xattrs of the trusted and security namespaces are
   * restored when running as root (the kernel refuses them to others: a note says they were
   * left out); system.* ones are the ACLs, restored as ACLs.
   *
   * Pieces and parts: each piece is read as a tar of its own, its first member the header
   * (whose piece number must be the expected one), its last continued.json (every piece but the
   * last) or manifest.json. A file stored in parts (FilesArchiveWriter) is created by its member
   * files/PATH at its full size; each parts/PATH/OFFSET member that follows writes its bytes at
   * that offset into the same file, and the file's attributes are set once its last part is in
   * (the next member that is not one of its parts), so its mtime is the archived one.
   *
   * Checksums: every regular file's data (its data segments in order, holes left out) is
   * SHA-256'd as it is written; the manifest, the last member, lists the archived values, so
   * they are compared at the end: a file that differs fails the restore, naming the file, its
   * member and the cartridge and tape file it starts on (what was restored stays, as with any
   * failure). An archive without checksums (written before they were kept) restores with a note.
   *
   * Writer metadata (the header's writerMetadata, docs/writers.md): each file it names, at a
   * path relative to the root of the snapshot's filesystem, is written into DIR at that path
   * when the restore brought back its directory whole: a pattern matched that directory or one
   * of its ancestors (the whole tree for a file at the root: a pattern *, ** or files), as
   * restoring a PostgreSQL data directory needs its backup_label. The file replaces one the
   * archive had there, gets the metadata's mode and its directory's owner, and is written before
   * the directories' times are set. Otherwise a note says which file was left out and why.
   */

  /**
   * What a restore did: the archive's manifest (its last member) and that member's SHA-256 (null
   * when the archive ends without one), the members in the archive, the regular files and bytes
   * written (read, by a verify), what was restored (paths in the volume), notes for the user, the regular files
   * whose SHA-256 was checked against the manifest, and the writer metadata's files put back
   * (paths in the volume).
   */
  public record Result(FilesManifest manifest, String manifestSha256, long members, long files, long bytes,
      List<String> restored, List<String> notes, long checked, List<String> writerFiles) {}

  /**
   * The pieces of one files archive, read in order: each one's stream (opened once, at its
   * start), its size in bytes (a bound for the sizes its headers may claim) and where it is
   * ({@code cartridge SHD001, tape file 3}) for messages.
   */
  public interface Archive {
    /** The number of pieces. */
    int pieces();

    /** The stream of piece {@code piece}, at its start. */
    InputStream open(int piece) throws IOException;

    /** The bytes of piece {@code piece}, or Long.MAX_VALUE when not known. */
    long bytes(int piece);

    /** Where piece {@code piece} is, for messages. */
    String where(int piece);

    /** One piece: {@code in}, of at most {@code limit} bytes, named {@code source}. */
    static Archive single(InputStream in, String source, long limit) {
      return new Archive() {
        @Override
        public int pieces() {
          return 1;
        }

        @Override
        public InputStream open(int piece) {
          return in;
        }

        @Override
        public long bytes(int piece) {
          return limit;
        }

        @Override
        public String where(int piece) {
          return source;
        }
      };
    }
  }

  /**
   * A restore or verify that failed at a member: the member (null when the archive's structure,
   * not one member, is at fault) and the piece (0 first) it is in.
   */
  public static final class MemberException extends IOException {
    /** The member, or null. */
    private final String member;
    /** The piece, from 0. */
    private final int piece;

    MemberException(String member, int piece, String message, Throwable cause) {
      super(message, cause);
      this.member = member;
      this.piece = piece;
    }

    /** The member's name as the archive gives it, or null. */
    public String member() {
      return member;
    }

    /** The piece it is in, from 0. */
    public int piece() {
      return piece;
    }
  }

  private static final ObjectMapper JSON = new ObjectMapper();

  private static final int BUFFER = 1 << 20;

  /** The directory restored into, as a real path; null for a verify. */
  private final Path dir;
  /** The patterns; empty for a verify, which reads every member. */
  private final List<PathMatcher> patterns;
  /** True when a pattern takes the whole tree ({@code *}, {@code **}, {@code files}). */
  private final boolean wholeTree;
  /** False for a verify: members are read and checked, nothing is written. */
  private final boolean write;
  /** True when running as root, so trusted.* and security.* xattrs can be restored. */
  private final boolean root = isRoot();
  /** Directories this restore created or restored, by relative path. */
  private final Set<String> restoredDirs = new HashSet<>();
  /** The regular file whose parts may follow, or null. */
  private Pending pending;
  /** Checksums computed, by relative path. */
  private final Map<String, Computed> computed = new HashMap<>();
  /** The writer metadata's files put back. */
  private final List<String> writerFiles = new ArrayList<>();
  /** The piece being read. */
  private int piece;
  /** The member being read, or null. */
  private String member;
  /** Where each piece is. */
  private Archive archive;
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

  private FilesExtractor(Path dir, List<PathMatcher> patterns, boolean wholeTree, Consumer<String> progress) {
    this.dir = dir;
    this.patterns = patterns;
    this.wholeTree = wholeTree;
    this.write = dir != null;
    this.progress = progress;
  }

  /** A regular file written (or read, by a verify) whose later parts may follow. */
  private static final class Pending {
    /** Its path relative to the tree. */
    final String rel;
    /** Where it is written; null for a verify or an unselected file. */
    final Path target;
    /** Its entry (the first part's). */
    final TarReader.Entry entry;
    /** Its full size. */
    final long size;
    /** The piece it starts in. */
    final int piece;
    /** The SHA-256 of its data so far. */
    final MessageDigest digest = sha256Digest();
    /** Its data bytes so far. */
    long data;
    /** Where the next part may start at the earliest. */
    long next;
    /** The piece its last part so far is in. */
    int lastPiece;

    Pending(String rel, Path target, TarReader.Entry entry, long size, int piece) {
      this.rel = rel;
      this.target = target;
      this.entry = entry;
      this.size = size;
      this.piece = piece;
      this.lastPiece = piece;
    }
  }

  /** A regular file's checksum as read back: its member, the piece it starts in and the one its last part is in. */
  private record Computed(String sha256, long data, String member, int piece, int lastPiece) {}

  /**
   * Restores the members of the files archive in {@code in} (of at most {@code limit} bytes)
   * that match one of {@code globs} into {@code dir} (created if missing). A glob matches a
   * member's path in the volume ({@code etc/hosts}) or in the archive ({@code files/etc/hosts});
   * a directory that matches brings everything under it. {@code source} names the archive in
   * messages.
   */
  public static Result extract(InputStream in, String source, long limit, List<String> globs, Path dir,
      Consumer<String> progress) throws IOException {
    return extract(Archive.single(in, source, limit), globs, dir, progress);
  }

  /**
   * Restores the members of the files archive in the pieces of {@code archive} that match one of
   * {@code globs} into {@code dir}, as {@link #extract(InputStream, String, long, List, Path,
   * Consumer)} does for one piece. A failure at a member is a {@link MemberException}.
   */
  public static Result extract(Archive archive, List<String> globs, Path dir, Consumer<String> progress)
      throws IOException {
    if (globs.isEmpty()) {
      throw new IllegalArgumentException("no patterns");
    }
    List<PathMatcher> ms = new ArrayList<>();
    boolean whole = false;
    for (String g : globs) {
      String p = g.startsWith("/") ? g.substring(1) : g;
      while (p.endsWith("/") && p.length() > 1) {
        p = p.substring(0, p.length() - 1);
      }
      whole |= p.equals("*") || p.equals("**") || p.equals("files") || p.equals("files/") || p.isEmpty();
      ms.add(FileSystems.getDefault().getPathMatcher("glob:" + p));
    }
    Files.createDirectories(dir);
    FilesExtractor x = new FilesExtractor(dir.toRealPath(), ms, whole, progress);
    return x.run(archive);
  }

  /**
   * Reads every member of the files archive in {@code archive} and checks it: every header (as
   * a restore does, names included), every piece's place, every regular file's SHA-256 against
   * the manifest, and that the manifest lists exactly the files read. Writes nothing. A failure
   * is a {@link MemberException} naming the member (null for the archive's structure) and its piece.
   */
  public static Result verify(Archive archive) throws IOException {
    FilesExtractor x = new FilesExtractor(null, List.of(), true, p -> {});
    return x.run(archive);
  }

  private Result run(Archive a) throws IOException {
    archive = a;
    try {
      return read(a);
    } catch (MemberException e) {
      throw e;
    } catch (IOException e) {
      String m = member;
      if (e instanceof TarReader.TarFormatException t) {
        m = t.member();
      } else if (e instanceof UnsafeMemberException u) {
        m = u.member();
      }
      throw new MemberException(m, piece, e.getMessage(), e);
    }
  }

  private Result read(Archive a) throws IOException {
    FilesManifest manifest = null;
    long members = 0;
    String manifestSha = null;
    byte[] manifestBody = null;
    for (piece = 0; piece < a.pieces(); piece++) {
      member = null;
      TarReader tar = new TarReader(a.open(piece), a.where(piece), a.bytes(piece));
      TarReader.Entry e = tar.next();
      if (e == null || !e.name().equals(FilesManifest.HEADER_MEMBER)) {
        throw new IOException("not a shade files archive: " + a.where(piece) + " starts with "
            + (e == null ? "no member" : e.name()) + ", not " + FilesManifest.HEADER_MEMBER);
      }
      byte[] h = readBounded(tar.data(), e, 16 << 20);
      int says = JSON.readTree(h).path("piece").asInt(0);
      if (says != piece) {
        throw new IOException(a.where(piece) + " holds piece " + (says + 1) + " of a files archive, not piece "
            + (piece + 1) + " (a cartridge out of order, or another archive)");
      }
      if (piece == 0) {
        member = e.name();
        manifest = FilesManifest.parse(h);
      }
      boolean continued = false;
      while ((e = tar.next()) != null) {
        member = e.name();
        if (e.name().equals(ImageArchiveWriter.CONTINUED_MEMBER) && e.isRegular()) {
          readBounded(tar.data(), e, 16 << 20);
          if (piece == a.pieces() - 1) {
            throw new IOException("the archive goes on after its last piece (" + a.where(piece) + " ends with "
                + ImageArchiveWriter.CONTINUED_MEMBER + "): a piece is missing from the catalog");
          }
          continued = true;
          continue;
        }
        if (e.name().equals(FilesManifest.MANIFEST_MEMBER) && e.isRegular()) {
          byte[] body = readBounded(tar.data(), e, 1 << 30);
          manifest = FilesManifest.parse(body);
          manifestBody = body;
          manifestSha = sha256(body);
          continue;
        }
        if (e.name().startsWith(FilesArchiveWriter.PARTS)) {
          part(tar, e);
          continue;
        }
        finishPending();
        members++;
        String rel = checkName(e.name(), e);
        if (rel.isEmpty()) {
          continue;
        }
        if (!write) {
          if (e.isRegular()) {
            pending = new Pending(rel, null, e, e.realSize(), piece);
            readData(tar, e, null, 0, pending);
          }
          continue;
        }
        if (!selected(rel)) {
          continue;
        }
        restore(tar, e, rel);
      }
      member = null;
      if (!continued && piece < a.pieces() - 1) {
        throw new IOException(a.where(piece) + " ends without " + ImageArchiveWriter.CONTINUED_MEMBER + ", but the"
            + " catalog lists " + a.pieces() + " pieces");
      }
    }
    piece = a.pieces() - 1;
    finishPending();
    if (write) {
      writerFiles(manifest);
    }
    while (!directories.isEmpty()) {
      directories.pop().run();
    }
    if (deferred != null) {
      throw deferred;
    }
    long checked = checkSums(manifestBody);
    return new Result(manifest, manifestSha, members, files, bytes, List.copyOf(restored), List.copyOf(notes),
        checked, List.copyOf(writerFiles));
  }

  /** A later part of a file stored in parts: its bytes go into the file its first part created. */
  private void part(TarReader tar, TarReader.Entry e) throws IOException {
    String rest = e.name().substring(FilesArchiveWriter.PARTS.length());
    int slash = rest.lastIndexOf('/');
    String hex = slash < 0 ? "" : rest.substring(slash + 1);
    if (slash <= 0 || !hex.matches("[0-9a-f]{16}")) {
      throw refused(e.name(), "it is not a part's name (parts/PATH/OFFSET, 16 hex digits)");
    }
    String rel = checkName(FilesManifest.TREE + rest.substring(0, slash), e);
    long offset = Long.parseUnsignedLong(hex, 16);
    Pending p = pending;
    if (p == null || !p.rel.equals(rel)) {
      if (write && !selected(rel)) {
        return; // a part of a file this restore does not take
      }
      throw refused(e.name(), "it is a part of " + FilesManifest.TREE + rel + ", which does not come just before it");
    }
    if (offset < p.next || offset < 0 || e.realSize() > p.size - offset) {
      throw refused(e.name(), "its " + e.realSize() + " bytes at offset " + offset + " do not fit in "
          + FilesManifest.TREE + rel + " (" + p.size + " bytes, the parts before it end at " + p.next + ")");
    }
    readData(tar, e, p.target, offset, p);
    p.next = offset + e.realSize();
    p.lastPiece = piece;
  }

  /**
   * Reads the current member's data segments, hashing them into {@code p}, and writes them at
   * {@code base} plus their offsets into {@code target} (an existing file; null: nothing written).
   */
  private void readData(TarReader tar, TarReader.Entry e, Path target, long base, Pending p) throws IOException {
    InputStream data = tar.data();
    List<long[]> segments = e.sparse() != null ? e.sparse() : List.of(new long[] {0, e.size()});
    FileHandle h = target == null ? null
        : FileHandle.open(target, FileHandle.O_WRONLY | 0400000 /* O_NOFOLLOW */, 0);
    try {
      for (long[] s : segments) {
        long pos = s[0];
        long end = s[0] + s[1];
        while (pos < end) {
          int want = (int) Math.min(BUFFER, end - pos);
          int n = data.readNBytes(buf.array(), 0, want);
          if (n < want) {
            throw new IOException("member " + e.name() + " ends early at byte " + (pos + n));
          }
          p.digest.update(buf.array(), 0, n);
          p.data += n;
          bytes += n;
          if (h != null) {
            h.writeFully(base + pos, buf.clear().limit(n));
          }
          pos += n;
        }
      }
    } finally {
      if (h != null) {
        h.close();
      }
    }
  }

  /** Ends the pending file: its checksum is kept, and (restoring) its attributes are set now that its parts are in. */
  private void finishPending() throws IOException {
    Pending p = pending;
    if (p == null) {
      return;
    }
    pending = null;
    computed.put(p.rel, new Computed(HexFormat.of().formatHex(p.digest.digest()), p.data, p.entry.name(), p.piece,
        p.lastPiece));
    if (p.target != null) {
      attributes(p.target, p.entry, false);
    }
  }

  /**
   * Compares the checksums computed with the manifest's: a restore those of the files it wrote,
   * a verify every one, both ways. Returns how many were checked.
   */
  private long checkSums(byte[] manifestBody) throws IOException {
    if (manifestBody == null) {
      if (!write) {
        throw new IOException("the archive ends without its " + FilesManifest.MANIFEST_MEMBER);
      }
      return 0; // the service says the manifest is missing
    }
    long[] checked = {0};
    Set<String> listed = new HashSet<>();
    IOException[] failed = {null};
    boolean has = FilesManifest.checksums(manifestBody, c -> {
      if (failed[0] != null) {
        return;
      }
      String rel = c.path();
      if (!write) {
        listed.add(rel);
      }
      Computed got = computed.get(rel);
      if (got == null) {
        if (!write) {
          piece = archive.pieces() - 1;
          member = FilesManifest.TREE + rel;
          failed[0] = new IOException("file " + rel + " is listed in the manifest but not in the archive");
        }
        return;
      }
      checked[0]++;
      if (!c.sha256().equals(got.sha256()) || c.data() >= 0 && c.data() != got.data()) {
        piece = got.piece();
        member = got.member();
        failed[0] = new IOException("file " + rel + " is damaged: its " + got.data() + " data bytes " + (write
            ? "restored " : "") + "have SHA-256 " + got.sha256() + ", the manifest says " + c.data() + " bytes with "
            + c.sha256() + (got.lastPiece() != got.piece() ? " (it is stored in parts, in pieces " + (got.piece() + 1)
                + " to " + (got.lastPiece() + 1) + ": from " + archive.where(got.piece()) + " to "
                + archive.where(got.lastPiece()) + ")" : ""));
      }
    });
    if (failed[0] != null) {
      throw failed[0];
    }
    if (!has) {
      notes.add("the files' checksums are not checked: the archive was written without them");
      return 0;
    }
    if (!write) {
      for (Map.Entry<String, Computed> g : computed.entrySet()) {
        if (!listed.contains(g.getKey())) {
          piece = g.getValue().piece();
          member = g.getValue().member();
          throw new IOException("file " + g.getKey() + " (member " + g.getValue().member() + ") is not in the "
              + "manifest's checksums");
        }
      }
    }
    return checked[0];
  }

  /** Puts back the writer metadata's files whose directory this restore brought back whole (class comment). */
  private void writerFiles(FilesManifest manifest) throws IOException {
    JsonNode wm = manifest == null ? null : manifest.writerMetadata();
    if (wm == null || !wm.isArray()) {
      return;
    }
    for (JsonNode w : wm) {
      String writer = w.path("writer").asText("?");
      for (JsonNode f : w.path("files")) {
        String path = f.path("path").asText("");
        String rel;
        try {
          rel = checkName(FilesManifest.TREE + path, null);
        } catch (UnsafeMemberException ex) {
          notes.add("writer " + writer + "'s file " + path + " is not written: " + ex.getMessage());
          continue;
        }
        if (rel.isEmpty()) {
          continue;
        }
        int slash = rel.lastIndexOf('/');
        String parent = slash < 0 ? "" : rel.substring(0, slash);
        boolean whole = parent.isEmpty() ? wholeTree : selected(parent) && restoredDirs.contains(parent);
        if (!whole) {
          if (selected(rel) || !parent.isEmpty() && restoredDirs.contains(parent)) {
            notes.add("writer " + writer + "'s file " + rel + " is not written: it belongs to directory "
                + (parent.isEmpty() ? "/" : parent) + ", which this restore does not bring back whole");
          }
          continue;
        }
        String what = "writer metadata file " + rel + " of " + writer;
        Path target = parentsChecked(rel, what, false);
        BasicFileAttributes existing = lstat(target);
        if (existing != null) {
          if (existing.isDirectory()) {
            throw refused(what, "a directory " + target + " is in its place");
          }
          Files.delete(target); // unlinks a link itself, never what it points to
        }
        byte[] content = f.path("content").asText("").getBytes(StandardCharsets.UTF_8);
        try (FileHandle h = FileHandle.open(target, FileHandle.O_WRONLY | FileHandle.O_CREAT | FileHandle.O_EXCL
            | 0400000 /* O_NOFOLLOW */, 0600)) {
          h.writeFully(0, ByteBuffer.wrap(content));
        }
        Path parentDir = target.getParent();
        Files.setAttribute(target, "unix:uid", Files.getAttribute(parentDir, "unix:uid", LinkOption.NOFOLLOW_LINKS),
            LinkOption.NOFOLLOW_LINKS);
        Files.setAttribute(target, "unix:gid", Files.getAttribute(parentDir, "unix:gid", LinkOption.NOFOLLOW_LINKS),
            LinkOption.NOFOLLOW_LINKS);
        Files.setAttribute(target, "unix:mode", f.path("mode").asInt(0600) & 07777, LinkOption.NOFOLLOW_LINKS);
        writerFiles.add(rel);
        progress.accept(rel);
      }
    }
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
        restoredDirs.add(rel);
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
        pending = new Pending(rel, target, e, e.realSize(), piece);
        writeFile(tar, e, target, pending);
        written.add(rel); // its attributes are set once its parts are in (finishPending)
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

  private void writeFile(TarReader tar, TarReader.Entry e, Path target, Pending p) throws IOException {
    boolean ok = false;
    try {
      try (FileHandle h = FileHandle.open(target, FileHandle.O_WRONLY | FileHandle.O_CREAT | FileHandle.O_EXCL
          | 0400000 /* O_NOFOLLOW */, 0600)) {
        if (e.sparse() != null) {
          h.truncate(e.realSize()); // the size, with the holes after the last segment
        }
      }
      readData(tar, e, target, 0, p);
      ok = true;
    } finally {
      if (!ok) {
        pending = null;
        Files.deleteIfExists(target);
      }
    }
  }

  /**
   * Owner, mode, ACL, xattrs, times: in that order (see the class comment). For a symbolic link,
   * a fifo or a device ({@code noOpen}), only what can be set without opening it or following
   * the link: owner, xattrs (lsetxattr) and times. The kernel keeps user.* xattrs on regular
   * files and directories only, so one on a link or a device is left out with a note.
   */
  private void attributes(Path p, TarReader.Entry e, boolean noOpen) throws IOException {
    Files.setAttribute(p, "unix:uid", (int) e.uid(), LinkOption.NOFOLLOW_LINKS);
    Files.setAttribute(p, "unix:gid", (int) e.gid(), LinkOption.NOFOLLOW_LINKS);
    if (!noOpen) {
      Files.setAttribute(p, "unix:mode", e.mode() & 07777, LinkOption.NOFOLLOW_LINKS);
      if ((e.aclAccess() != null || e.aclDefault() != null) && (e.isRegular() || e.isDirectory())) {
        if (acls) {
          PosixAcls.apply(p, e.aclAccess(), e.aclDefault());
        } else {
          notes.add("the ACL of " + e.name() + " is not restored: setfacl is not installed (the acl package)");
        }
      }
    }
    if (!e.xattrs().isEmpty()) {
      xattrs(p, e, noOpen);
    }
    FileTime m = FileTime.from(e.mtime());
    FileTime a = e.atime() == null ? m : FileTime.from(e.atime());
    if (noOpen) {
      exactTimes(p, m.toInstant(), a.toInstant()); // Java's setTimes opens the file, even with NOFOLLOW_LINKS
    } else {
      Files.getFileAttributeView(p, BasicFileAttributeView.class, LinkOption.NOFOLLOW_LINKS).setTimes(m, a, null);
    }
  }

  /** Sets the archived xattrs of {@code e} on {@code p}, without following a link; see {@link #attributes}. */
  private void xattrs(Path p, TarReader.Entry e, boolean noOpen) throws IOException {
    for (Map.Entry<String, byte[]> x : e.xattrs().entrySet()) {
      String k = x.getKey();
      if (k.startsWith("user.")) {
        if (noOpen) {
          notes.add("xattr " + k + " of " + e.name() + " is not restored: Linux keeps user.* xattrs on regular files"
              + " and directories only");
          continue;
        }
        Xattrs.set(p, k, x.getValue());
      } else if (k.startsWith("trusted.") || k.startsWith("security.")) {
        if (!root) {
          notes.add("xattr " + k + " of " + e.name() + " is not restored: the " + k.substring(0, k.indexOf('.'))
              + " namespace needs root");
          continue;
        }
        try {
          Xattrs.set(p, k, x.getValue());
        } catch (ErrnoException ex) {
          notes.add("xattr " + k + " of " + e.name() + " is not restored: " + ex.getMessage());
        }
      } else if (!k.startsWith("system.posix_acl_")) {
        notes.add("xattr " + k + " of " + e.name() + " is not restored (only user.*, trusted.* and security.*"
            + " xattrs are)");
      }
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
    return HexFormat.of().formatHex(sha256Digest().digest(b));
  }

  private static MessageDigest sha256Digest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** True when this process runs as root (uid 0), which the trusted and security xattr namespaces need. */
  private static boolean isRoot() {
    try {
      return ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).intValue() == 0;
    } catch (IOException | RuntimeException e) {
      return false;
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
