package dev.shade.offhost.backup;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.offhost.tape.CartridgeInfo;
import dev.shade.offhost.tape.EndOfMediumException;
import dev.shade.offhost.tape.TapeLabel;
import dev.shade.offhost.tape.TapeLibrary;
import java.io.IOException;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Runs one image backup: decides full or incremental, picks (or labels) a cartridge of the pool,
 * appends one archive as a new tape file in drive 0, continuing it in further pieces on the
 * pool's next cartridges when it reaches the end of one, records the job in the catalog and
 * writes the job's record on tape after the archive ({@link JobRecordFile}).
 *
 * <p>Not thread-safe: one backup at a time per library (the library allows one process anyway).
 */
public final class BackupService {
  /** Default bytes per chunk. */
  public static final int DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;
  /** The pool when none is given. */
  public static final String DEFAULT_POOL = "default";

  /**
   * What to back up how: {@code level} is {@code full}, {@code incremental} or {@code auto};
   * {@code zstdLevel} 1..19 compresses each chunk with zstd at that level (on the backup server's
   * hashing threads), 0 stores chunks plain; {@code checksum} is the chunks' checksum.
   */
  public record Request(String pool, String level, int chunkSize, JsonNode writerMetadata, int zstdLevel,
      ChunkChecksum checksum) {
    /** A request that stores chunks plain, with the default checksum. */
    public Request(String pool, String level, int chunkSize, JsonNode writerMetadata) {
      this(pool, level, chunkSize, writerMetadata, 0);
    }

    /** A request with the default checksum. */
    public Request(String pool, String level, int chunkSize, JsonNode writerMetadata, int zstdLevel) {
      this(pool, level, chunkSize, writerMetadata, zstdLevel, ChunkChecksum.DEFAULT);
    }

    public Request {
      java.util.Objects.requireNonNull(checksum, "checksum");
      if (zstdLevel < 0 || zstdLevel > 19) {
        throw new IllegalArgumentException("zstd level must be 0 (none) or 1..19: " + zstdLevel);
      }
      TapeLabel.requireName("pool", pool);
      if (!List.of("full", "incremental", "auto").contains(level)) {
        throw new IllegalArgumentException("level must be full, incremental or auto: " + level);
      }
      if (chunkSize < 4096 || chunkSize > 64 * 1024 * 1024 || Integer.bitCount(chunkSize) != 1) {
        throw new IllegalArgumentException("chunk size must be a power of two from 4 KiB to 64 MiB: " + chunkSize);
      }
    }
  }

  /**
   * What a backup did.
   *
   * @param fallback why a full was written where an incremental was asked for (or could have
   *     been, with {@code auto}); null when there was nothing to say
   * @param labelled the label given to a blank cartridge for this backup, or null (the first of
   *     {@code labelledAll})
   * @param cartridge the cartridge of the first piece, {@code fileNumber} its tape file
   * @param pieces the archive's pieces, one per cartridge it spans
   * @param labelledAll every label given to a blank cartridge for this backup
   * @param reconnects how often the source's connection broke and the backup reconnected to read again
   */
  public record Result(long jobId, SnapshotIdentity snapshot, String level, String requestedLevel, String fallback,
      long baseSnapshotId, String baseSnapshot, String cartridge, String labelled, int fileNumber, long archiveBytes,
      long dataBytes, int chunks, int zeroChunks, long bytesRead, double seconds, List<PieceEntry> pieces,
      List<String> labelledAll, int reconnects) {}

  private BackupService() {}

