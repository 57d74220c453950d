package dev.shade.offhost.backup;

import dev.shade.offhost.files.FilesExtractor;
import dev.shade.offhost.files.FilesManifest;
import dev.shade.offhost.tape.TapeLibrary;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Reads archives back from tape and checks every checksum: each chunk's (CRC-32C, or SHA-256 in
 * older archives) against the catalog and the archive's manifest (each regular file's SHA-256
 * against the manifest, for a files archive), the manifest's own SHA-256 against the one the catalog
 * recorded when the archive was written, and that every chunk the catalog lists is there. The
 * result of each archive is recorded in the catalog's {@code verifications}, and on tape after the
 * run ({@link VerifyRecordFile}).
 *
 * <p>Not thread-safe: one verify at a time per library.
 */
public final class VerifyService {
  /*
   * Archives are read cartridge by cartridge, in tape file order, so a real drive only winds
   * forward. A failure of one archive does not stop the run: the others are still read, so one
   * run names every damaged archive. A damaged chunk is named by its member; a tape that ends
   * inside an archive (a truncated cartridge) is named by the first chunk the catalog lists that
   * the archive did not deliver, and by the tape file. A files archive (shade backup run
   * --format files) is read whole by FilesExtractor.verify: every member's header, every regular
   * file's SHA-256 against its manifest and the manifest's against the catalog; a failure names
   * the cartridge, the tape file and the member (in the record's chunk column).
   */

  /** Which archives to verify: those on cartridge {@code cartridge} (null: any), of job {@code jobId} (-1: any). */
  public record Selection(String cartridge, long jobId) {
    /** Every archive of the catalog. */
    public static final Selection ALL = new Selection(null, -1);
  }

  /**
   * What a verify run found: one record per archive, as the catalog now holds them, and where
   * their record went on tape ({@code records}).
   */
  public record Result(Instant started, List<Catalog.VerificationRecord> archives, long bytes, double seconds,
      TapeRecords.Result records) {
    public Result {
      archives = List.copyOf(archives);
    }

    /** A result whose records were not put on tape. */
    public Result(Instant started, List<Catalog.VerificationRecord> archives, long bytes, double seconds) {
      this(started, archives, bytes, seconds, new TapeRecords.Result(List.of(), List.of()));
    }

    /** True when every archive passed (and there was at least one). */
    public boolean ok() {
      return !archives.isEmpty() && archives.stream().allMatch(a -> Catalog.OK.equals(a.outcome()));
    }

    /** The archives that failed. */
    public List<Catalog.VerificationRecord> failures() {
      return archives.stream().filter(a -> !Catalog.OK.equals(a.outcome())).toList();
    }
  }

  private VerifyService() {}

  /**
   * Verifies the archives of {@code selection} in {@code library}; {@code each} hears every
   * archive's record as soon as it is checked. Fails only when the selection holds no archive or
   * the catalog cannot be written; damaged archives are results, not exceptions.
   */
  public static Result verify(TapeLibrary library, Catalog catalog, Selection selection, BackupProgress progress,
      Consumer<Catalog.VerificationRecord> each) throws IOException {
    return verify(library, catalog, selection, progress, each, n -> { });
  }

