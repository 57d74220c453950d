package dev.shade.offhost.backup;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.offhost.files.FilesArchiveWriter;
import dev.shade.offhost.files.FilesManifest;
import dev.shade.offhost.files.SnapshotAttachment;
import dev.shade.offhost.tape.CartridgeInfo;
import dev.shade.offhost.tape.EarlyWarningException;
import dev.shade.offhost.tape.EndOfMediumException;
import dev.shade.offhost.tape.TapeDrive;
import dev.shade.offhost.tape.TapeFileInfo;
import dev.shade.offhost.tape.TapeLabel;
import dev.shade.offhost.tape.TapeLibrary;
import dev.shade.offhost.tape.TapeOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.OptionalInt;
import java.util.function.Consumer;

/**
 * Runs one files backup: attaches the snapshot's read-only export on this (the backup) server,
 * archives its filesystem tree as a files archive appended to a cartridge of the pool in drive
 * 0, takes the attachment down (also on failure) and records the job, of format {@code files},
 * in the catalog. A files archive is always a whole tree: there are no incremental ones.
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
   * What a files backup did.
   *
   * @param labelled the label given to a blank cartridge for this backup, or null
   */
  public record Result(long jobId, SnapshotIdentity snapshot, String filesystem, String cartridge, String labelled,
      int fileNumber, long archiveBytes, FilesManifest.Counts counts, boolean acls, double seconds) {}

  private FilesBackupService() {}

  /**
   * Backs up the tree of the snapshot {@code id} served at {@code uri} (an NBD URI as nbdfuse
   * takes it) to {@code library}, recording it in {@code catalog}; {@code notes} hears what a
   * user should know (a cartridge labelled, ACLs left out for want of getfacl).
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
    // the cartridge, as BackupService picks one: the pool's newest with room, else a blank one labelled
    int slot = BackupService.chooseCartridge(library, request.pool());
    String labelled = null;
    CartridgeInfo info = library.cartridgeInfo(slot);
    if (info.blank()) {
      TapeLabel l = library.writeLabel(slot, TapePieces.newLabel(library, slot), request.pool(), false);
      labelled = l.label();
      notes.accept("labelled the blank cartridge of slot " + slot + " '" + l.label() + "' into pool " + request.pool());
      info = library.cartridgeInfo(slot);
    }
    String cartridge = info.label();
    OptionalInt inDrive = library.loadedSlot(0);
    if (inDrive.isPresent() && inDrive.getAsInt() != slot) {
      library.unload(0);
    }
    int elsewhere = library.driveOf(slot);
    if (elsewhere > 0) {
      library.unload(elsewhere);
    }
    TapeDrive drive = library.load(0, slot);
    drive.seekEndOfData();
    List<TapeFileInfo> files = library.cartridgeInfo(slot).files();
    if (!files.isEmpty() && !files.get(files.size() - 1).closed()) {
      drive.writeFilemarks(1); // an archive cut short by a crash: end its file
      files = library.cartridgeInfo(slot).files();
    }
    int fileNumber = files.size();

    long jobId = catalog.startJob(id, "full", -1, -1, request.pool(), 0, started, Catalog.FORMAT_FILES,
        JobOwner.current(library.directory()));
    FilesArchiveWriter.Result written;
    String filesystem;
    Path work = Files.createTempDirectory("shade-files-");
    try {
      try (SnapshotAttachment a = SnapshotAttachment.attach(uri, work)) {
        filesystem = a.filesystem();
        FilesManifest header = new FilesManifest(id.volume(), id.volumeUuid(), id.snapshot(), id.snapshotId(),
            id.created(), id.size(), filesystem, drive.blockSize(), started, null, null, request.writerMetadata());
        TapeOutputStream out = new TapeOutputStream(drive);
        try {
          written = FilesArchiveWriter.write(out, drive.blockSize(), a.root(), header, acls, progress::update);
          out.close();
        } catch (EarlyWarningException | EndOfMediumException e) {
          try {
            drive.writeFilemarks(1);
          } catch (IOException ignored) {
            e.addSuppressed(ignored);
          }
          throw new BackupException("files archive does not fit on cartridge " + cartridge + " (tape file "
              + fileNumber + " reached the end of the medium after " + out.bytes() + " bytes); spanning cartridges is"
              + " not built yet", e);
        } catch (IOException | RuntimeException e) {
          try {
            drive.writeFilemarks(1); // end the cut archive's file, so the next one starts a file of its own
          } catch (IOException ignored) {
            e.addSuppressed(ignored);
          }
          throw e;
        }
      }
    } catch (IOException | RuntimeException e) {
      catalog.failJob(jobId, String.valueOf(e.getMessage()), Instant.ofEpochMilli(System.currentTimeMillis()));
      throw e;
    } finally {
      deleteEmpty(work);
    }
    FilesManifest m = written.manifest();
    // one piece, holding no chunks: what the job record on tape says, so that a rebuilt catalog has the job
    List<PieceEntry> pieces = List.of(new PieceEntry(0, cartridge, fileNumber, written.archiveBytes(), -1, -1, 0));
    catalog.completeJob(jobId, pieces, written.archiveBytes(), written.manifestSha256(), List.of(),
        m.counts().dataBytes(), acls ? null : "ACLs not archived (no getfacl)", m.ended());
    writeRecord(catalog, drive, jobId, cartridge, pieces, notes);
    return new Result(jobId, id, filesystem, cartridge, labelled, fileNumber, written.archiveBytes(), m.counts(), acls,
        (System.nanoTime() - t0) / 1e9);
  }

  /**
   * Writes job {@code jobId}'s record, as the catalog has it now, as the tape file after its
   * archive (docs/tape-format.md, "Job records"), and notes where. A record that does not fit is
   * said, not fatal: the archive is on tape and catalogued; only a rebuild would miss the job.
   */
  private static void writeRecord(Catalog catalog, TapeDrive drive, long jobId, String cartridge,
      List<PieceEntry> pieces, Consumer<String> notes) throws IOException {
    Catalog.JobRecord job = catalog.job(jobId).orElseThrow();
    int fileNumber = pieces.get(0).fileNumber() + 1;
    TapeOutputStream out = new TapeOutputStream(drive);
    try {
      new JobRecordFile(job, pieces, List.of(), Instant.ofEpochMilli(System.currentTimeMillis()))
          .write(out, drive.blockSize());
      out.close();
    } catch (EarlyWarningException | EndOfMediumException e) {
      try {
        drive.writeFilemarks(1);
      } catch (IOException ignored) {
        e.addSuppressed(ignored);
      }
      notes.accept("the record of job " + jobId + " did not fit on cartridge " + cartridge + " after its archive: "
          + "the backup is good and catalogued, but a catalog rebuilt from the tapes would miss it");
      return;
    }
    catalog.setRecordLocation(jobId, cartridge, fileNumber);
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
