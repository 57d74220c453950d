package dev.shade.offhost.backup;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * Reads one image archive written by {@link ImageArchiveWriter}: the header, the chunks a
 * {@link Handler} wants (each with its SHA-256 computed while reading), and the manifest, against
 * which every chunk read is checked at the end.
 *
 * <p>Not thread-safe: one read per call, from the calling thread; the {@link Handler}'s
 * {@code chunk} is called from one worker thread of that read, in archive order, and its
 * {@code wants} from the calling thread.
 */
public final class ImageArchiveReader {
  /** Decides which chunks to read and takes them. */
  public interface Handler {
    /** True to read the chunk at {@code offset}; otherwise it is skipped. */
    boolean wants(long offset);

    /**
     * The chunk at {@code offset}: {@code data[0, length)}, whose SHA-256 is {@code sha256};
     * {@code data} is reused once this returns. Called from the read's worker thread.
     */
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

  /*
   * Two stages on two threads, so that reading the tape and checksumming + handling overlap:
   * the calling thread parses the tar stream and reads each wanted chunk into a free buffer of
   * a small pool (BUFFER_BYTES in all, at least two buffers); one worker thread takes the chunks
   * in archive order, computes each SHA-256 and hands the chunk to the Handler. So the Handler
   * is called from that one thread, one chunk at a time, in order. A buffer is reused only once
   * its chunk is handled; the worker's first failure ends the read with that exception.
   */

  /** Bytes of chunk buffers between the reading and the checksumming thread. */
  static final long BUFFER_BYTES = 32L << 20;

  /** Reads the archive in {@code in} to its end; returns its manifest. */
  public static Contents read(InputStream in, int maxChunk, Handler handler) throws IOException {
    ExecutorService worker = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "shade-restore-hash");
      t.setDaemon(true);
      return t;
    });
    try {
      return read(in, maxChunk, handler, worker);
    } finally {
      worker.shutdownNow();
    }
  }

  private static Contents read(InputStream in, int maxChunk, Handler handler, ExecutorService worker)
      throws IOException {
    TarArchiveInputStream tar = new TarArchiveInputStream(in, "UTF-8");
    Map<Long, String> read = new ConcurrentHashMap<>();
    int slots = (int) Math.max(2, Math.min(16, BUFFER_BYTES / Math.max(1, maxChunk)));
    byte[][] bufs = new byte[slots][];
    ArrayDeque<Future<?>> inFlight = new ArrayDeque<>();
    int nextSlot = 0;
    ImageManifest header = null;
    ImageManifest manifest = null;
    String manifestSha = null;
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
            if (inFlight.size() == slots) {
              await(inFlight.poll());
            }
            int slot = nextSlot++ % slots;
            if (bufs[slot] == null) {
              bufs[slot] = new byte[maxChunk];
            }
            byte[] buf = bufs[slot];
            int n = tar.readNBytes(buf, 0, len);
            if (n != len) {
              throw new ArchiveException(member, "chunk " + member + " ends after " + n + " of " + len + " bytes", null);
            }
            String name = member;
            inFlight.add(worker.submit(() -> {
              String sha = Sha256.hex(buf, 0, len);
              read.put(offset, sha);
              try {
                handler.chunk(offset, buf, len, sha);
              } catch (ArchiveException ex) {
                throw ex;
              } catch (IOException | RuntimeException ex) {
                throw new ArchiveException(name, "member " + name + ": " + ex.getMessage(), ex);
              }
              return null;
            }));
          }
        }
        member = null;
      }
      while (!inFlight.isEmpty()) {
        await(inFlight.poll());
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

  /** Waits for one chunk's checksum and handling; rethrows what they threw. */
  private static void await(Future<?> f) throws IOException {
    try {
      f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while a chunk was checksummed");
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof IOException io) {
        throw io;
      }
      if (c instanceof RuntimeException r) {
        throw r;
      }
      if (c instanceof Error err) {
        throw err;
      }
      throw new IOException(c);
    }
  }

  private static byte[] readAll(InputStream in) throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    in.transferTo(b);
    return b.toByteArray();
  }
}
