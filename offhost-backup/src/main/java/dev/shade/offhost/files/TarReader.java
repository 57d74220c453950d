package dev.shade.offhost.files;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a tar stream entry by entry, strictly: POSIX extended headers applied to the entry they
 * precede, GNU's PAX sparse format 1.0 decoded, and every size checked against what the stream
 * can still hold, so a damaged or crafted archive fails with the member and offset named
 * instead of making the caller allocate or wait for bytes that are not there.
 *
 * <p>Not thread-safe: one reader thread.
 */
final class TarReader {
  /*
   * Written for restores rather than taken from commons-compress: its TarArchiveInputStream
   * parses GNU.sparse.realsize as an int, so a sparse file of 2 GiB or more cannot be read
   * back through it, and it offers no bound on the sizes a header claims. Formats read: ustar
   * and GNU headers (octal or base-256 numbers, the ustar prefix), 'x' headers, 'g' headers
   * (skipped), GNU 'L'/'K' long names. Sparse formats other than PAX 1.0 are refused.
   */

  /** One entry, with its extended header applied. {@code sparse} holds {offset, length} pairs, or null. */
  record Entry(String name, byte type, long size, long realSize, int mode, long uid, long gid, String uname,
      String gname, Instant mtime, Instant atime, String linkName, int devMajor, int devMinor,
      Map<String, byte[]> xattrs, String aclAccess, String aclDefault, List<long[]> sparse, long offset) {
    boolean isDirectory() {
      return type == '5';
    }

    boolean isRegular() {
      return type == '0' || type == 0 || type == '7';
    }
  }

  /** Largest extended header or long name taken. */
  private static final int MAX_META = 16 << 20;
  /** Most segments a sparse map may list. */
  private static final int MAX_SEGMENTS = 1 << 20;

  /** The stream. */
  private final InputStream in;
  /** Where it came from, for messages. */
  private final String source;
  /** Bytes the stream holds at most (the tape file's size), or Long.MAX_VALUE. */
  private final long limit;
  /** Bytes consumed. */
  private long position;
  /** Stored bytes of the current entry not yet consumed. */
  private long remaining;
  /** Padding after the current entry's data. */
  private long padding;
  /** The current entry, or null. */
  private Entry current;

  TarReader(InputStream in, String source, long limit) {
    this.in = in;
    this.source = source;
    this.limit = limit;
  }

