package dev.shade.offhost.backup;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.HashMap;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * Reads one image archive written by {@link ImageArchiveWriter}: the header, the chunks a
 * {@link Handler} wants (each with its SHA-256 computed while reading), and the manifest, against
 * which every chunk read is checked at the end.
 *
 * <p>Not thread-safe.
 */
public final class ImageArchiveReader {
  /** Decides which chunks to read and takes them. */
  public interface Handler {
    /** True to read the chunk at {@code offset}; otherwise it is skipped. */
    boolean wants(long offset);

    /** The chunk at {@code offset}: {@code data[0, length)}, whose SHA-256 is {@code sha256}. */
    void chunk(long offset, byte[] data, int length, String sha256) throws IOException;
  }

  /** Thrown for a damaged or wrong archive; the message names the member. */
  public static final class ArchiveException extends IOException {
    private final String member;

    public ArchiveException(String member, String message, Throwable cause) {
      super(message, cause);
      this.member = member;
    }

    /** The member being read, or null. */
    public String member() {
      return member;
    }
  }

  /** What the archive held: its manifest and the SHA-256 of the manifest member's bytes. */
  public record Contents(ImageManifest manifest, String manifestSha256) {}

  private ImageArchiveReader() {}

  /** Reads the archive in {@code in} to its end; returns its manifest. */
  public static Contents read(InputStream in, int maxChunk, Handler handler) throws IOException {
    TarArchiveInputStream tar = new TarArchiveInputStream(in, "UTF-8");
    Map<Long, String> read = new HashMap<>();
    ImageManifest header = null;
    ImageManifest manifest = null;
    String manifestSha = null;
    byte[] buf = new byte[maxChunk];
    String member = null;
    try {
      TarArchiveEntry e;
      while ((e = tar.getNextEntry()) != null) {
        member = e.getName();
        if (header == null) {
          if (!member.equals(ImageManifest.HEADER_MEMBER)) {
            throw new ArchiveException(member, "not a shade image archive: its first member is " + member
                + ", not " + ImageManifest.HEADER_MEMBER, null);
          }
          header = ImageManifest.parse(readAll(tar));
        } else if (member.equals(ImageManifest.MANIFEST_MEMBER)) {
          byte[] body = readAll(tar);
          manifestSha = Sha256.hex(body, 0, body.length);
          manifest = ImageManifest.parse(body);
        } else if (member.startsWith("data/")) {
          long offset = Long.parseUnsignedLong(member.substring(5), 16);
          if (e.getSize() > maxChunk) {
            throw new ArchiveException(member, "chunk " + member + " has " + e.getSize() + " bytes, more than the "
                + maxChunk + " of a chunk", null);
          }
          if (handler.wants(offset)) {
            int len = (int) e.getSize();
            int n = tar.readNBytes(buf, 0, len);
            if (n != len) {
              throw new ArchiveException(member, "chunk " + member + " ends after " + n + " of " + len + " bytes", null);
            }
            String sha = Sha256.hex(buf, 0, len);
            read.put(offset, sha);
            handler.chunk(offset, buf, len, sha);
          }
        }
        member = null;
      }
    } catch (ArchiveException ex) {
      throw ex;
    } catch (IOException | RuntimeException ex) {
      throw new ArchiveException(member, (member != null ? "member " + member + ": " : "") + ex.getMessage(), ex);
    }
    if (header == null) {
      throw new ArchiveException(null, "empty archive: no " + ImageManifest.HEADER_MEMBER, null);
    }
    if (manifest == null) {
      throw new ArchiveException(ImageManifest.MANIFEST_MEMBER, "the archive ends without its "
          + ImageManifest.MANIFEST_MEMBER, null);
    }
    for (ChunkEntry c : manifest.chunks()) {
      String got = read.remove(c.offset());
      if (got != null && !got.equals(c.sha256())) {
        throw new ArchiveException(c.member(), "chunk " + c.member() + " has SHA-256 " + got + ", the manifest says "
            + c.sha256(), null);
      }
    }
    if (!read.isEmpty()) {
      long o = read.keySet().iterator().next();
      throw new ArchiveException(ChunkEntry.memberName(o), "chunk " + ChunkEntry.memberName(o)
          + " is not in the manifest", null);
    }
    return new Contents(manifest, manifestSha);
  }

  private static byte[] readAll(InputStream in) throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    in.transferTo(b);
    return b.toByteArray();
  }
}