  /**
   * Backs up {@code source} to {@code library}, recording it in {@code catalog}; {@code notes}
   * hears decisions worth telling a user (a fallback to full, a cartridge labelled).
   */
  public static Result run(TapeLibrary library, Catalog catalog, SnapshotSource source, Request request,
      BackupProgress progress, Consumer<String> notes) throws IOException {
    long t0 = System.nanoTime();
    // a job an earlier process of this library left running is failed before this one starts
    JobOwner owner = JobOwner.current(library.directory());
    InterruptedJobs.mark(catalog, library.directory(), notes);
    Instant started = Instant.ofEpochMilli(System.currentTimeMillis());
    SnapshotIdentity id = source.identity();
    String level = ImageManifest.FULL;
    String fallback = null;
    Catalog.JobRecord base = null;
    List<Range> ranges = null;
    int chunkSize = request.chunkSize();
    if (!request.level().equals("full")) {
      Optional<Catalog.JobRecord> last = catalog.lastBackup(id.volumeUuid());
      if (last.isEmpty()) {
        fallback = "no earlier backup of volume " + id.volume() + " (" + id.volumeUuid() + ") in the catalog";
      } else if (last.get().snapshot().size() != id.size()) {
        fallback = "the volume's size changed since the last backup (snapshot " + last.get().snapshot().snapshot()
            + ", id " + last.get().snapshot().snapshotId() + ")";
      } else {
        Optional<List<Range>> changed = source.changedSince(last.get().snapshot().snapshotId());
        if (changed.isEmpty()) {
          fallback = "the base snapshot " + last.get().snapshot().snapshot() + " (id " + last.get().snapshot().snapshotId()
              + ") of the last backup no longer exists on the production host";
        } else {
          base = last.get();
          ranges = changed.get();
          level = ImageManifest.INCREMENTAL;
          chunkSize = base.chunkSize();
        }
      }
      if (fallback != null && request.level().equals("auto") && last.isEmpty()) {
        fallback = null; // a first backup is a full without anything to explain
      }
      if (fallback != null) {
        notes.accept("writing a full backup instead of an incremental: " + fallback);
      }
    }
    if (ranges == null) {
      ranges = source.allocated();
    }
    List<Long> offsets = ImageArchiveWriter.chunksOf(ranges, chunkSize, id.size());

    TapePieces tape = new TapePieces(library, request.pool(), chunkSize, notes);
    tape.mountFirst();
    // the records of interrupted jobs go on tape first, so that a catalog rebuilt from the tapes knows them as failed
    for (long interrupted : catalog.interruptedWithoutRecord(owner)) {
      try {
        writeRecord(catalog, tape, interrupted, List.of(), List.of());
      } catch (IOException | RuntimeException e) {
        notes.accept("the record of the interrupted job " + interrupted + " could not be written on tape ("
            + e.getMessage() + "); a catalog rebuilt from the tapes will not have it");
      }
    }
    int blockSize = library.blockSize();

    ImageManifest header = new ImageManifest(id, level, base == null ? -1 : base.snapshot().snapshotId(),
        base == null ? null : base.snapshot().snapshot(), chunkSize, blockSize, started, null,
        request.writerMetadata(), List.of(), request.zstdLevel(), java.util.Map.of(), request.checksum());
    long jobId = catalog.startJob(id, level, base == null ? -1 : base.id(), base == null ? -1 : base.snapshot().snapshotId(),
        request.pool(), chunkSize, started, owner);
    ImageArchiveWriter.Result written;
    try {
      try {
        written = ImageArchiveWriter.write(tape, blockSize, header, jobId, offsets, source, progress);
      } catch (EndOfMediumException e) {
        tape.abort(e);
        throw new BackupException("archive of " + id + " does not fit: " + tape.trailerTooSmall(tape.piece()), e);
      } catch (IOException | RuntimeException e) {
        tape.abort(e);
        throw e;
      }
    } catch (IOException | RuntimeException e) {
      catalog.failJob(jobId, String.valueOf(e.getMessage()), Instant.ofEpochMilli(System.currentTimeMillis()));
      if (tape.mounted()) {
        try {
          writeRecord(catalog, tape, jobId, List.of(), List.of());
        } catch (IOException | RuntimeException r) {
          e.addSuppressed(r); // the tape has no room left: the catalog alone has the failure
        }
      }
      throw e;
    }
    int reconnects = source.reconnects(); // the archive is read: no more come
    if (reconnects > 0) {
      notes.accept("the connection to " + source.describe() + " broke " + reconnects
          + (reconnects == 1 ? " time" : " times") + "; the backup reconnected and read again what was lost");
    }
    int zero = 0;
    for (ChunkEntry c : written.manifest().chunks()) {
      zero += c.zero() ? 1 : 0;
    }
    catalog.completeJob(jobId, written.pieces(), written.archiveBytes(), written.manifestSha256(), header.checksum(),
        written.manifest().chunks(), written.dataBytes(), fallback, written.manifest().ended());
    try {
      writeRecord(catalog, tape, jobId, written.pieces(), written.manifest().chunks());
    } catch (IOException | RuntimeException e) {
      // the archive is on tape and in the catalog; only a rebuild from the tapes would miss the job
      notes.accept("the record of job " + jobId + " could not be written on tape (" + e.getMessage()
          + "); a catalog rebuilt from the tapes will not have it");
    }
    long bytesRead = 0;
    for (long o : offsets) {
      bytesRead += Math.min(chunkSize, id.size() - o);
    }
    PieceEntry first = written.pieces().get(0);
    List<String> labelled = tape.labelled();
    return new Result(jobId, id, level, request.level(), fallback, header.baseSnapshotId(), header.baseSnapshot(),
        first.cartridge(), labelled.isEmpty() ? null : labelled.get(0), first.fileNumber(), written.archiveBytes(),
        written.dataBytes(), written.manifest().chunks().size() - zero, zero, bytesRead,
        (System.nanoTime() - t0) / 1e9, written.pieces(), labelled, reconnects);
  }

