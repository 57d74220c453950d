package dev.shade.offhost.backup;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * Writes one image archive, a POSIX (PAX) tar stream: {@code shade-image.json} (the header), the
 * chunks that are not all zeros as {@code data/OFFSET} (16 hex digits), then
 * {@code manifest.json} with every chunk's SHA-256; on tape, in one or more pieces (one tape
 * file each, each a tar of its own) when the archive reaches the end of a cartridge.
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

  /** Chunks read ahead of the one being written. */
  static final int READ_AHEAD = 4;

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
    Pieces pieces = new Pieces(out, tarBlockSize, header, jobId, mtime);
    pieces.begin();
    List<ChunkEntry> chunks = new ArrayList<>();
    long total = (long) chunkOffsets.size() * chunkSize;
    long done = 0;
    long dataBytes = 0;
    // up to READ_AHEAD chunks in flight: the source reads while this thread checksums and writes
    int window = Math.min(READ_AHEAD, Math.max(1, chunkOffsets.size()));
    byte[][] bufs = new byte[window][chunkSize];
    List<CompletableFuture<Void>> pending = new ArrayList<>();
    int next = 0;
    for (int i = 0; i < chunkOffsets.size(); i++) {
      while (next < chunkOffsets.size() && next < i + window) {
        long o = chunkOffsets.get(next);
        int l = (int) Math.max(0, Math.min(chunkSize, size - o));
        try {
          pending.add(source.readAsync(o, ByteBuffer.wrap(bufs[next % window], 0, l)));
        } catch (IOException e) {
          // a connection that failed under an earlier read refuses new ones at once
          throw readFailure(o, l, source, e);
        }
        next++;
      }
      long offset = chunkOffsets.get(i);
      byte[] buf = bufs[i % window];
      int len = (int) Math.min(chunkSize, size - offset);
      CompletableFuture<Void> f = pending.set(i, null);
      if (len <= 0) {
        continue;
      }
      try {
        f.get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted reading chunk " + ChunkEntry.memberName(offset));
      } catch (ExecutionException e) {
        throw readFailure(offset, len, source, e.getCause());
      }
      if (out.full()) {
        pieces.next(); // a member boundary past the early warning: continue in the next piece
      }
      if (isZero(buf, len)) {
        if (incremental) {
          ChunkEntry c = new ChunkEntry(offset, len, null, true);
          chunks.add(c);
          pieces.holds(c);
        }
      } else {
        ChunkEntry c = new ChunkEntry(offset, len, Sha256.hex(buf, 0, len), false);
        TarArchiveEntry e = new TarArchiveEntry(c.member());
        e.setSize(len);
        e.setMode(0644);
        e.setModTime(mtime);
        e.setUserName("shade");
        e.setGroupName("shade");
        TarArchiveOutputStream tar = pieces.tar;
        tar.putArchiveEntry(e);
        tar.write(buf, 0, len);
        tar.closeArchiveEntry();
        chunks.add(c);
        pieces.holds(c);
        dataBytes += len;
      }
      done += chunkSize;
      progress.update(Math.min(done, total), total);
    }
    if (out.full()) {
      pieces.next(); // the manifest goes to a cartridge with room
    }
    ImageManifest manifest = header.complete(Instant.ofEpochMilli(System.currentTimeMillis()), chunks);
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
    member(pieces.tar, ImageManifest.MANIFEST_MEMBER, body, mtime, false);
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
      tar = new TarArchiveOutputStream(started.stream(), blockSize, "UTF-8");
      tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
      ObjectNode h = header.toJson();
      if (jobId >= 0) {
        h.put("job", jobId);
      }
      h.put("piece", piece);
      member(tar, ImageManifest.HEADER_MEMBER, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(h), mtime, true);
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
      member(tar, CONTINUED_MEMBER, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(c), mtime, false);
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

  private static void member(TarArchiveOutputStream tar, String name, byte[] body, long mtime, boolean pax)
      throws IOException {
    TarArchiveEntry e = new TarArchiveEntry(name);
    e.setSize(body.length);
    e.setMode(0644);
    e.setModTime(mtime);
    e.setUserName("shade");
    e.setGroupName("shade");
    if (pax) {
      // a POSIX extended header first, so the archive is PAX as every shade tape file
      e.addPaxHeader("comment", "shade image archive " + ImageManifest.FORMAT);
    }
    tar.putArchiveEntry(e);
    tar.write(body);
    tar.closeArchiveEntry();
  }

  /**
   * The failure to read the chunk at {@code offset} from {@code source}, naming both and every
   * cause down the chain (a connection refusing reads after it failed says why it failed).
   */
  private static IOException readFailure(long offset, int len, SnapshotSource source, Throwable failure) {
    String what = "cannot read chunk " + ChunkEntry.memberName(offset) + " (offset " + offset + ", " + len
        + " bytes) of " + source;
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
    int i = 0;
    for (; i + 8 <= len; i += 8) {
      if (b[i] != 0 || b[i + 1] != 0 || b[i + 2] != 0 || b[i + 3] != 0 || b[i + 4] != 0 || b[i + 5] != 0
          || b[i + 6] != 0 || b[i + 7] != 0) {
        return false;
      }
    }
    for (; i < len; i++) {
      if (b[i] != 0) {
        return false;
      }
    }
    return true;
  }
}
