package dev.shade.offhost.backup;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.github.luben.zstd.Zstd;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * Writes one image archive, a POSIX (PAX) tar stream: {@code shade-image.json} (the header), the
 * chunks that are not all zeros as {@code data/OFFSET} (16 hex digits), then
 * {@code manifest.json} with every chunk's checksum (the header's {@link ChunkChecksum}); on
 * tape, in one or more pieces (one tape file each, each a tar of its own) when the archive
 * reaches the end of a cartridge.
 * docs/tape-format.md describes the layout.
 *
 * <p>Not thread-safe; one archive per instance use.
 */
public final class ImageArchiveWriter {
  /** What was written: {@code archiveBytes} is the sum of the pieces' bytes. */
  public record Result(ImageManifest manifest, String manifestSha256, long archiveBytes, long dataBytes,
      List<PieceEntry> pieces) {}

  /**
   * Where the pieces of an archive go, one tape file each, in order.
   *
   * <p>Implementations need not be thread-safe: one writer uses one from one thread.
   */
  public interface PieceOutput {
    /** Where a piece was started, and the stream its tar goes to. */
    record Started(OutputStream stream, String cartridge, int fileNumber) {}

    /** Starts piece {@code piece} (0 first), after the previous one ended. */
    Started begin(int piece) throws IOException;

    /**
     * True once the current piece's medium passed its early warning: the writer ends the piece at
     * the next member boundary, within the room the medium keeps for a trailer.
     */
    boolean full();

    /** Ends the current piece, whose tar is finished (on tape: its last record and a filemark). */
    void end() throws IOException;

    /** One piece into {@code out}, never full; {@code end} leaves the stream open. */
    static PieceOutput single(OutputStream out) {
      return new PieceOutput() {
        @Override
        public Started begin(int piece) {
          return new Started(out, "-", 0);
        }

        @Override
        public boolean full() {
          return false;
        }

        @Override
        public void end() {}
      };
    }
  }

  /** The last member of every piece but the last: what the piece held, and that the archive goes on. */
  public static final String CONTINUED_MEMBER = "continued.json";
  /** The format of {@link #CONTINUED_MEMBER}. */
  public static final String PIECE_FORMAT = "shade-piece-1";

  private static final ObjectMapper JSON = new ObjectMapper();

  /*
   * The data path is a pipeline of three stages on three threads, so that reading, checksumming
   * and writing overlap instead of taking turns:
   *
   *   read   adjacent chunks are read together, in runs of up to READ_BYTES (one NBD request
   *          each, which the client splits at the server's largest payload), up to
   *          READ_AHEAD_BYTES ahead of the run being written: the bounded queue that keeps the
   *          tape streaming while the network stalls. The source completes each read on its own
   *          thread (the NBD client's reply reader);
   *   hash   each run, once read, is checked for zero chunks and checksummed chunk by chunk on a
   *          hashing thread (HASH_THREADS of them, runs in parallel); with a zstd level in the
   *          header, each chunk is compressed there too, one frame per chunk, kept only when it
   *          is smaller (docs/tape-format.md, "Compression"), so the writing thread only copies;
   *   write  the calling thread takes the runs in order, writes their tar members and issues the
   *          read that reuses the buffer it has just finished with.
   *
   * Buffers: READ_AHEAD_BYTES / the run size of them (at least two), reused round robin: a
   * buffer is read into again only after its run is written. shade bench backup measures the
   * path (docs/performance.md, "Off-host backup"): before, with 64 KiB chunks each read as a
   * request of its own, four in flight, and hashed on the writing thread, a full backup of a
   * 256 MiB volume reached 0.40 x nbdcopy of the same snapshot on an idle machine; on a busy
   * one the full is CPU-bound either way (SHA-256 of every byte, the checksum then), and this
   * path spends about 10 % less CPU per full. CRC-32C, the default checksum since, costs a
   * tenth of SHA-256's CPU.
   */