  /** Writes job {@code jobId}'s record, as the catalog has it now, after its archive, and notes where. */
  private static void writeRecord(Catalog catalog, TapePieces tape, long jobId, List<PieceEntry> pieces,
      List<ChunkEntry> chunks) throws IOException {
    Catalog.JobRecord job = catalog.job(jobId).orElseThrow();
    Catalog.RecordLocation at = tape.writeRecord(new JobRecordFile(job, pieces, chunks,
        Instant.ofEpochMilli(System.currentTimeMillis()), catalog.owner(jobId).orElse(null)));
    catalog.setRecordLocation(jobId, at.cartridge(), at.fileNumber());
  }

  /**
   * The cartridge the next archive of {@code pool} goes to: the library's own choice
   * ({@link TapeLibrary#choose}), else the pool's newest labelled cartridge short of its early
   * warning, else the first blank one. Fails when there is none of them.
   */
  static int chooseCartridge(TapeLibrary library, String pool) throws IOException {
    java.util.OptionalInt own = library.choose(pool); // a library without a changer prefers the cartridge in its drive
    if (own.isPresent()) {
      return own.getAsInt();
    }
    CartridgeInfo best = null;
    int blank = -1;
    for (CartridgeInfo c : library.list()) {
      if (c.blank()) {
        if (blank < 0) {
          blank = c.slot();
        }
      } else if (c.pool().equals(pool) && !c.earlyWarning() && (best == null || c.sequence() > best.sequence())) {
        best = c;
      }
    }
    if (best != null) {
      return best.slot();
    }
    if (blank >= 0) {
      return blank;
    }
    StringBuilder others = new StringBuilder();
    for (CartridgeInfo c : library.list()) {
      if (!c.blank() && !c.pool().equals(pool) && !c.earlyWarning()) {
        others.append(others.length() == 0 ? "" : ", ").append(c.label()).append(" (slot ").append(c.slot())
            .append(", pool ").append(c.pool()).append(')');
      }
    }
    throw new BackupException("no cartridge for pool " + pool + " in " + library
        + ": every cartridge of the pool is full and none is blank"
        + (others.length() == 0 ? "" : "; cartridges of other pools are not taken: " + others));
  }


}
