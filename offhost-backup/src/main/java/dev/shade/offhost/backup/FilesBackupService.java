package dev.shade.offhost.backup;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.offhost.files.FilesArchiveWriter;
import dev.shade.offhost.files.FilesManifest;
import dev.shade.offhost.files.SnapshotAttachment;
import dev.shade.offhost.tape.EndOfMediumException;
import dev.shade.offhost.tape.TapeLabel;
import dev.shade.offhost.tape.TapeLibrary;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.function.Consumer;

/**
 * Runs one files backup: attaches the snapshot's read-only export on this (the backup) server,
 * archives its filesystem tree as a files archive appended to a cartridge of the pool in drive
 * 0 (in pieces on as many cartridges of the pool as it takes, as an image archive:
 * {@link TapePieces}), takes the attachment down (also on failure), records the job, of format
 * {@code files}, in the catalog and, when it succeeded, writes its record on tape. A files
 * archive is always a whole tree: there are no incremental ones.
 *
 * <p>Not thread-safe: one backup at a time per library (the library allows one process anyway).
 * Needs root: the attachment uses a loop device and mount.
 */
public final class FilesBackupService {
  /** What to back up where. */
  public record Request(String pool, JsonNode writerMetadata) {
    public Request {
      TapeLabel.requireName("pool", pool);
    }
  }

  /**
   * What a files backup did: where its first piece is ({@code cartridge}, {@code fileNumber}) and
   * all its pieces.
   *
   * @param labelled the label given to a blank cartridge for this backup (the first), or null
   * @param labelledAll every label given to a blank cartridge for this backup, in order
   */
  public record Result(long jobId, SnapshotIdentity snapshot, String filesystem, String cartridge, String labelled,
      int fileNumber, long archiveBytes, FilesManifest.Counts counts, boolean acls, double seconds,
      List<PieceEntry> pieces, List<String> labelledAll) {}

  private FilesBackupService() {}

  /**
   * Backs up the tree of the snapshot {@code id} served at {@code uri} (an NBD URI as nbdfuse
   * takes it) to {@code library}, recording it in {@code catalog}; {@code notes} hears what a
   * user should know (a cartridge labelled, the archive going on on the next cartridge, ACLs
   * left out for want of getfacl).
   */
  public static Result run(TapeLibrary library, Catalog catalog, SnapshotIdentity id, String uri,
      Request request, BackupProgress progress, Consumer<String> notes) throws IOException {
    long t0 = System.nanoTime();
    Instant started = Instant.ofEpochMilli(System.currentTimeMillis());
    boolean acls = FilesArchiveWriter.aclToolsInstalled();
    if (!acls) {
      notes.accept("ACLs are not archived: getfacl and setfacl (the acl package) are not installed");
    }
    InterruptedJobs.mark(catalog, library.directory(), notes);
    int blockSize = library.blockSize();
    // the cartridges as an image backup takes them: the pool's newest with room, else a blank one labelled
    TapePieces tape = new TapePieces(library, request.pool(), blockSize, notes);
    tape.mountFirst();
    long partBytes = partBytes(tape.trailerBytes(), blockSize);

    long jobId = catalog.startJob(id, "full", -1, -1, request.pool(), 0, started, Catalog.FORMAT_FILES,
        JobOwner.current(library.directory()));
    FilesArchiveWriter.Result written;
    String filesystem;
    Path work = Files.createTempDirectory("shade-files-");
    try {
      try (SnapshotAttachment a = SnapshotAttachment.attach(uri, work)) {
        filesystem = a.filesystem();
        FilesManifest header = new FilesManifest(id.volume(), id.volumeUuid(), id.snapshot(), id.snapshotId(),
            id.created(), id.size(), filesystem, blockSize, started, null, null, request.writerMetadata());
        try {
          written = FilesArchiveWriter.write(tape, blockSize, a.root(), header, jobId, acls, partBytes,
              tape::roomBeforeEarlyWarning, progress::update);
        } catch (EndOfMediumException e) {
          tape.abort(e);
          throw new BackupException("files archive of " + id + " does not fit: piece " + (tape.piece() + 1)
              + " on cartridge " + tape.cartridge() + " could not be ended within the " + tape.trailerBytes()
              + " bytes the drive allows after the early warning (a member's headers and up to " + partBytes
              + " bytes of its data go there)", e);
        } catch (IOException | RuntimeException e) {
          tape.abort(e); // end the cut archive's file, so the next one starts a file of its own
          throw e;
        }
      }
    } catch (IOException | RuntimeException e) {
      // its cut archive, if any, ends with a filemark; its record goes on tape as an image job's does, so that a
      // catalog rebuilt from the tapes has the failure too
      catalog.failJob(jobId, String.valueOf(e.getMessage()), Instant.ofEpochMilli(System.currentTimeMillis()));
      if (tape.mounted()) {
        try {
          writeRecord(catalog, tape, jobId, List.of());
        } catch (IOException | RuntimeException r) {
          e.addSuppressed(r); // the tape has no room left: the catalog alone has the failure
        }
      }
      throw e;
    } finally {
      deleteEmpty(work);
    }
    FilesManifest m = written.manifest();
    List<PieceEntry> pieces = written.pieces();
    catalog.completeJob(jobId, pieces, written.archiveBytes(), written.manifestSha256(), ChunkChecksum.SHA256, List.of(),
        m.counts().dataBytes(), acls ? null : "ACLs not archived (no getfacl)", m.ended());
    try {
      writeRecord(catalog, tape, jobId, pieces);
    } catch (IOException | RuntimeException e) {
      // the archive is on tape and in the catalog; only a rebuild from the tapes would miss the job
      notes.accept("the record of job " + jobId + " could not be written on tape (" + e.getMessage()
          + "); a catalog rebuilt from the tapes will not have it");
    }
    PieceEntry first = pieces.get(0);
    List<String> labelled = tape.labelled();
    return new Result(jobId, id, filesystem, first.cartridge(), labelled.isEmpty() ? null : labelled.get(0),
        first.fileNumber(), written.archiveBytes(), m.counts(), acls, (System.nanoTime() - t0) / 1e9, pieces,
        labelled);
  }

