package dev.shade.offhost.backup;

import dev.shade.offhost.files.FilesExtractor;
import dev.shade.offhost.tape.CartridgeInfo;
import dev.shade.offhost.tape.TapeDrive;
import dev.shade.offhost.tape.TapeFileInfo;
import dev.shade.offhost.tape.TapeInputStream;
import dev.shade.offhost.tape.TapeLibrary;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Restores single files (and directories) from a snapshot's files archive into a directory,
 * reading only that archive's tape file; members that would land outside the directory are
 * refused ({@link FilesExtractor}).
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
    String where = "cartridge " + a.cartridge() + ", tape file " + a.fileNumber() + " (the files archive of "
        + job.snapshot().volume() + "@" + job.snapshot().snapshot() + ", job " + job.id() + ")";
    Optional<CartridgeInfo> c = library.find(a.cartridge());
    if (c.isEmpty()) {
      throw new BackupException("restore needs cartridge " + a.cartridge() + ", which is not in " + library + " ("
          + where + ")");
    }
    long limit = Long.MAX_VALUE;
    for (TapeFileInfo f : c.get().files()) {
      if (f.fileNumber() == a.fileNumber()) {
        limit = f.bytes();
      }
    }
    FilesExtractor.Result r;
    try (TapeDrive d = library.openForReading(c.get().slot())) {
      d.seekFile(a.fileNumber());
      r = FilesExtractor.extract(new ProgressInputStream(new TapeInputStream(d), limit == Long.MAX_VALUE ? 0 : limit,
          bytes), where, limit, patterns, dir, progress);
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

  private static boolean hasImage(Catalog catalog, String volume, String snapshot) {
    try {
      return catalog.find(volume, snapshot).isPresent();
    } catch (IOException e) {
      return false;
    }
  }
}
