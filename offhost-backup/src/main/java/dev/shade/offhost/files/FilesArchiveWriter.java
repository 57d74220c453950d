package dev.shade.offhost.files;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.nativeio.ErrnoException;
import dev.shade.nativeio.FileHandle;
import dev.shade.nativeio.Xattrs;
import dev.shade.offhost.backup.ImageArchiveWriter;
import dev.shade.offhost.backup.ImageArchiveWriter.PieceOutput;
import dev.shade.offhost.backup.PieceEntry;
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
import java.nio.file.attribute.UserPrincipal;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.function.Function;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;

/**
 * Writes one files archive: {@code shade-files.json}, the tree under a directory as
 * {@code files/...} members that GNU tar extracts with every attribute, then
 * {@code manifest.json} with every regular file's SHA-256; on tape, in one or more pieces (one
 * tape file each, each a tar of its own) when the archive reaches the end of a cartridge.
 * docs/tape-format.md describes the layout.
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
   *
   * Pieces: before each member the writer asks the PieceOutput whether its medium passed the
   * early warning; if so it ends the piece there (continued.json, the tar's end) and goes on in
   * the next, which starts with the header again. What is written after the warning is then at
   * most one member: its headers and at most partBytes of data, which the caller derives from
   * the drive's trailer allowance. A regular file that is not one member is stored in parts: the
   * first part is its own member files/PATH, in GNU's sparse format with the file's full size
   * (the data of the later parts are holes there), each later part a member
   * parts/PATH/OOOOOOOOOOOOOOOO (the part's first byte in 16 hex digits, as image chunks are
   * named) holding the file's bytes from that offset, the range's holes again in sparse format;
   * a part is never split, so every piece stays a tar that GNU tar lists and extracts, and dd
   * puts the parts back (docs/tape-format.md). Each part is a member boundary of its own.
   *
   * Where a file is cut depends on what the medium tells (Room, asked as each piece begins):
   *
   *  - Room unknown (a real st drive reports the warning only when a write meets it): any member
   *    may be the one in flight at the warning, so every file with more than partBytes of data is
   *    stored in parts of partBytes, on every cartridge.
   *  - Room known (the virtual library): the writer counts the piece's bytes itself
   *    (TarArchiveOutputStream.getBytesWritten, exact at a member boundary: members are whole
   *    512-byte blocks) and knows each member's size before writing it (Member.bytes: the
   *    extended header's header and records, the ustar header, the data, each padded to 512;
   *    the ustar entry keeps to ustar's limits, so the stream adds nothing). A file is one member
   *    when that member ends within the room left plus partBytes, so whatever follows the warning
   *    is again at most one member's headers and partBytes of data. Otherwise its first part is
   *    the largest head of its data, in 512-byte blocks, whose member ends at the warning or
   *    before it (bisection: the sparse map and the headers grow with the head), and the piece
   *    ends after it; each later part, in the next piece, is decided the same way against that
   *    piece's room. A piece also ends at the first boundary with fewer than PIECE_END bytes left
   *    before the warning: its end (continued.json, the tar's end) then passes the mark, so the
   *    drive is past it even when no write met the warning (the record that crossed was the
   *    piece's last) and TapePieces moves to the next cartridge. A file crossing cartridge ends
   *    thus has one part per cartridge it touches, and an archive that fits on one cartridge has
   *    no parts at all.
   *
   * Checksums: each regular file's data (its data segments in order, holes left out; for a
   * file without holes what sha256sum prints) is SHA-256'd as it is copied, and the manifest,
   * the last member, lists them all, so nothing is read twice.
   */

  /**
   * How far the medium of a piece is from its early warning. The writer asks once per piece,
   * right after the piece is begun and before anything is written to it.
   */
  @FunctionalInterface
  public interface Room {
    /**
     * The bytes the piece just begun may take before its medium's early warning
     * ({@link dev.shade.offhost.tape.TapeDrive#roomBeforeEarlyWarning()}); empty when the medium
     * does not tell.
     */
    OptionalLong beforeEarlyWarning() throws IOException;

    /** A medium that never tells (a real st drive): every file with more data than a part is stored in parts. */
    Room UNKNOWN = OptionalLong::empty;
  }

  /** Told how many file bytes were archived so far of about how many. */
  public interface Progress {
    void update(long done, long total);
  }

  /** What was written: {@code archiveBytes} is the sum of the pieces' bytes. */
  public record Result(FilesManifest manifest, String manifestSha256, long archiveBytes, List<PieceEntry> pieces) {}

  /** The directory of the archive that holds the later parts of files stored in parts. */
  public static final String PARTS = "parts/";
  /** Bytes a piece may need after the early warning besides a part's data: headers, continued.json, the tar's end. */
  public static final long PART_OVERHEAD = 256 * 1024;
  /**
   * The fewest bytes a piece's end takes: continued.json (a header block and at least one data
   * block) and the tar's two zero blocks. A piece whose room is known ends once less than this is
   * left before the early warning, so that its end always passes the mark.
   */
  static final long PIECE_END = 4 * 512;

  private static final ObjectMapper JSON = new ObjectMapper();

  /** Bytes read from a file at a time. */
  private static final int BUFFER = 1 << 20;
  /** The largest number ustar's 12-byte octal size field holds. */
  private static final long USTAR_MAX_SIZE = 077777777777L;
  /** The largest id ustar's 8-byte octal uid/gid fields hold. */
  private static final long USTAR_MAX_ID = 07777777L;

  /** Where the pieces go. */
  private final PieceOutput out;
  /** The tar block size. */
  private final int blockSize;
  /** The archive's header. */
  private final FilesManifest header;
  /** The job, or -1. */
  private final long jobId;
  /**
   * Most data bytes of one member when the room is unknown (larger files are stored in parts),
   * and what a member may take past the early warning when it is known.
   */
  private final long partBytes;
  /** Asked for the room of each piece. */
  private final Room room;
  /** The current piece's bytes before the early warning, or -1 when its medium does not tell. */
  private long roomEnd = -1;
  /** The pieces ended so far. */
  private final List<PieceEntry> done = new ArrayList<>();
  /** Where the current piece is. */
  private PieceOutput.Started started;
  /** The tar of the current piece. */
  private TarArchiveOutputStream tar;
  /** Tree members (and parts) in the current piece. */
  private long pieceMembers;
  /**
   * Every regular file's checksum entry, in archive order, as the manifest's JSON text (one
   * compact object a line): text rather than a tree, which would take several times as much
   * memory for a tree of millions of files.
   */
  private final StringBuilder checksums = new StringBuilder();
  /** The checksum of the file being copied. */
  private final MessageDigest digest = sha256Digest();
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

  private FilesArchiveWriter(PieceOutput out, int blockSize, FilesManifest header, long jobId, long partBytes, Room room,
      Path root, Map<String, PosixAcls.Acl> acls, Progress progress, long expected, long metaTime) {
    this.out = out;
    this.blockSize = blockSize;
    this.header = header;
    this.jobId = jobId;
    this.partBytes = partBytes;
    this.room = room;
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
   * Writes the archive of the tree under {@code root} to {@code out} (which the caller closes)
   * as one piece, with {@code header} as its first member and the completed manifest as its
   * last; no file is stored in parts. ACLs are read (getfacl) when {@code withAcls}.
   */
  public static Result write(OutputStream out, int tarBlockSize, Path root, FilesManifest header, boolean withAcls,
      Progress progress) throws IOException {
    return write(PieceOutput.single(out), tarBlockSize, root, header, -1, withAcls, Long.MAX_VALUE, Room.UNKNOWN,
        progress);
  }

  /**
   * Writes the archive of the tree under {@code root}, for job {@code jobId} (-1: none), to the
   * pieces of {@code out}: a piece ends at the first member boundary after {@code out} says it
   * is {@link PieceOutput#full() full}, with {@link ImageArchiveWriter#CONTINUED_MEMBER}, and the
   * archive goes on in the next, which starts with the header again ({@code piece} counting
   * from 0). A regular file with more than {@code partBytes} data bytes is stored in parts of at
   * most that many (see the class comment). The manifest, in the last piece, lists every piece
   * and every regular file's SHA-256. The same as the next method with {@link Room#UNKNOWN}.
   */
  public static Result write(PieceOutput out, int tarBlockSize, Path root, FilesManifest header, long jobId,
      boolean withAcls, long partBytes, Progress progress) throws IOException {
    return write(out, tarBlockSize, root, header, jobId, withAcls, partBytes, Room.UNKNOWN, progress);
  }

  /**
   * Writes the archive as the method above does, but where {@code room} tells how far a piece's
   * medium is from its early warning, a piece ends there and a regular file is split only where
   * its piece ends: it is one member when that member ends within the room left plus
   * {@code partBytes} (what may follow the warning), else its first part fills the piece up to the
   * warning and each later part, on the next pieces, is again one member or fills its piece. Where
   * {@code room} does not tell, files are stored in parts of {@code partBytes} as above.
   */
  public static Result write(PieceOutput out, int tarBlockSize, Path root, FilesManifest header, long jobId,
      boolean withAcls, long partBytes, Room room, Progress progress) throws IOException {
    if (partBytes < 512) {
      throw new IllegalArgumentException("part size must be at least 512 bytes: " + partBytes);
    }
    Path r = root.toAbsolutePath().normalize();
    Map<String, PosixAcls.Acl> acls = withAcls ? PosixAcls.read(r) : Map.of();
    long expected;
    try {
      var store = Files.getFileStore(r);
      expected = Math.max(0, store.getTotalSpace() - store.getUnallocatedSpace());
    } catch (IOException e) {
      expected = -1;
    }
    FilesArchiveWriter w = new FilesArchiveWriter(out, tarBlockSize, header, jobId, partBytes, room, r, acls,
        progress, expected, header.snapshotCreated().toEpochMilli());
    w.begin();
    w.walk(r, "");
    w.boundary(); // the manifest goes to a cartridge with room
    FilesManifest manifest = header.complete(Instant.ofEpochMilli(System.currentTimeMillis()),
        new FilesManifest.Counts(w.entries, w.directories, w.regular, w.hardLinks, w.symlinks, w.special, w.sparse,
            w.skipped, w.bytes, w.dataBytes));
    ObjectNode doc = manifest.toJson();
    if (jobId >= 0) {
      doc.put("job", jobId);
    }
    ArrayNode list = doc.putArray("pieces");
    for (PieceEntry e : w.done) {
      pieceJson(list.addObject(), e);
    }
    pieceJson(list.addObject(), w.current(0)).putNull("bytes");
    doc.put("checksum", "sha-256");
    byte[] body = withChecksums(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(doc), w.checksums);
    w.member(FilesManifest.MANIFEST_MEMBER, body, false);
    w.end();
    long archiveBytes = 0;
    for (PieceEntry e : w.done) {
      archiveBytes += e.bytes();
    }
    return new Result(manifest, sha256(body), archiveBytes, List.copyOf(w.done));
  }

  /** {@code doc} (a pretty-printed JSON object) with {@code "checksums" : [ENTRIES]} as its last key, in UTF-8. */
  private static byte[] withChecksums(String doc, CharSequence entries) {
    int end = doc.lastIndexOf('}');
    StringBuilder b = new StringBuilder(doc.length() + entries.length() + 64).append(doc, 0, end).append(",\n  \"")
        .append(FilesManifest.CHECKSUMS).append("\" : [").append(entries).append(entries.length() == 0 ? "" : "\n  ")
        .append("]\n}");
    return b.toString().getBytes(StandardCharsets.UTF_8);
  }

  /** Starts the next piece: its tar, and the header as its first member. */
  private void begin() throws IOException {
    int piece = done.size();
    started = out.begin(piece);
    tar = new TarArchiveOutputStream(started.stream(), blockSize, "UTF-8");
    tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
    tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_STAR);
    ObjectNode h = header.toJson();
    if (jobId >= 0) {
      h.put("job", jobId);
    }
    h.put("piece", piece);
    OptionalLong left = room.beforeEarlyWarning(); // before the header: nothing of the piece is written yet
    roomEnd = left.isPresent() ? Math.max(0, left.getAsLong()) : -1;
    member(FilesManifest.HEADER_MEMBER, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(h), true);
    pieceMembers = 0;
  }

  /** The current piece as a catalog entry (files archives list no chunks). */
  private PieceEntry current(long bytes) {
    return new PieceEntry(done.size(), started.cartridge(), started.fileNumber(), Math.max(0, bytes), -1, -1, 0);
  }

  /**
   * A member boundary: past the early warning (the medium says so, or, when the room is known,
   * less than {@link #PIECE_END} is left before it), the piece ends here and the archive goes on
   * in the next.
   */
  private void boundary() throws IOException {
    if (out.full() || roomEnd >= 0 && roomEnd - tar.getBytesWritten() < PIECE_END) {
      next();
    }
  }

  /** Ends the current piece with its continuation member and starts the next. */
  private void next() throws IOException {
    ObjectNode c = JSON.createObjectNode().put("format", ImageArchiveWriter.PIECE_FORMAT).put("kind", "continued");
    if (jobId >= 0) {
      c.put("job", jobId);
    }
    c.put("volumeUuid", header.volumeUuid()).put("snapshotId", header.snapshotId());
    pieceJson(c, current(0)).putNull("bytes");
    c.put("members", pieceMembers);
    c.put("continued", true);
    member(ImageArchiveWriter.CONTINUED_MEMBER, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(c), false);
    end();
    begin();
  }

  /** Finishes the current piece's tar and its tape file. */
  private void end() throws IOException {
    tar.finish();
    out.end();
    done.add(current(tar.getBytesWritten()));
  }

  private static ObjectNode pieceJson(ObjectNode o, PieceEntry e) {
    o.put("piece", e.piece()).put("cartridge", e.cartridge()).put("fileNumber", e.fileNumber())
        .put("bytes", e.bytes());
    return o;
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
    boundary();
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

    TarArchiveEntry e = null;
    List<long[]> segments = null;
    long size = 0;
    long data = 0;
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
          data = dataOf(segments);
          regular++;
          bytes += size;
          if (data < size) {
            sparse++;
          }
          // its member is made below, once its ACL and xattrs are known: they count in how much of it fits
        }
        default -> throw new IOException("unknown file type " + Integer.toOctalString(type) + " of " + file);
      }
    }
    // the order GNU tar writes: ACLs and xattrs after the times and names
    PaxRecords tail = new PaxRecords();
    if (!acls.isEmpty() && (type == 0100000 || dir) && first == null) {
      PosixAcls.Acl acl = acls.get(rel);
      if (acl != null && acl.access() != null) {
        tail.put("SCHILY.acl.access", acl.access());
      }
      if (acl != null && acl.defaults() != null) {
        tail.put("SCHILY.acl.default", acl.defaults());
      }
    }
    if (first == null) {
      xattrs(file, tail); // of links and special files too (without following a link), as GNU tar keeps them
    }
    Member m;
    List<long[]> rest = List.of();
    if (segments != null) {
      long fileSize = size;
      long take = take(segments, data, head -> fileMember(name, pax, tail, fileSize, head));
      Cut c = cut(segments, take);
      m = fileMember(name, pax, tail, size, c.head());
      rest = c.tail();
    } else {
      pax.put("path", name).putAll(tail);
      e.setSize(0);
      m = new Member(name, pax, e, null, List.of(), 0);
    }
    e = m.entry();
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
    if (segments != null) {
      digest.reset();
    }
    write(m, file, size);
    entries++;
    if (segments != null) {
      int parts = 1;
      long restData = data - dataOf(m.data());
      while (!rest.isEmpty()) {
        boundary();
        List<long[]> r = rest;
        long take = take(r, restData, head -> partMember(rel, head, mtime));
        Cut c = cut(r, take);
        Member p = partMember(rel, c.head(), mtime);
        p.entry().setMode(0600);
        p.entry().setUserId(uid > USTAR_MAX_ID ? 0 : uid);
        p.entry().setGroupId(gid > USTAR_MAX_ID ? 0 : gid);
        p.entry().setModTime(mtime.toMillis() / 1000 * 1000);
        write(p, file, size);
        parts++;
        restData -= take;
        rest = c.tail();
      }
      ObjectNode c = JSON.createObjectNode().put("path", rel).put("size", size).put("data", data)
          .put("sha256", HexFormat.of().formatHex(digest.digest()));
      if (parts > 1) {
        c.put("parts", parts);
      }
      checksums.append(checksums.length() == 0 ? "\n    " : ",\n    ").append(JSON.writeValueAsString(c));
    }
  }

  /**
   * A member ready to be written: its extended header's records, its ustar entry (with its size
   * set), the sparse map its data starts with (null when it has none) and the file's data
   * segments it holds.
   */
  private record Member(String name, PaxRecords pax, TarArchiveEntry entry, byte[] map, List<long[]> data,
      long stored) {
    /**
     * The bytes it takes in the tar: the extended header's own header and its records, the
     * entry's header, then its data, each padded to a 512-byte block. (The ustar entry keeps to
     * ustar's limits, so the stream adds no header of its own; see the class comment.)
     */
    long bytes() {
      return 512 + blocks(pax.bytes().length) + 512 + blocks(stored);
    }
  }

  /** {@code n} rounded up to whole 512-byte tar blocks. */
  private static long blocks(long n) {
    return (n + 511) / 512 * 512;
  }

  /** Writes {@code m}: its extended header, its entry, its sparse map and its data from {@code file}. */
  private void write(Member m, Path file, long size) throws IOException {
    TarArchiveEntry e = m.entry();
    byte[] body = m.pax().bytes();
    TarArchiveEntry x = new TarArchiveEntry(ustarName("PaxHeaders/" + baseOf(m.name())),
        TarConstants.LF_PAX_EXTENDED_HEADER_LC);
    x.setSize(body.length);
    x.setModTime(e.getModTime());
    tar.putArchiveEntry(x);
    tar.write(body);
    tar.closeArchiveEntry();
    tar.putArchiveEntry(e);
    if (m.stored() > 0) {
      if (m.map() != null) {
        tar.write(m.map());
      }
      copy(file, m.data(), size);
    }
    tar.closeArchiveEntry();
    pieceMembers++;
  }

  /**
   * The member {@code files/PATH} of a regular file of {@code size} bytes holding the data
   * segments {@code head} (all of the file's, or its first part's): in GNU's sparse format with
   * the file's full size when that is fewer bytes than the size (holes, or later parts to come),
   * else a plain member. {@code base} are the records of its times and names, {@code tail} its
   * ACLs and xattrs; neither is changed.
   */
  private static Member fileMember(String name, PaxRecords base, PaxRecords tail, long size, List<long[]> head) {
    PaxRecords pax = base.copy();
    long firstData = dataOf(head);
    TarArchiveEntry e;
    byte[] map = null;
    List<long[]> segments;
    long stored;
    if (firstData < size) {
      // holes, or the later parts of a file stored in parts: GNU's sparse format, with the file's full size
      segments = new ArrayList<>(head);
      if (segments.isEmpty() || segments.get(segments.size() - 1)[0] + segments.get(segments.size() - 1)[1] < size) {
        segments.add(new long[] {size, 0});
      }
      map = sparseMap(segments);
      stored = map.length + firstData;
      String fake = parentOf(name) + "GNUSparseFile.0/" + baseOf(name);
      e = new TarArchiveEntry(ustarName(fake), TarConstants.LF_NORMAL);
      if (!ustarName(fake).equals(fake)) {
        pax.put("path", fake);
      }
      pax.put("GNU.sparse.major", "1").put("GNU.sparse.minor", "0").put("GNU.sparse.name", name)
          .put("GNU.sparse.realsize", Long.toString(size));
    } else {
      segments = size == 0 ? List.of() : List.of(new long[] {0, size});
      stored = size;
      e = new TarArchiveEntry(ustarName(name), TarConstants.LF_NORMAL);
    }
    if (stored > USTAR_MAX_SIZE) {
      pax.put("size", Long.toString(stored));
    }
    if (map == null) {
      pax.put("path", name);
    }
    pax.putAll(tail);
    e.setSize(stored);
    return new Member(name, pax, e, map, segments, stored);
  }

  /**
   * A later part of a file stored in parts: member {@code parts/REL/OFFSET}, the file's bytes
   * from the part's first data byte to its last one's end, holes in between in sparse format;
   * mtime {@code mtime} (the caller sets mode 0600 and the file's owner).
   */
  private static Member partMember(String rel, List<long[]> part, FileTime mtime) {
    long from = part.get(0)[0];
    long[] last = part.get(part.size() - 1);
    long to = last[0] + last[1];
    long data = 0;
    List<long[]> shifted = new ArrayList<>();
    for (long[] g : part) {
      data += g[1];
      shifted.add(new long[] {g[0] - from, g[1]});
    }
    String name = PARTS + rel + "/" + String.format("%016x", from);
    PaxRecords pax = new PaxRecords();
    pax.put("mtime", PaxRecords.time(mtime));
    boolean holes = data < to - from;
    TarArchiveEntry e;
    byte[] map = null;
    long stored;
    if (holes) {
      String fake = parentOf(name) + "GNUSparseFile.0/" + baseOf(name);
      e = new TarArchiveEntry(ustarName(fake), TarConstants.LF_NORMAL);
      pax.put("path", fake);
      pax.put("GNU.sparse.major", "1").put("GNU.sparse.minor", "0").put("GNU.sparse.name", name)
          .put("GNU.sparse.realsize", Long.toString(to - from));
      map = sparseMap(shifted);
      stored = map.length + data;
    } else {
      e = new TarArchiveEntry(ustarName(name), TarConstants.LF_NORMAL);
      pax.put("path", name);
      stored = data;
    }
    if (stored > USTAR_MAX_SIZE) {
      pax.put("size", Long.toString(stored));
    }
    e.setSize(stored);
    return new Member(name, pax, e, map, part, stored);
  }

  /**
   * How many of the {@code restData} data bytes of {@code rest} (the data segments of a file
   * still to archive) its next member holds, {@code member} making that member of a head of
   * {@code rest}. With the room of the piece unknown: at most a part. With it known: all of them
   * when the member ends within the room left plus a part (what the trailer takes after the
   * warning); else as many as fill the piece up to the early warning, in whole 512-byte blocks
   * (the largest head whose member ends at the mark, found by bisection: its headers and sparse
   * map grow with the head), at least one block.
   */
  private long take(List<long[]> rest, long restData, Function<List<long[]>, Member> member) {
    if (roomEnd < 0) {
      return Math.min(restData, partBytes);
    }
    long left = roomEnd - tar.getBytesWritten();
    if (member.apply(rest).bytes() <= left + partBytes) {
      return restData;
    }
    long fits = 0; // blocks known to fit
    long over = (restData + 511) / 512; // blocks known not to (the whole rest does not)
    while (over - fits > 1) {
      long mid = (fits + over) >>> 1;
      if (member.apply(cut(rest, mid * 512).head()).bytes() <= left) {
        fits = mid;
      } else {
        over = mid;
      }
    }
    return Math.min(restData, Math.max(1, fits) * 512);
  }

  /** {@code segments} cut after {@code data} data bytes: the head holds those, the tail the rest. */
  record Cut(List<long[]> head, List<long[]> tail) {}

  /** {@code segments} cut after {@code data} of their data bytes, a segment split where the cut falls. */
  static Cut cut(List<long[]> segments, long data) {
    List<long[]> head = new ArrayList<>();
    List<long[]> tail = new ArrayList<>();
    long left = data;
    for (long[] s : segments) {
      if (left >= s[1]) {
        head.add(s);
        left -= s[1];
      } else if (left > 0) {
        head.add(new long[] {s[0], left});
        tail.add(new long[] {s[0] + left, s[1] - left});
        left = 0;
      } else {
        tail.add(s);
      }
    }
    return new Cut(head, tail);
  }

  /** The data bytes of {@code segments}. */
  private static long dataOf(List<long[]> segments) {
    long n = 0;
    for (long[] s : segments) {
      n += s[1];
    }
    return n;
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
          digest.update(buf.array(), 0, n);
          pos += n;
          dataBytes += n;
          progress.update(dataBytes, Math.max(expected, dataBytes));
        }
      }
    }
  }

  /**
   * Adds the xattrs of {@code file} of the user, trusted and security namespaces as
   * SCHILY.xattr.NAME, as GNU tar does with --xattrs --xattrs-include='*'; system.* (POSIX ACLs,
   * kept as SCHILY.acl.*) is left out. trusted.* is visible to root only.
   */
  private static void xattrs(Path file, PaxRecords pax) throws IOException {
    List<String> names = new ArrayList<>();
    for (String n : Xattrs.list(file)) {
      if (n.startsWith("user.") || n.startsWith("trusted.") || n.startsWith("security.")) {
        names.add(n);
      }
    }
    names.sort(null);
    for (String n : names) {
      byte[] value;
      try {
        value = Xattrs.get(file, n);
      } catch (ErrnoException e) {
        throw new IOException("cannot read xattr " + n + " of " + file + ": " + e.getMessage(), e);
      }
      if (value != null) {
        pax.put("SCHILY.xattr." + n, value);
      }
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
    return HexFormat.of().formatHex(sha256Digest().digest(b));
  }

  private static MessageDigest sha256Digest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