  /** The next entry, or null at the end of the archive. */
  Entry next() throws IOException {
    skip(remaining + padding);
    remaining = 0;
    padding = 0;
    current = null;
    Map<String, byte[]> pax = new LinkedHashMap<>();
    String longName = null;
    String longLink = null;
    while (true) {
      long at = position;
      byte[] h = new byte[512];
      int n = readFully(h);
      if (n == 0) {
        // GNU tar accepts this with a warning; for a restore it means a truncated tape file
        throw fail(null, at, "the archive ends without its end-of-archive blocks (is the tape file truncated?)");
      }
      if (n < 512) {
        throw fail(null, at, "the archive ends inside a header (" + n + " of 512 bytes)");
      }
      if (isZero(h)) {
        return null;
      }
      checkSum(h, at);
      byte type = h[156];
      long size = number(h, 124, 12, "size", at);
      if (size < 0) {
        throw fail(null, at, "negative size " + size);
      }
      if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
        if (size > MAX_META) {
          throw fail(null, at, "an extended header of " + size + " bytes (at most " + MAX_META + " taken)");
        }
        byte[] body = new byte[(int) size];
        requireRoom(null, at, size);
        if (readFully(body) != size) {
          throw fail(null, at, "the archive ends inside an extended header");
        }
        skip(pad(size));
        if (type == 'x') {
          parsePax(body, pax, at);
        } else if (type == 'L') {
          longName = cString(body, 0, body.length);
        } else if (type == 'K') {
          longLink = cString(body, 0, body.length);
        }
        continue;
      }
      if (type == 'S' || type == 'M' || type == 'V') {
        throw fail(cString(h, 0, 100), at, "GNU header type '" + (char) type + "' is not supported");
      }
      String name = cString(h, 0, 100);
      String magic = new String(h, 257, 5, StandardCharsets.US_ASCII);
      if (magic.equals("ustar") && h[262] == 0) {
        String prefix = cString(h, 345, 155);
        if (!prefix.isEmpty()) {
          name = prefix + "/" + name;
        }
      }
      if (longName != null) {
        name = longName;
      }
      String link = longLink != null ? longLink : cString(h, 157, 100);
      int mode = (int) (number(h, 100, 8, "mode", at) & 07777);
      long uid = number(h, 108, 8, "uid", at);
      long gid = number(h, 116, 8, "gid", at);
      Instant mtime = Instant.ofEpochSecond(number(h, 136, 12, "mtime", at));
      Instant atime = null;
      String uname = cString(h, 265, 32);
      String gname = cString(h, 297, 32);
      int major = (int) number(h, 329, 8, "devmajor", at);
      int minor = (int) number(h, 337, 8, "devminor", at);
      Map<String, byte[]> xattrs = new LinkedHashMap<>();
      String aclA = null;
      String aclD = null;
      boolean sparse = false;
      long realSize = -1;
      for (Map.Entry<String, byte[]> r : pax.entrySet()) {
        String k = r.getKey();
        String v = new String(r.getValue(), StandardCharsets.UTF_8);
        switch (k) {
          case "path" -> name = v;
          case "linkpath" -> link = v;
          case "size" -> size = decimal(k, v, name, at);
          case "uid" -> uid = decimal(k, v, name, at);
          case "gid" -> gid = decimal(k, v, name, at);
          case "uname" -> uname = v;
          case "gname" -> gname = v;
          case "mtime" -> mtime = time(k, v, name, at);
          case "atime" -> atime = time(k, v, name, at);
          case "SCHILY.devmajor" -> major = (int) decimal(k, v, name, at);
          case "SCHILY.devminor" -> minor = (int) decimal(k, v, name, at);
          case "SCHILY.acl.access" -> aclA = v;
          case "SCHILY.acl.default" -> aclD = v;
          case "GNU.sparse.name" -> {
            name = v;
            sparse = true;
          }
          case "GNU.sparse.realsize" -> {
            realSize = decimal(k, v, name, at);
            sparse = true;
          }
          case "GNU.sparse.major", "GNU.sparse.minor" -> sparse = true;
          case "GNU.sparse.size", "GNU.sparse.map", "GNU.sparse.numblocks", "GNU.sparse.offset",
              "GNU.sparse.numbytes" -> throw fail(name, at, "GNU sparse format 0.x is not supported (only PAX 1.0)");
          default -> {
            if (k.startsWith("SCHILY.xattr.")) {
              xattrs.put(k.substring(13), r.getValue());
            }
          }
        }
      }
      if (sparse && (!"1".equals(text(pax, "GNU.sparse.major")) || !"0".equals(text(pax, "GNU.sparse.minor"))
          || realSize < 0 || !pax.containsKey("GNU.sparse.name"))) {
        throw fail(name, at, "a sparse member that is not in GNU's PAX format 1.0 (major 1, minor 0, with name and "
            + "realsize)");
      }
      long dataAt = position;
      requireRoom(name, at, size);
      remaining = size;
      padding = pad(size);
      List<long[]> segments = null;
      if (sparse) {
        segments = sparseMap(name, at, realSize);
        long data = 0;
        for (long[] s : segments) {
          data += s[1];
        }
        if (data != remaining) {
          throw fail(name, at, "its sparse map lists " + data + " data bytes, the member holds " + remaining);
        }
      } else {
        realSize = size;
      }
      current = new Entry(name, type, size, realSize, mode, uid, gid, uname, gname, mtime, atime, link, major, minor,
          Collections.unmodifiableMap(xattrs), aclA, aclD, segments, dataAt);
      return current;
    }
  }

  /** The current entry's data bytes (after the sparse map), to be read before the next call of {@link #next}. */
  InputStream data() {
    Entry e = current;
    return new InputStream() {
      @Override
      public int read() throws IOException {
        byte[] b = new byte[1];
        return read(b, 0, 1) < 0 ? -1 : b[0] & 0xff;
      }

      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        if (remaining == 0) {
          return -1;
        }
        int n = in.read(b, off, (int) Math.min(len, remaining));
        if (n < 0) {
          throw fail(e.name(), position, "the archive ends inside the member, " + remaining + " bytes short");
        }
        remaining -= n;
        position += n;
        return n;
      }
    };
  }

  /** Bytes consumed so far. */
  long position() {
    return position;
  }

  private List<long[]> sparseMap(String name, long at, long realSize) throws IOException {
    // decimal numbers one a line: count, then offset and length of each segment; padded to 512
    List<Long> numbers = new ArrayList<>();
    long count = -1;
    long consumed = 0;
    StringBuilder digits = new StringBuilder();
    while (count < 0 || numbers.size() < 1 + 2 * count) {
      if (remaining == 0) {
        throw fail(name, at, "its sparse map runs past the member's data");
      }
      int b = in.read();
      if (b < 0) {
        throw fail(name, at, "the archive ends inside the sparse map");
      }
      remaining--;
      position++;
      consumed++;
      if (b == '\n') {
        if (digits.length() == 0 || digits.length() > 19) {
          throw fail(name, at, "a malformed sparse map");
        }
        numbers.add(Long.parseLong(digits.toString()));
        digits.setLength(0);
        if (numbers.size() == 1) {
          count = numbers.get(0);
          if (count > MAX_SEGMENTS) {
            throw fail(name, at, "a sparse map of " + count + " segments (at most " + MAX_SEGMENTS + " taken)");
          }
        }
      } else if (b >= '0' && b <= '9') {
        digits.append((char) b);
      } else {
        throw fail(name, at, "a malformed sparse map (byte " + b + ")");
      }
    }
    long pad = pad(consumed);
    if (pad > remaining) {
      throw fail(name, at, "its sparse map runs past the member's data");
    }
    skipData(pad);
    List<long[]> segs = new ArrayList<>();
    long end = 0;
    for (int i = 0; i < count; i++) {
      long off = numbers.get(1 + 2 * i);
      long len = numbers.get(2 + 2 * i);
      if (off < end || len < 0 || off + len > realSize || off + len < off) {
        throw fail(name, at, "its sparse map has segment " + off + "+" + len + " out of order or past its size "
            + realSize);
      }
      end = off + len;
      segs.add(new long[] {off, len});
    }
    return segs;
  }

  private void skipData(long n) throws IOException {
    skip(n);
    remaining -= n;
  }

  private void requireRoom(String name, long at, long size) throws IOException {
    long left = limit - position;
    if (size > left) {
      throw fail(name, at, "the header claims " + size + " bytes, but the archive holds only " + Math.max(0, left)
          + " more");
    }
  }

  private void parsePax(byte[] body, Map<String, byte[]> pax, long at) throws IOException {
    int i = 0;
    while (i < body.length) {
      int sp = i;
      while (sp < body.length && body[sp] >= '0' && body[sp] <= '9') {
        sp++;
      }
      if (sp == i || sp >= body.length || body[sp] != ' ' || sp - i > 9) {
        throw fail(null, at, "a malformed extended header record at byte " + i);
      }
      int len = Integer.parseInt(new String(body, i, sp - i, StandardCharsets.US_ASCII));
      int end = i + len;
      if (len <= sp - i + 1 || end > body.length || body[end - 1] != '\n') {
        throw fail(null, at, "a malformed extended header record at byte " + i);
      }
      int eq = sp + 1;
      while (eq < end && body[eq] != '=') {
        eq++;
      }
      if (eq >= end) {
        throw fail(null, at, "an extended header record without '=' at byte " + i);
      }
      String key = new String(body, sp + 1, eq - sp - 1, StandardCharsets.UTF_8);
      byte[] value = java.util.Arrays.copyOfRange(body, eq + 1, end - 1);
      pax.put(key, value);
      i = end;
    }
  }

  private static String text(Map<String, byte[]> pax, String key) {
    byte[] v = pax.get(key);
    return v == null ? null : new String(v, StandardCharsets.UTF_8);
  }

  private long decimal(String key, String v, String name, long at) throws IOException {
    if (!v.matches("[0-9]{1,19}")) {
      throw fail(name, at, "extended header " + key + "=" + v + " is not a number");
    }
    try {
      return Long.parseLong(v);
    } catch (NumberFormatException e) {
      throw fail(name, at, "extended header " + key + "=" + v + " is too large");
    }
  }

  private Instant time(String key, String v, String name, long at) throws IOException {
    Instant t = PaxRecords.parseTime(v);
    if (t == null) {
      throw fail(name, at, "extended header " + key + "=" + v + " is not a time");
    }
    return t;
  }

  private long number(byte[] h, int off, int len, String field, long at) throws IOException {
    if ((h[off] & 0x80) != 0) { // base-256, big-endian, as GNU tar and star write large values
      if ((h[off] & 0x40) != 0) {
        throw fail(cString(h, 0, 100), at, "negative base-256 " + field);
      }
      long v = h[off] & 0x3f;
      for (int i = off + 1; i < off + len; i++) {
        if ((v >>> 55) != 0) {
          throw fail(cString(h, 0, 100), at, "base-256 " + field + " too large");
        }
        v = (v << 8) | (h[i] & 0xff);
      }
      return v;
    }
    long v = 0;
    int i = off;
    int end = off + len;
    while (i < end && (h[i] == ' ' || h[i] == 0)) {
      i++;
    }
    for (; i < end && h[i] >= '0' && h[i] <= '7'; i++) {
      v = (v << 3) | (h[i] - '0');
    }
    for (; i < end; i++) {
      if (h[i] != ' ' && h[i] != 0) {
        throw fail(cString(h, 0, 100), at, "header field " + field + " is not octal");
      }
    }
    return v;
  }

  private void checkSum(byte[] h, long at) throws IOException {
    long stored = number(h, 148, 8, "chksum", at);
    long unsigned = 0;
    long signed = 0;
    for (int i = 0; i < 512; i++) {
      int b = i >= 148 && i < 156 ? ' ' : h[i];
      unsigned += b & 0xff;
      signed += i >= 148 && i < 156 ? ' ' : h[i];
    }
    if (stored != unsigned && stored != signed) {
      throw fail(cString(h, 0, 100), at, "header checksum " + stored + " does not match its bytes (" + unsigned + ")");
    }
  }

  private static String cString(byte[] b, int off, int len) {
    int end = off;
    while (end < off + len && b[end] != 0) {
      end++;
    }
    return new String(b, off, end - off, StandardCharsets.UTF_8);
  }

  private static boolean isZero(byte[] b) {
    for (byte x : b) {
      if (x != 0) {
        return false;
      }
    }
    return true;
  }

  private static long pad(long size) {
    return (512 - (size % 512)) % 512;
  }

  private int readFully(byte[] b) throws IOException {
    int n = in.readNBytes(b, 0, b.length);
    position += n;
    return n;
  }

  private void skip(long n) throws IOException {
    byte[] scratch = n > 0 ? new byte[(int) Math.min(n, 1 << 16)] : null;
    while (n > 0) {
      int r = in.read(scratch, 0, (int) Math.min(n, scratch.length));
      if (r < 0) {
        throw fail(current == null ? null : current.name(), position, "the archive ends " + n + " bytes early");
      }
      n -= r;
      position += r;
    }
  }

  private TarFormatException fail(String member, long at, String what) {
    return new TarFormatException(member, "damaged or malicious archive " + source + (member == null ? "" : ", member "
        + member) + " (header at byte " + at + "): " + what);
  }

  /** A damaged, unsupported or crafted archive; the message names the member and offset. */
  static final class TarFormatException extends IOException {
    /** The member, or null. */
    private final String member;

    TarFormatException(String member, String message) {
      super(message);
      this.member = member;
    }

    String member() {
      return member;
    }
  }

  static Map<String, String> asText(Map<String, byte[]> m) {
    Map<String, String> out = new HashMap<>();
    m.forEach((k, v) -> out.put(k, new String(v, StandardCharsets.UTF_8)));
    return out;
  }
}