  /**
   * The most data bytes of one member that may follow the early warning, for a drive that takes
   * {@code trailerBytes} after it: what is left of the trailer once the record in flight, the
   * member's headers, continued.json and the tar's end have their room (at least 64 KiB; a drive
   * with a trailer smaller than that fails the job if it ever needs it). Where the drive does not
   * tell its room before the warning (st), every file with more data than this is stored in parts
   * of this size; where it does (the virtual library), a file is split only where a cartridge
   * ends, and this bounds how far its member may run past the warning
   * ({@link FilesArchiveWriter.Room}).
   */
  static long partBytes(long trailerBytes, int blockSize) {
    return Math.max(64 * 1024, trailerBytes - 3L * blockSize - FilesArchiveWriter.PART_OVERHEAD);
  }

  /** Writes job {@code jobId}'s record, as the catalog has it now, after its archive (docs/tape-format.md, "Job records"). */
  private static void writeRecord(Catalog catalog, TapePieces tape, long jobId, List<PieceEntry> pieces)
      throws IOException {
    Catalog.JobRecord job = catalog.job(jobId).orElseThrow();
    Catalog.RecordLocation at = tape.writeRecord(new JobRecordFile(job, pieces, List.of(),
        Instant.ofEpochMilli(System.currentTimeMillis()), catalog.owner(jobId).orElse(null)));
    catalog.setRecordLocation(jobId, at.cartridge(), at.fileNumber());
  }

  /** Removes the attachment's work directory when the chain left it empty (a lazy unmount may not have). */
  private static void deleteEmpty(Path work) {
    for (String sub : new String[] {"nbdfuse.log", "root", "nbd"}) {
      try {
        Files.deleteIfExists(work.resolve(sub));
      } catch (IOException ignored) {
        // still mounted or not empty: left for the operator, named in the error already
      }
    }
    try {
      Files.deleteIfExists(work);
    } catch (IOException ignored) {
      // as above
    }
  }
}