  /**
   * Bytes of adjacent chunks asked for in one read (a run is at least one chunk); the system
   * property {@code shade.backup.readBytes} changes it.
   */
  static final int READ_BYTES = Math.max(4096, Integer.getInteger("shade.backup.readBytes", 4 << 20));
  /** Bytes read ahead of the run being written: the bound of the read-ahead queue. */
  static final long READ_AHEAD_BYTES = 64L << 20;
  /** Threads that checksum runs: half the processors, at least one, at most four. */
  static final int HASH_THREADS = Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors() / 2));

  /** Adjacent chunks read in one request: {@code count} chunks from {@code first} of the offset list. */
  record Run(int first, int count, long offset, int length) {}

  private ImageArchiveWriter() {}

  /** The offsets of the chunks of {@code chunkSize} that {@code ranges} touch, below {@code size}, in order. */
  public static List<Long> chunksOf(List<Range> ranges, int chunkSize, long size) {
    TreeSet<Long> offsets = new TreeSet<>();
    for (Range r : ranges) {
      long end = Math.min(r.end(), size);
      for (long c = r.offset() / chunkSize * chunkSize; c < end; c += chunkSize) {
        offsets.add(c);
      }
    }
    return new ArrayList<>(offsets);
  }

  /** Groups {@code offsets} into runs of adjacent chunks of at most {@code max(READ_BYTES, chunkSize)} bytes. */
  static List<Run> runsOf(List<Long> offsets, int chunkSize, long size) {
    int most = Math.max(1, READ_BYTES / chunkSize);
    List<Run> runs = new ArrayList<>();
    int i = 0;
    while (i < offsets.size()) {
      long o = offsets.get(i);
      if (o >= size) {
        i++;
        continue;
      }
      int n = 1;
      while (n < most && i + n < offsets.size() && offsets.get(i + n) == o + (long) n * chunkSize
          && offsets.get(i + n) < size) {
        n++;
      }
      long end = Math.min(size, o + (long) n * chunkSize);
      runs.add(new Run(i, n, o, (int) (end - o)));
      i += n;
    }
    return runs;
  }

  /**
   * Writes the archive of {@code header}'s snapshot to {@code out} (which the caller closes) as
   * one piece, reading the chunks at {@code chunkOffsets} from {@code source}. A chunk that reads
   * as zeros is left out of the archive; an incremental lists it in the manifest as a zero chunk.
   */
  public static Result write(OutputStream out, int tarBlockSize, ImageManifest header, List<Long> chunkOffsets,
      SnapshotSource source, BackupProgress progress) throws IOException {
    return write(PieceOutput.single(out), tarBlockSize, header, -1, chunkOffsets, source, progress);
  }

  /**
   * Writes the archive of {@code header}'s snapshot, for job {@code jobId} (-1: none), to the
   * pieces of {@code out}: a piece ends at the first member boundary after {@code out} says it
   * is {@link PieceOutput#full() full}, with a {@link #CONTINUED_MEMBER} that says what it held,
   * and the archive continues in the next piece, which starts with the header again (its
   * {@code piece} key counting from 0). The manifest, in the last piece, lists every piece.
   */
  public static Result write(PieceOutput out, int tarBlockSize, ImageManifest header, long jobId,
      List<Long> chunkOffsets, SnapshotSource source, BackupProgress progress) throws IOException {
    long size = header.snapshot().size();
    int chunkSize = header.chunkSize();
    boolean incremental = ImageManifest.INCREMENTAL.equals(header.level());
    long mtime = header.snapshot().created().toEpochMilli();
    // whole seconds: a time with milliseconds costs every chunk a PAX header of its own (1 KiB,
    // 1.6 % of a 64 KiB chunk), which tar's ustar header cannot hold
    long chunkMtime = Math.floorDiv(mtime, 1000) * 1000;
    Pieces pieces = new Pieces(out, tarBlockSize, header, jobId, mtime);
    pieces.begin();
    List<ChunkEntry> chunks = new ArrayList<>();
    long total = (long) chunkOffsets.size() * chunkSize;
    long done = 0;
    long dataBytes = 0;
    List<Run> runs = runsOf(chunkOffsets, chunkSize, size);
    int runBytes = Math.max(READ_BYTES / chunkSize, 1) * chunkSize;
    int window = (int) Math.max(2, Math.min(runs.size(), READ_AHEAD_BYTES / runBytes));
    window = Math.max(1, Math.min(window, runs.size()));
    byte[][] bufs = new byte[window][];
    int zstdLevel = header.zstdLevel();
    ChunkChecksum checksum = header.checksum();
    Map<Long, Long> stored = new HashMap<>();
    List<CompletableFuture<Hashed>> pending = new ArrayList<>();
    ExecutorService hasher = Executors.newFixedThreadPool(HASH_THREADS, r -> {
      Thread t = new Thread(r, "shade-backup-hash");
      t.setDaemon(true);
      return t;
    });
    try {
      int next = 0;
      for (int i = 0; i < runs.size(); i++) {
        while (next < runs.size() && next < i + window) {
          Run run = runs.get(next);
          int slot = next % window;
          if (bufs[slot] == null) {
            bufs[slot] = new byte[runBytes];
          }
          byte[] buf = bufs[slot];
          try {
            pending.add(source.readAsync(run.offset(), ByteBuffer.wrap(buf, 0, run.length()))
                .thenApplyAsync(v -> hash(buf, run, chunkSize, zstdLevel, checksum), hasher));
          } catch (IOException e) {
            // a connection that failed under an earlier read refuses new ones at once
            throw readFailure(run, source, e);
          }
          next++;
        }
        Run run = runs.get(i);
        byte[] buf = bufs[i % window];
        Hashed hashed;
        try {
          hashed = pending.set(i, null).get();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new InterruptedIOException("interrupted reading chunk " + ChunkEntry.memberName(run.offset()));
        } catch (ExecutionException e) {
          Throwable c = e.getCause() instanceof CompletionException && e.getCause().getCause() != null
              ? e.getCause().getCause() : e.getCause();
          throw readFailure(run, source, c);
        }
        for (int k = 0; k < run.count(); k++) {
          long offset = run.offset() + (long) k * chunkSize;
          int at = k * chunkSize;
          int len = (int) Math.min(chunkSize, size - offset);
          if (out.full()) {
            pieces.next(); // a member boundary past the early warning: continue in the next piece
          }
          if (hashed.shas[k] == null) {
            if (incremental) {
              ChunkEntry c = new ChunkEntry(offset, len, null, true);
              chunks.add(c);
              pieces.holds(c);
            }
          } else {
            ChunkEntry c = new ChunkEntry(offset, len, hashed.shas[k], false);
            byte[] frame = hashed.frames[k];
            TarArchiveEntry e = new TarArchiveEntry(frame == null ? c.member()
                : c.member() + ImageManifest.ZSTD_SUFFIX);
            e.setSize(frame == null ? len : frame.length);
            e.setMode(0644);
            e.setModTime(chunkMtime);
            e.setUserName("shade");
            e.setGroupName("shade");
            TarArchiveOutputStream tar = pieces.tar;
            tar.putArchiveEntry(e);
            if (frame == null) {
              tar.write(buf, at, len);
            } else {
              tar.write(frame);
              stored.put(offset, (long) frame.length);
            }
            tar.closeArchiveEntry();
            chunks.add(c);
            pieces.holds(c);
            dataBytes += len;
          }
          done += chunkSize;
        }
        progress.update(Math.min(done, total), total);
      }
    } finally {
      hasher.shutdownNow();
    }
    if (out.full()) {
      pieces.next(); // the manifest goes to a cartridge with room
    }
    ImageManifest manifest = header.complete(Instant.ofEpochMilli(System.currentTimeMillis()), chunks, stored);
    ObjectNode doc = manifest.toJson();
    if (jobId >= 0) {
      doc.put("job", jobId);
    }
    ArrayNode list = doc.putArray("pieces");
    for (PieceEntry e : pieces.done) {
      pieceJson(list.addObject(), e);
    }
    pieceJson(list.addObject(), pieces.current(-1)).putNull("bytes");
    byte[] body = JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(doc);
    member(pieces.tar, ImageManifest.MANIFEST_MEMBER, body, mtime, null);
    PieceEntry last = pieces.end();
    List<PieceEntry> all = new ArrayList<>(pieces.done);
    long archiveBytes = 0;
    for (PieceEntry e : all) {
      archiveBytes += e.bytes();
    }
    return new Result(manifest, Sha256.hex(body, 0, body.length), archiveBytes, dataBytes, List.copyOf(all));
  }

  private static ObjectNode pieceJson(ObjectNode o, PieceEntry e) {
    o.put("piece", e.piece()).put("cartridge", e.cartridge()).put("fileNumber", e.fileNumber())
        .put("bytes", e.bytes()).put("firstOffset", e.firstOffset()).put("endOffset", e.endOffset())
        .put("chunks", e.chunks());
    return o;
  }

  /** The piece being written and those before it. */
  private static final class Pieces {
    /** Where the pieces go. */
    private final PieceOutput out;
    /** The tar block size. */
    private final int blockSize;
    /** The archive's header. */
    private final ImageManifest header;
    /** The job, or -1. */
    private final long jobId;
    /** The members' modification time. */
    private final long mtime;
    /** The pieces ended so far. */
    final List<PieceEntry> done = new ArrayList<>();
    /** The tar of the current piece. */
    TarArchiveOutputStream tar;
    /** Where the current piece is. */
    private PieceOutput.Started started;
    /** The current piece's first chunk offset, its end, and its chunk count; -1, -1, 0 while empty. */
    private long first = -1;
    private long end = -1;
    private int count;

    Pieces(PieceOutput out, int blockSize, ImageManifest header, long jobId, long mtime) {
      this.out = out;
      this.blockSize = blockSize;
      this.header = header;
      this.jobId = jobId;
      this.mtime = mtime;
    }

    void begin() throws IOException {
      int piece = done.size();
      started = out.begin(piece);
      tar = new PassThroughTarOutputStream(started.stream(), blockSize);
      tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
      ObjectNode h = header.toJson();
      if (jobId >= 0) {
        h.put("job", jobId);
      }
      h.put("piece", piece);
      member(tar, ImageManifest.HEADER_MEMBER, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(h), mtime,
          header.format());
      first = -1;
      end = -1;
      count = 0;
    }

    void holds(ChunkEntry c) {
      if (count == 0) {
        first = c.offset();
      }
      end = c.offset() + c.length();
      count++;
    }

    PieceEntry current(long bytes) {
      return new PieceEntry(done.size(), started.cartridge(), started.fileNumber(), Math.max(0, bytes), first, end,
          count);
    }

    /** Ends the current piece with its continuation member and starts the next. */
    void next() throws IOException {
      ObjectNode c = JSON.createObjectNode().put("format", PIECE_FORMAT).put("kind", "continued");
      if (jobId >= 0) {
        c.put("job", jobId);
      }
      c.put("volumeUuid", header.snapshot().volumeUuid()).put("snapshotId", header.snapshot().snapshotId());
      pieceJson(c, current(0)).putNull("bytes");
      c.put("continued", true);
      member(tar, CONTINUED_MEMBER, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(c), mtime, null);
      end();
      begin();
    }

    /** Finishes the current piece's tar and its tape file. */
    PieceEntry end() throws IOException {
      tar.finish();
      out.end();
      PieceEntry e = current(tar.getBytesWritten());
      done.add(e);
      return e;
    }
  }

  /**
   * A run as the hashing thread leaves it: each chunk's checksum (null for zeros) and, when the
   * archive is compressed, its zstd frame (null where the chunk is stored plain).
   */
  private record Hashed(String[] shas, byte[][] frames) {}

  /** Scratch room for one chunk's zstd frame, per hashing thread (grown to the largest bound seen). */
  private static final ThreadLocal<byte[]> FRAME = ThreadLocal.withInitial(() -> new byte[0]);

  /**
   * The {@code checksum} of each chunk of {@code run} in {@code buf}, null for a chunk of zeros, and with
   * {@code zstdLevel} above 0 each chunk compressed as one zstd frame, kept only where it is
   * smaller than the chunk (a chunk that does not shrink is stored plain). Runs on a hashing
   * thread, so compression, like checksumming, stays off the thread that reads and writes.
   */
  private static Hashed hash(byte[] buf, Run run, int chunkSize, int zstdLevel, ChunkChecksum checksum) {
    String[] out = new String[run.count()];
    byte[][] frames = new byte[run.count()][];
    for (int k = 0; k < run.count(); k++) {
      int at = k * chunkSize;
      int len = Math.min(chunkSize, run.length() - at);
      if (!isZero(buf, at, len)) {
        out[k] = checksum.of(buf, at, len);
        if (zstdLevel > 0) {
          frames[k] = compress(buf, at, len, zstdLevel);
        }
      }
    }
    return new Hashed(out, frames);
  }

  /**
   * {@code buf[at, at + len)} as one zstd frame at {@code level}, with its content checksum, or
   * null when the frame is not smaller than the chunk.
   */
  static byte[] compress(byte[] buf, int at, int len, int level) {
    int bound = (int) Math.min(Integer.MAX_VALUE - 16, Zstd.compressBound(len));
    byte[] dst = FRAME.get();
    if (dst.length < bound) {
      dst = new byte[bound];
      FRAME.set(dst);
    }
    // with the frame's content checksum (4 bytes of XXH64): damage inside a frame is then found,
    // and named, as a damaged frame when it is decompressed, not only by the chunk's checksum
    long n = Zstd.compressByteArray(dst, 0, dst.length, buf, at, len, level, true);
    if (Zstd.isError(n)) {
      throw new IllegalStateException("zstd cannot compress a chunk of " + len + " bytes at level " + level + ": "
          + Zstd.getErrorName(n));
    }
    return n < len ? Arrays.copyOf(dst, (int) n) : null;
  }

  private static void member(TarArchiveOutputStream tar, String name, byte[] body, long mtime, String format)
      throws IOException {
    boolean pax = format != null;
    TarArchiveEntry e = new TarArchiveEntry(name);
    e.setSize(body.length);
    e.setMode(0644);
    e.setModTime(mtime);
    e.setUserName("shade");
    e.setGroupName("shade");
    if (pax) {
      // a POSIX extended header first, so the archive is PAX as every shade tape file
      e.addPaxHeader("comment", "shade image archive " + format);
    }
    tar.putArchiveEntry(e);
    tar.write(body);
    tar.closeArchiveEntry();
  }

  /**
   * The failure to read the chunk at {@code offset} from {@code source}, naming both and every
   * cause down the chain (a connection refusing reads after it failed says why it failed).
   */
  private static IOException readFailure(Run run, SnapshotSource source, Throwable failure) {
    String what = "cannot read chunk " + ChunkEntry.memberName(run.offset()) + (run.count() > 1 ? " or the "
        + (run.count() - 1) + " after it" : "") + " (offset " + run.offset() + ", " + run.length() + " bytes) of "
        + source.describe();
    StringBuilder why = new StringBuilder();
    java.util.Set<String> said = new java.util.HashSet<>();
    for (Throwable t = failure; t != null && why.length() < 1000; t = t.getCause()) {
      // each cause's parts once: the connection's messages repeat the export's URI, which 'what' names already
      for (String part : String.valueOf(t.getMessage()).split(": ")) {
        if (said.add(part) && !(part.length() >= 8 && what.contains(part))) {
          why.append(why.length() == 0 ? "" : ": ").append(part);
        }
      }
    }
    return new IOException(what + ": " + (why.length() == 0 ? String.valueOf(failure) : why), failure);
  }

  static boolean isZero(byte[] b, int len) {
    return isZero(b, 0, len);
  }

  /** Zeros that {@link #isZero} compares with ({@code Arrays.mismatch} is vectorized). */
  private static final byte[] ZEROS = new byte[64 * 1024];

  /** True if {@code b[off, off + len)} is all zeros. */
  static boolean isZero(byte[] b, int off, int len) {
    for (int at = off, end = off + len; at < end; at += ZEROS.length) {
      int n = Math.min(ZEROS.length, end - at);
      if (Arrays.mismatch(b, at, at + n, ZEROS, 0, n) >= 0) {
        return false;
      }
    }
    return true;
  }
}
