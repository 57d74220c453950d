package dev.shade.offhost.backup;

import dev.shade.offhost.files.FilesExtractor;
import dev.shade.offhost.tape.TapeLibrary;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;

/**
 * Restores single files (and directories) from a snapshot's files archive into a directory,
 * reading only that archive's pieces, in order, loading each one's cartridge as it is needed
 * ({@link PieceReader}); members that would land outside the directory are refused, every
 * restored file's SHA-256 is checked against the manifest, and the snapshot's writer files come
 * back with the directory they belong to ({@link FilesExtractor}).
 *
 * <p>Not thread-safe: one restore at a time per library.
 */
public final class FilesRestoreService {
  /** What a restore did. */
  public record Result(Catalog.JobRecord job, Path dir, FilesExtractor.Result extracted, double seconds) {}

  private FilesRestoreService() {}

  /**
   * Restores the members of the newest files archive of snapshot {@code snapshot} (name, id or
   * {@code id=N}) of volume {@code volume} (uuid or name) that match {@code patterns} into
   * {@code dir}; {@code progress} hears each path restored.
   */
  public static Result restore(TapeLibrary library, Catalog catalog, String volume, String snapshot,
      List<String> patterns, Path dir, Consumer<String> progress) throws IOException {
    return restore(library, catalog, volume, snapshot, patterns, dir, progress, BackupProgress.NONE);
  }

  /** The same, {@code bytes} hearing how much of the archive's tape file was read. */
  public static Result restore(TapeLibrary library, Catalog catalog, String volume, String snapshot,
      List<String> patterns, Path dir, Consumer<String> progress, BackupProgress bytes) throws IOException {
    long t0 = System.nanoTime();
    Catalog.JobRecord job = catalog.find(volume, snapshot, Catalog.FORMAT_FILES).orElseThrow(() -> new BackupException(
        "no files backup of snapshot " + snapshot + " of volume " + volume + " in the catalog of " + library
            + (hasImage(catalog, volume, snapshot) ? " (it has an image backup, which restores whole)" : "")));
    Catalog.ArchiveRecord a = job.archive();
    String of = "the files archive of " + job.snapshot().volume() + "@" + job.snapshot().snapshot() + ", job "
        + job.id();
    String where = "cartridge " + a.cartridge() + ", tape file " + a.fileNumber() + " (" + of + ")";
    List<PieceEntry> pieces = catalog.pieces(a);
    FilesExtractor.Result r;
    try (PieceReader reader = new PieceReader(library, job, pieces, n -> { })) {
      FilesExtractor.Archive archive = archive(pieces, reader, of, bytes);
      try {
        r = FilesExtractor.extract(archive, patterns, dir, progress);
      } catch (FilesExtractor.MemberException e) {
        throw new BackupException("restore of files of " + job.snapshot().volume() + "@" + job.snapshot().snapshot()
            + " failed: " + archive.where(e.piece()) + ": " + e.getMessage() + reader.truncation(), e);
      }
      reader.finish();
    } catch (BackupException e) {
      throw e;
    } catch (IOException e) {
      throw new BackupException("restore of files of " + job.snapshot().volume() + "@" + job.snapshot().snapshot()
          + " failed: " + where + ": " + e.getMessage(), e);
    }
    if (r.manifestSha256() == null || !r.manifestSha256().equals(a.manifestSha256())) {
      throw new BackupException("restore of files of " + job.snapshot().volume() + "@" + job.snapshot().snapshot()
          + " failed: " + where + ": its manifest " + (r.manifestSha256() == null ? "is missing"
              : "has SHA-256 " + r.manifestSha256()) + ", the catalog says " + a.manifestSha256());
    }
    if (r.restored().isEmpty()) {
      throw new BackupException("nothing restored: no member of " + where + " matches " + String.join(" ", patterns));
    }
    return new Result(job, dir, r, (System.nanoTime() - t0) / 1e9);
  }

  /**
   * The pieces of a files archive as {@link FilesExtractor} reads them, each named {@code cartridge
   * X, tape file N (piece K of P of OF)}, {@code OF} saying which archive it is.
   */
  static FilesExtractor.Archive archive(List<PieceEntry> pieces, PieceReader reader, String of) {
    return archive(pieces, reader, of, BackupProgress.NONE);
  }

  /** The same, {@code bytes} hearing how much of all the pieces' bytes was read. */
  static FilesExtractor.Archive archive(List<PieceEntry> pieces, PieceReader reader, String of, BackupProgress bytes) {
    long[] before = new long[pieces.size() + 1];
    for (int i = 0; i < pieces.size(); i++) {
      before[i + 1] = before[i] + Math.max(0, pieces.get(i).bytes());
    }
    return new FilesExtractor.Archive() {
      @Override
      public int pieces() {
        return pieces.size();
      }

      @Override
      public java.io.InputStream open(int piece) throws IOException {
        return new ProgressInputStream(reader.open(piece), before[piece], before[pieces.size()], bytes);
      }

      @Override
      public long bytes(int piece) {
        return pieces.get(piece).bytes() > 0 ? pieces.get(piece).bytes() : Long.MAX_VALUE;
      }

      @Override
      public String where(int piece) {
        PieceEntry p = pieces.get(piece);
        return p.where() + " (" + (pieces.size() > 1 ? "piece " + (p.piece() + 1) + " of " + pieces.size() + " of "
            : "") + of + ")";
      }
    };
  }

  private static boolean hasImage(Catalog catalog, String volume, String snapshot) {
    try {
      return catalog.find(volume, snapshot).isPresent();
    } catch (IOException e) {
      return false;
    }
  }
}