  /**
   * {@link #verify(TapeLibrary, Catalog, Selection, BackupProgress, Consumer)}, then the
   * run's record (and any earlier one not on tape yet) written on tape ({@link TapeRecords});
   * {@code notes} hears where it went; why it could not go on tape is in the result's {@code
   * records}, and does not fail the run.
   */
  public static Result verify(TapeLibrary library, Catalog catalog, Selection selection, BackupProgress progress,
      Consumer<Catalog.VerificationRecord> each, Consumer<String> notes) throws IOException {
    long t0 = System.nanoTime();
    Instant started = Instant.ofEpochMilli(System.currentTimeMillis());
    List<Catalog.JobRecord> jobs = new ArrayList<>();
    for (Catalog.JobRecord j : catalog.jobs()) {
      if (Catalog.OK.equals(j.outcome()) && j.archive() != null
          && (Catalog.FORMAT_IMAGE.equals(j.format()) || Catalog.FORMAT_FILES.equals(j.format()))
          && (selection.cartridge() == null || selection.cartridge().equals(j.archive().cartridge()))
          && (selection.jobId() < 0 || selection.jobId() == j.id())) {
        jobs.add(j);
      }
    }
    if (jobs.isEmpty()) {
      throw new BackupException("nothing to verify: the catalog of " + library + " has no archive"
          + (selection.cartridge() != null ? " on cartridge " + selection.cartridge() : "")
          + (selection.jobId() >= 0 ? " of job " + selection.jobId() : ""));
    }
    jobs.sort(Comparator.comparing((Catalog.JobRecord j) -> j.archive().cartridge())
        .thenComparingInt(j -> j.archive().fileNumber()));
    Map<Long, List<ChunkEntry>> chunks = new HashMap<>();
    long total = 0;
    for (Catalog.JobRecord j : jobs) {
      List<ChunkEntry> c = catalog.chunks(j.archive().id());
      chunks.put(j.id(), c);
      for (ChunkEntry e : c) {
        total += e.zero() ? 0 : e.length();
      }
      if (Catalog.FORMAT_FILES.equals(j.format())) {
        total += j.bytes();
      }
    }
    List<Catalog.VerificationRecord> out = new ArrayList<>();
    long[] done = {0};
    for (Catalog.JobRecord j : jobs) {
      Catalog.VerificationRecord r = verifyOne(library, catalog, j, chunks.get(j.id()), started, done, total,
          progress);
      long id = catalog.addVerification(r);
      r = new Catalog.VerificationRecord(id, r.runStarted(), r.jobId(), r.archiveId(), r.cartridge(), r.fileNumber(),
          r.verified(), r.outcome(), r.bytes(), r.seconds(), r.chunk(), r.error());
      out.add(r);
      each.accept(r);
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    return new Result(started, out, done[0], seconds, TapeRecords.writePending(library, catalog, notes));
  }

  private static Catalog.VerificationRecord verifyOne(TapeLibrary library, Catalog catalog, Catalog.JobRecord job,
      List<ChunkEntry> listed, Instant runStarted, long[] done, long total, BackupProgress progress) {
    if (Catalog.FORMAT_FILES.equals(job.format())) {
      return verifyFiles(library, catalog, job, runStarted, done, total, progress);
    }
    long t0 = System.nanoTime();
    Catalog.ArchiveRecord a = job.archive();
    String where = "cartridge " + a.cartridge() + ", tape file " + a.fileNumber() + " (the " + job.level()
        + " archive of " + job.snapshot().volume() + "@" + job.snapshot().snapshot() + ", job " + job.id() + ")";
    Map<Long, ChunkEntry> byOffset = new HashMap<>();
    for (ChunkEntry c : listed) {
      byOffset.put(c.offset(), c);
    }
    Set<Long> seen = new HashSet<>();
    long[] bytes = {0};
    String chunk = null;
    String error = null;
    PieceReader reader = null;
    String truncated = "";
    try {
      List<PieceEntry> pieces = catalog.pieces(a);
      reader = new PieceReader(library, job, pieces, n -> { }, "verify");
      try (PieceReader r = reader) {
        ImageArchiveReader.Contents contents;
        try {
          contents = ImageArchiveReader.read(pieces.size(), r, job.chunkSize(),
            new ImageArchiveReader.Handler() {
              @Override
              public boolean wants(long offset) {
                return true;
              }

              @Override
              public void chunk(long offset, byte[] data, int length, String got) throws IOException {
                ChunkEntry e = byOffset.get(offset);
                String member = ChunkEntry.memberName(offset);
                if (e == null || e.zero()) {
                  throw new ImageArchiveReader.ArchiveException(member, "chunk " + member
                      + " is not in the catalog's list of the archive", null);
                }
                if (!got.equals(e.checksum()) || length != e.length()) {
                  throw new ImageArchiveReader.ArchiveException(member, "chunk " + member + " is damaged: its "
                      + length + " bytes have " + a.chunkChecksum() + " " + got + ", the catalog says " + e.length() + " bytes with "
                      + e.checksum(), null);
                }
                seen.add(offset);
                bytes[0] += length;
                done[0] += length;
                progress.update(done[0], total);
              }
            });
        } catch (ImageArchiveReader.ArchiveException e) {
          truncated = r.truncation(); // before the reader is closed
          throw e;
        }
        r.finish();
        if (!contents.manifestSha256().equals(a.manifestSha256())) {
          throw new ImageArchiveReader.ArchiveException(ImageManifest.MANIFEST_MEMBER, "its manifest has SHA-256 "
              + contents.manifestSha256() + ", the catalog says " + a.manifestSha256(), null);
        }
        String missing = firstMissing(listed, seen);
        if (missing != null) {
          throw new ImageArchiveReader.ArchiveException(missing, "chunk " + missing
              + " is listed in the catalog but not in the archive", null);
        }
      }
    } catch (ImageArchiveReader.ArchiveException e) {
      chunk = e.member();
      boolean ended = !truncated.isEmpty();
      if (ended || chunk == null || chunk.equals(ImageManifest.MANIFEST_MEMBER) && e.getMessage().contains("ends")) {
        String missing = firstMissing(listed, seen);
        chunk = missing != null ? missing : chunk;
      }
      error = (reader == null ? where : reader.where()) + (chunk != null ? ", chunk " + chunk : "") + ": "
          + e.getMessage() + truncated;
    } catch (IOException | RuntimeException e) {
      chunk = firstMissing(listed, seen);
      error = where + (chunk != null ? ", at chunk " + chunk : "") + ": " + e.getMessage();
    }
    return new Catalog.VerificationRecord(-1, runStarted, job.id(), a.id(), a.cartridge(), a.fileNumber(),
        Instant.ofEpochMilli(System.currentTimeMillis()), error == null ? Catalog.OK : Catalog.FAILED, bytes[0],
        (System.nanoTime() - t0) / 1e9, chunk, error);
  }

  /** Verifies one files archive: reads every member of every piece and checks every checksum. */
  private static Catalog.VerificationRecord verifyFiles(TapeLibrary library, Catalog catalog,
      Catalog.JobRecord job, Instant runStarted, long[] done, long total, BackupProgress progress) {
    long t0 = System.nanoTime();
    Catalog.ArchiveRecord a = job.archive();
    String of = "the files archive of " + job.snapshot().volume() + "@" + job.snapshot().snapshot() + ", job "
        + job.id();
    String member = null;
    String error = null;
    long bytes = 0;
    try {
      List<PieceEntry> pieces = catalog.pieces(a);
      try (PieceReader r = new PieceReader(library, job, pieces, n -> { }, "verify")) {
        FilesExtractor.Archive archive = FilesRestoreService.archive(pieces, r, of);
        FilesExtractor.Result res;
        try {
          res = FilesExtractor.verify(archive);
        } catch (FilesExtractor.MemberException e) {
          member = e.member();
          error = archive.where(e.piece()) + (member != null ? ", member " + member : "") + ": " + e.getMessage()
              + r.truncation();
          res = null;
        }
        if (res != null) {
          bytes = res.bytes();
          r.finish();
          if (!res.manifestSha256().equals(a.manifestSha256())) {
            member = FilesManifest.MANIFEST_MEMBER;
            error = archive.where(pieces.size() - 1) + ", member " + member + ": its manifest has SHA-256 "
                + res.manifestSha256() + ", the catalog says " + a.manifestSha256();
          }
        }
      }
    } catch (IOException | RuntimeException e) {
      error = "cartridge " + a.cartridge() + ", tape file " + a.fileNumber() + " (" + of + "): " + e.getMessage();
    }
    done[0] += bytes;
    progress.update(done[0], total);
    return new Catalog.VerificationRecord(-1, runStarted, job.id(), a.id(), a.cartridge(), a.fileNumber(),
        Instant.ofEpochMilli(System.currentTimeMillis()), error == null ? Catalog.OK : Catalog.FAILED, bytes,
        (System.nanoTime() - t0) / 1e9, member, error);
  }

  /** The member of the first data chunk of {@code listed} not in {@code seen}, or null. */
  private static String firstMissing(List<ChunkEntry> listed, Set<Long> seen) {
    for (ChunkEntry c : listed) {
      if (!c.zero() && !seen.contains(c.offset())) {
        return c.member();
      }
    }
    return null;
  }
}
