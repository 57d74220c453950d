package dev.shade.offhost.backup;

import com.fasterxml.jackson.databind.ObjectMapper;
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
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import com.github.luben.zstd.Zstd;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * Reads one image archive written by {@link ImageArchiveWriter}: the header, the chunks a
 * {@link Handler} wants (each with its checksum computed while reading, of the kind the header
 * names: {@link ChunkChecksum}), and the manifest, against
 * which every chunk read is checked at the end.
 *
 * <p>Not thread-safe: one read per call, from the calling thread; the {@link Handler}'s
 * {@code chunk} is called from one worker thread of that read, in archive order (or from
 * {@link Handler#threads()} of them at once, in any order), and its {@code wants} from the
 * calling thread.
 */
public final class ImageArchiveReader {
  /** Decides which chunks to read and takes them. */
  public interface Handler {
    /** True to read the chunk at {@code offset}; otherwise it is skipped. */
    boolean wants(long offset);

    /**
     * The chunk at {@code offset}: {@code data[0, length)}, whose checksum (of the archive's
     * {@link ChunkChecksum}, as its header names it) is {@code checksum};
     * {@code data} is reused once this returns. Called from the read's worker thread.
     */
    void chunk(long offset, byte[] data, int length, String checksum) throws IOException;

    /**
     * How many chunks the read checksums and hands to {@link #chunk} at once, each on a worker
     * thread of its own. 1, the default: {@code chunk} is called from one thread, one chunk at a
     * time, in archive order. More: from that many threads at once, in any order, so
     * {@code chunk} must be thread-safe; a failure still names the first chunk, in archive order,
     * that failed, but later chunks may have been handled before it was seen.
     */
    default int threads() {
      return 1;
    }
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

  private static final ObjectMapper JSON = new ObjectMapper();

  private ImageArchiveReader() {}

  /*
   * Two stages on two threads, so that reading the tape and checksumming + handling overlap
   * (piece by piece: a piece's chunks are all handled before the next piece is opened):
   * the calling thread parses the tar stream and reads each wanted chunk into a free buffer of
   * a small pool (BUFFER_BYTES in all, at least two buffers); one worker thread takes the chunks
   * in archive order, computes each checksum and hands the chunk to the Handler. So the Handler
   * is called from that one thread, one chunk at a time, in order. A buffer is reused only once
   * its chunk is handled; the worker's first failure ends the read with that exception.
   *
   * A Handler with threads() > 1 gets that many workers, which take the chunks as they come,
   * so checksums (SHA-256 the most expensive step of a restore, 0.52 CPU s per GiB with the
   * SHA-NI intrinsic; CRC-32C a tenth of that) run on several cores. The buffers are still taken in a ring and the futures
   * waited for oldest first: a buffer is reused only once the chunk read into it `slots`
   * chunks ago is handled, and the first failure in archive order is the one reported.
   *
   * A `.zst` member (a compressed archive's chunk, one zstd frame) is read as it is into a frame
   * buffer beside the slot's chunk buffer, and decompressed into the chunk buffer on the worker,
   * before its checksum: the Handler sees the chunk's bytes, whether the archive is compressed
   * or not.
   */

  /** Bytes of chunk buffers between the reading and the checksumming thread. */
  static final long BUFFER_BYTES = 32L << 20;


  /** The tape files of an archive's pieces. */
  @FunctionalInterface
  public interface PieceInput {
    /** The stream of piece {@code piece} (0 first), at its start; called once per piece, in order. */
    InputStream open(int piece) throws IOException;
  }

  /** Reads the archive in {@code in} (one piece) to its end; returns its manifest. */
  public static Contents read(InputStream in, int maxChunk, Handler handler) throws IOException {
    return read(1, p -> in, maxChunk, handler);
  }

  /**
   * Reads the archive of {@code pieces} pieces from {@code in}, each to its end; returns its
   * manifest. Every piece must start with the archive's header (its {@code piece} key counting
   * from 0), every piece but the last must end with {@link ImageArchiveWriter#CONTINUED_MEMBER},
   * and the last must hold the manifest.
   */
  public static Contents read(int pieces, PieceInput in, int maxChunk, Handler handler) throws IOException {
    ExecutorService worker = workers(handler.threads());
    try {
      return read(pieces, in, maxChunk, handler, worker);
    } finally {
      worker.shutdownNow();
      try {
        // after a failure, chunks still queued must not reach the handler while the caller looks
        // at what it gathered
        worker.awaitTermination(30, java.util.concurrent.TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /**
   * Worker threads for {@link #read(int, PieceInput, int, Handler, ExecutorService) reads} of
   * several archives one after the other, as a restore reads its chain: {@code threads} of them
   * (at least 1), daemons. The caller shuts them down.
   */
  public static ExecutorService workers(int threads) {
    int n = Math.max(1, threads);
    AtomicInteger started = new AtomicInteger();
    return Executors.newFixedThreadPool(n, r -> {
      Thread t = new Thread(r, n == 1 ? "shade-restore-hash" : "shade-restore-hash-" + started.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
  }

  /**
   * {@link #read(int, PieceInput, int, Handler)} with the checksums and {@code handler.chunk}
   * on {@code worker}'s threads, which must not be more than {@code handler.threads()}. When
   * this returns or throws, no chunk of the archive is being handled or will be.
   */
  public static Contents read(int pieces, PieceInput in, int maxChunk, Handler handler, ExecutorService worker)
      throws IOException {
    ArrayDeque<Future<?>> inFlight = new ArrayDeque<>();
    AtomicBoolean aborted = new AtomicBoolean();
    try {
      return read(pieces, in, maxChunk, handler, worker, inFlight, aborted);
    } catch (IOException | RuntimeException | Error e) {
      // the chunks still queued or being checksummed do not reach the handler
      aborted.set(true);
      awaitQuietly(inFlight);
      throw e;
    }
  }

  private static Contents read(int pieces, PieceInput in, int maxChunk, Handler handler, ExecutorService worker,
      ArrayDeque<Future<?>> inFlight, AtomicBoolean aborted) throws IOException {
    Map<Long, String> read = new ConcurrentHashMap<>();
    int slots = (int) Math.max(2, Math.min(16, BUFFER_BYTES / Math.max(1, maxChunk)));
    byte[][] bufs = new byte[slots][];
    byte[][] frames = new byte[slots][]; // a compressed chunk's frame, as read, beside the buffer it decompresses into
    int nextSlot = 0;
    ImageManifest header = null;
    ImageManifest manifest = null;
    String manifestSha = null;
    for (int piece = 0; piece < pieces; piece++) {
      String member = null;
      boolean continued = false;
      boolean first = true;
      String at = pieces > 1 ? "piece " + (piece + 1) + " of " + pieces + ": " : "";
      try {
        TarArchiveInputStream tar = new TarArchiveInputStream(in.open(piece), "UTF-8");
        TarArchiveEntry e;
        while ((e = tar.getNextEntry()) != null) {
          member = e.getName();
          if (continued || manifest != null) {
            throw new ArchiveException(member, at + "member " + member + " follows the end of the piece", null);
          }
          if (first) {
            if (!member.equals(ImageManifest.HEADER_MEMBER)) {
              throw new ArchiveException(member, at + "not a shade image archive: its first member is " + member
                  + ", not " + ImageManifest.HEADER_MEMBER, null);
            }
            byte[] body = readAll(tar);
            ImageManifest h = ImageManifest.parse(body);
            int number = JSON.readTree(body).path("piece").asInt(0);
            if (number != piece) {
              throw new ArchiveException(member, at + "this tape file is piece " + (number + 1) + " of its archive", null);
            }
            if (header == null) {
              header = h;
            } else if (!h.snapshot().equals(header.snapshot()) || !h.started().equals(header.started())) {
              throw new ArchiveException(member, at + "this tape file is a piece of another archive (of "
                  + h.snapshot() + ", started " + h.started() + "), not of the archive of " + header.snapshot()
                  + " started " + header.started(), null);
            }
            first = false;
          } else if (member.equals(ImageManifest.MANIFEST_MEMBER)) {
            if (piece != pieces - 1) {
              throw new ArchiveException(member, at + "the archive ends in this piece, but " + pieces
                  + " pieces were expected", null);
            }
            byte[] body = readAll(tar);
            manifestSha = Sha256.hex(body, 0, body.length);
            manifest = ImageManifest.parse(body);
          } else if (member.equals(ImageArchiveWriter.CONTINUED_MEMBER)) {
            if (piece == pieces - 1) {
              throw new ArchiveException(member, at + "the archive continues after its last expected piece", null);
            }
            readAll(tar);
            continued = true;
          } else if (member.startsWith("data/")) {
            boolean zstd = member.endsWith(ImageManifest.ZSTD_SUFFIX);
            long offset = Long.parseUnsignedLong(member.substring(5, member.length()
                - (zstd ? ImageManifest.ZSTD_SUFFIX.length() : 0)), 16);
            if (e.getSize() > maxChunk) {
              throw new ArchiveException(member, at + "chunk " + member + " has " + e.getSize()
                  + " bytes, more than the " + maxChunk + " of a chunk", null);
            }
            if (handler.wants(offset)) {
              int len = (int) e.getSize();
              if (inFlight.size() == slots) {
                take(inFlight);
              }
              int slot = nextSlot++ % slots;
              if (bufs[slot] == null) {
                bufs[slot] = new byte[maxChunk];
              }
              byte[] buf = bufs[slot];
              if (zstd && frames[slot] == null) {
                frames[slot] = new byte[maxChunk];
              }
              byte[] frame = zstd ? frames[slot] : null;
              int n = tar.readNBytes(zstd ? frame : buf, 0, len);
              if (n != len) {
                throw new ArchiveException(member, at + "chunk " + member + " ends after " + n + " of " + len
                    + " bytes", null);
              }
              String name = member;
              String where = at;
              ChunkChecksum checksum = header.checksum();
              inFlight.add(worker.submit(() -> {
                if (aborted.get()) {
                  return null;
                }
                // decompressed here, on the worker, so the reading thread only moves bytes
                int size = zstd ? decompress(name, where, frame, len, buf) : len;
                String sha = checksum.of(buf, 0, size);
                read.put(offset, sha);
                if (aborted.get()) {
                  return null;
                }
                try {
                  handler.chunk(offset, buf, size, sha);
                } catch (ArchiveException ex) {
                  throw ex;
                } catch (IOException | RuntimeException ex) {
                  throw new ArchiveException(name, where + "member " + name + ": " + ex.getMessage(), ex);
                }
                return null;
              }));
            }
          }
          member = null;
        }
        while (!inFlight.isEmpty()) {
          take(inFlight); // this piece's chunks handled before the next piece is opened
        }
      } catch (HandlingFailed f) {
        throw f.failure; // the first chunk, in archive order, that its handling refused
      } catch (ArchiveException | BackupException ex) {
        failEarlier(inFlight); // a chunk read before this failure, and refused, is named first
        throw ex; // BackupException: the piece's cartridge cannot be had, as PieceInput says
      } catch (IOException | RuntimeException ex) {
        failEarlier(inFlight);
        throw new ArchiveException(member, at + (member != null ? "member " + member + ": " : "") + ex.getMessage(), ex);
      }
      if (first) {
        throw new ArchiveException(null, at + "empty archive: no " + ImageManifest.HEADER_MEMBER, null);
      }
      if (piece < pieces - 1 && !continued) {
        throw new ArchiveException(ImageArchiveWriter.CONTINUED_MEMBER, at + "the piece ends without its "
            + ImageArchiveWriter.CONTINUED_MEMBER + ": it is cut short", null);
      }
    }
    if (manifest == null) {
      throw new ArchiveException(ImageManifest.MANIFEST_MEMBER, "the archive ends without its "
          + ImageManifest.MANIFEST_MEMBER, null);
    }
    if (manifest.checksum() != header.checksum()) {
      throw new ArchiveException(ImageManifest.MANIFEST_MEMBER, "the manifest's chunk checksum is "
          + manifest.checksum() + ", the header's " + header.checksum(), null);
    }
    for (ChunkEntry c : manifest.chunks()) {
      String got = read.remove(c.offset());
      if (got != null && !got.equals(c.checksum())) {
        String m = manifest.member(c);
        throw new ArchiveException(m, "chunk " + m + " has " + manifest.checksum() + " " + got
            + ", the manifest says " + c.checksum(), null);
      }
    }
    if (!read.isEmpty()) {
      long o = read.keySet().iterator().next();
      throw new ArchiveException(ChunkEntry.memberName(o), "chunk " + ChunkEntry.memberName(o)
          + " is not in the manifest", null);
    }
    return new Contents(manifest, manifestSha);
  }


  /**
   * Decompresses the zstd frame {@code frame[0, len)} of member {@code name} into {@code buf};
   * returns the chunk's length. A frame that does not decompress, or decompresses to more than
   * {@code buf} holds, is a damaged chunk, named as such.
   */
  private static int decompress(String name, String where, byte[] frame, int len, byte[] buf) throws ArchiveException {
    long n;
    try {
      n = Zstd.decompressByteArray(buf, 0, buf.length, frame, 0, len);
    } catch (RuntimeException e) {
      throw new ArchiveException(name, where + "chunk " + name + " is damaged: its zstd frame of " + len
          + " bytes does not decompress (" + e.getMessage() + ")", e);
    }
    if (Zstd.isError(n)) {
      throw new ArchiveException(name, where + "chunk " + name + " is damaged: its zstd frame of " + len
          + " bytes does not decompress (" + Zstd.getErrorName(n) + ")", null);
    }
    return (int) n;
  }

  /** A chunk's checksum or handling failed on the worker: {@code failure} says how. */
  private static final class HandlingFailed extends RuntimeException {
    private static final long serialVersionUID = 1L;
    final IOException failure;

    HandlingFailed(IOException failure) {
      super(failure.getMessage(), failure, false, false);
      this.failure = failure;
    }
  }

  /** Waits for the oldest chunk in flight to be checksummed and handled; a failure comes as {@link HandlingFailed}. */
  private static void take(ArrayDeque<Future<?>> inFlight) throws InterruptedIOException {
    try {
      inFlight.poll().get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while a chunk was checksummed");
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof Error err) {
        throw err;
      }
      throw new HandlingFailed(c instanceof IOException io ? io : new IOException(c.getMessage(), c));
    }
  }

  /** Waits for every chunk in flight to end, whatever its outcome; an interrupt stops the wait. */
  private static void awaitQuietly(ArrayDeque<Future<?>> inFlight) {
    for (Future<?> f; (f = inFlight.poll()) != null; ) {
      try {
        f.get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      } catch (ExecutionException | java.util.concurrent.CancellationException e) {
        // its failure is not the one reported
      }
    }
  }

  /**
   * After a failure of the reading thread: waits for the chunks read before it, and throws the
   * first of their failures, so that the archive's first bad chunk is the one named.
   */
  private static void failEarlier(ArrayDeque<Future<?>> inFlight) throws IOException {
    while (!inFlight.isEmpty()) {
      try {
        take(inFlight);
      } catch (HandlingFailed f) {
        throw f.failure;
      }
    }
  }

  private static byte[] readAll(InputStream in) throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    in.transferTo(b);
    return b.toByteArray();
  }
}
