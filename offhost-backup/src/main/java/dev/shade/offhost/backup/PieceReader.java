package dev.shade.offhost.backup;

import dev.shade.offhost.tape.CartridgeInfo;
import dev.shade.offhost.tape.TapeDrive;
import dev.shade.offhost.tape.TapeFileInfo;
import dev.shade.offhost.tape.TapeInputStream;
import dev.shade.offhost.tape.TapeLibrary;
import java.io.Closeable;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * The tape files of one archive's pieces, opened in order for {@link ImageArchiveReader}: asks
 * for each piece's cartridge (and says so) and reads it in the drive it is in, or loads it into
 * drive 0 as a changer would; refuses a cartridge of another pool than the job's,
 * and tells a truncated cartridge (a tape file missing, shorter than the catalog says, or not
 * ended by a filemark) before reading it.
 *
 * <p>Not thread-safe: one restore reads one archive at a time.
 */
final class PieceReader implements ImageArchiveReader.PieceInput, Closeable {
  /** The library the cartridges are in. */
  private final TapeLibrary library;
  /** The job whose archive is read. */
  private final Catalog.JobRecord job;
  /** Its pieces. */
  private final List<PieceEntry> pieces;
  /** Told which cartridge each piece needs. */
  private final Consumer<String> notes;
  /** What reads the pieces, for messages: {@code restore} or {@code verify}. */
  private final String reading;
  /** The piece being read, -1 before the first. */
  private int current = -1;
  /** The drive holding the current piece's cartridge, or null. */
  private TapeDrive drive;
  /** The current piece's tape file. */
  private TapeInputStream in;

  PieceReader(TapeLibrary library, Catalog.JobRecord job, List<PieceEntry> pieces, Consumer<String> notes) {
    this(library, job, pieces, notes, "restore");
  }

  /**
   * A reader for {@code reading} ({@code restore} or {@code verify}). A restore refuses a tape
   * file whose size or filemark is not what the catalog says before reading it; a verify reads
   * it as far as it goes, so that its report names the chunk where the data ends.
   */
  PieceReader(TapeLibrary library, Catalog.JobRecord job, List<PieceEntry> pieces, Consumer<String> notes,
      String reading) {
    this.reading = reading;
    this.library = library;
    this.job = job;
    this.pieces = pieces;
    this.notes = notes;
  }

  /** What the piece being read is, for messages: cartridge, tape file, piece, archive, job. */
  String where() {
    PieceEntry p = pieces.get(Math.max(0, current));
    return p.where() + " (" + (pieces.size() > 1 ? "piece " + (p.piece() + 1) + " of " + pieces.size() + " of " : "")
        + "the " + job.level() + " archive of " + job.snapshot().volume() + "@" + job.snapshot().snapshot() + ", job "
        + job.id() + ")";
  }

  /** A note for a failure's message when the current tape file ended at the end of data; else "". */
  String truncation() {
    return in != null && in.endedAtEndOfData() ? " (cartridge " + pieces.get(current).cartridge()
        + " ends inside this tape file: it is truncated)" : "";
  }

  @Override
  public InputStream open(int piece) throws IOException {
    endPiece();
    current = piece;
    PieceEntry p = pieces.get(piece);
    Optional<CartridgeInfo> found = library.find(p.cartridge());
    if (found.isEmpty()) {
      throw new BackupException(reading + " needs cartridge " + p.cartridge() + ", which is not in " + library + " ("
          + where() + "); put it into a slot and " + reading + " again");
    }
    CartridgeInfo c = found.get();
    if (!c.pool().equals(job.pool())) {
      throw new BackupException("cartridge " + c.label() + " in slot " + c.slot() + " belongs to pool " + c.pool()
          + ", but job " + job.id() + " wrote its pieces to pool " + job.pool() + ": refusing it (" + where()
          + "); it is another cartridge with the same label");
    }
    List<TapeFileInfo> files = c.files();
    if (p.fileNumber() >= files.size()) {
      throw new BackupException("cartridge " + c.label() + " (slot " + c.slot() + ") is truncated: it ends after tape"
          + " file " + (files.size() - 1) + ", but the catalog has " + where());
    }
    TapeFileInfo f = files.get(p.fileNumber());
    if (reading.equals("restore") && (!f.closed() || f.bytes() != p.bytes())) {
      throw new BackupException("cartridge " + c.label() + " (slot " + c.slot() + ") is truncated or damaged: tape file "
          + p.fileNumber() + " has " + f.bytes() + " bytes" + (f.closed() ? "" : " and no filemark after them")
          + ", the catalog says " + p.bytes() + " bytes (" + where() + ")");
    }
    int inDrive = library.driveOf(c.slot());
    if (inDrive >= 0) {
      notes.accept("needs cartridge " + c.label() + " (slot " + c.slot() + ") for " + where() + ": it is in drive "
          + inDrive);
      drive = library.drive(inDrive);
    } else {
      // as a changer does: the cartridge in drive 0 goes back to its slot, the one needed comes in
      notes.accept("needs cartridge " + c.label() + " (slot " + c.slot() + ") for " + where()
          + ": loading it into drive 0");
      if (library.loadedSlot(0).isPresent()) {
        library.unload(0);
      }
      drive = library.load(0, c.slot());
    }
    drive.seekFile(p.fileNumber());
    in = new TapeInputStream(drive);
    return new FilterInputStream(in) {
      @Override
      public void close() {
        // the tar reader does not end the tape file; endPiece does
      }
    };
  }

  /** Checks that the last piece ended at its filemark. */
  void finish() throws IOException {
    endPiece();
  }

  private void endPiece() throws IOException {
    if (in != null) {
      in.skipToEnd();
      if (in.endedAtEndOfData()) {
        throw new BackupException("cartridge " + pieces.get(current).cartridge() + " is truncated: " + where()
            + " ends at the end of data, without its filemark");
      }
      in = null;
    }
    if (drive != null) {
      TapeDrive d = drive;
      drive = null;
      d.close();
    }
  }

  @Override
  public void close() throws IOException {
    if (drive != null) {
      TapeDrive d = drive;
      drive = null;
      in = null;
      d.close();
    }
  }
}
