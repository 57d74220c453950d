package dev.shade.offhost.backup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.offhost.tape.CartridgeInfo;
import dev.shade.offhost.tape.TapeDrive;
import dev.shade.offhost.tape.TapeFileInfo;
import dev.shade.offhost.tape.TapeInputStream;
import dev.shade.offhost.tape.TapeLibrary;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * Recreates a library's catalog from its tapes alone: every cartridge's label and tape files,
 * the job records ({@link JobRecordFile}) that every backup writes after its archive, the
 * records of verifications and drills ({@link VerifyRecordFile}, {@link DrillRecordFile}), and the
 * first member of every archive piece, which names its job and piece number; the records give
 * every catalog row back with its own ids and times, and each piece they list is checked
 * against what is on tape.
 *
 * <p>Not thread-safe: one rebuild at a time, in a catalog nothing else writes.
 */
public final class CatalogRebuild {
  /*
   * Only small tape files are read whole (labels and job records, one tar member each); of an
   * archive's pieces only the header member at their start is read, so a rebuild costs a few
   * records per tape file, not the archives' size (Bareos's bscan reads every volume to the end
   * and still cannot give back job times: they are not on its tapes).
   *
   * What is reported (problems) and still rebuilt: a job record listing a piece that is not
   * where it says (the cartridge missing, truncated, or that tape file holding something else).
   * What is reported and not rebuilt: pieces of a job without a record (a backup cut short, or an
   * archive written before job records existed), records that cannot be read. What is only noted:
   * pieces of a job whose record says it failed (the tape file a failed or interrupted backup left
   * behind); the job is recreated as failed, without an archive.
   */

  /**
   * What a rebuild found and did.
   *
   * @param cartridges labelled cartridges scanned
   * @param blank blank cartridges
   * @param jobs jobs recreated (with archives, pieces and chunks)
   * @param problems what does not add up, each naming the cartridge (and tape file)
   * @param verifications verifications recreated from their records ({@link VerifyRecordFile})
   * @param drills drills recreated from their records ({@link DrillRecordFile})
   */
  public record Result(int cartridges, int blank, int jobs, int archives, int pieces, long chunks,
      List<String> problems, double seconds, int verifications, int drills) {}

  /** A verification or drill as its record on tape has it, and where that record was found. */
  private record Row<T>(T row, java.time.Instant written, Catalog.RecordLocation at) {}

  /** A job record and where it was found. */
  private record Found(JobRecordFile record, Catalog.RecordLocation at) {}

  /** The header of an archive piece as found on tape. */
  private record Seen(long jobId, int piece, long bytes, boolean closed) {}

  /** The job of a files archive's tape file: its header does not name it, its job record does. */
  private static final long ANY_JOB = Long.MIN_VALUE;

  private static final ObjectMapper JSON = new ObjectMapper();

  private CatalogRebuild() {}

  /**
   * Scans every cartridge of {@code library} and fills {@code catalog}, which must have no jobs;
   * {@code progress} counts cartridges, {@code notes} hears each cartridge and each problem.
   */
  public static Result rebuild(TapeLibrary library, Catalog catalog, BackupProgress progress,
      Consumer<String> notes) throws IOException {
    long t0 = System.nanoTime();
    int existing = catalog.jobs().size();
    if (existing > 0) {
      throw new BackupException("the catalog to rebuild already has " + existing + " job" + (existing == 1 ? "" : "s")
          + "; a rebuild starts from an empty one (" + library + ")");
    }
    int rows = catalog.verifications().size() + catalog.drills(null).size();
    if (rows > 0) {
      throw new BackupException("the catalog to rebuild already has " + rows + " verification and drill row"
          + (rows == 1 ? "" : "s") + "; a rebuild starts from an empty one (" + library + ")");
    }
    List<String> problems = new ArrayList<>();
    Consumer<String> problem = p -> {
      problems.add(p);
      notes.accept("problem: " + p);
    };
    Map<Long, Found> records = new TreeMap<>();
    Map<Long, Row<Catalog.VerificationRecord>> verifications = new TreeMap<>();
    Map<Long, Row<Catalog.DrillRecord>> drills = new TreeMap<>();
    Map<String, Map<Integer, Seen>> seen = new HashMap<>();
    Map<String, Integer> slotOf = new HashMap<>();
    int slots = library.slots();
    int labelled = 0;
    int blank = 0;
    for (int slot = 1; slot <= slots; slot++) {
      CartridgeInfo c;
      try {
        c = library.cartridgeInfo(slot);
      } catch (IOException e) {
        problem.accept("the cartridge of slot " + slot + " cannot be read: " + e.getMessage());
        progress.update(slot, slots);
        continue;
      }
      if (c.blank()) {
        blank++;
        progress.update(slot, slots);
        continue;
      }
      labelled++;
      if (slotOf.putIfAbsent(c.label(), slot) != null) {
        problem.accept("cartridge " + c.label() + " is in slot " + slotOf.get(c.label()) + " and in slot " + slot
            + "; the one in slot " + slot + " is left out");
        progress.update(slot, slots);
        continue;
      }
      notes.accept("scanning cartridge " + c.label() + " (slot " + slot + ", pool " + c.pool() + "): "
          + (c.files().size() - 1) + " tape file" + (c.files().size() == 2 ? "" : "s") + " after its label");
      Map<Integer, Seen> pieces = new HashMap<>();
      seen.put(c.label(), pieces);
      try (TapeDrive d = library.openForReading(slot)) {
        for (TapeFileInfo f : c.files()) {
          if (f.fileNumber() == 0) {
            continue;
          }
          String at = "cartridge " + c.label() + " (slot " + slot + "), tape file " + f.fileNumber();
          if (!f.closed()) {
            problem.accept(at + " is not ended by a filemark: the cartridge is truncated, or a write to it was cut"
                + " short");
          }
          try {
            if (f.kind().equals("image")) {
              JsonNode h = JSON.readTree(firstMember(d, f.fileNumber(), ImageManifest.HEADER_MEMBER));
              pieces.put(f.fileNumber(), new Seen(h.path("job").asLong(-1), h.path("piece").asInt(0), f.bytes(),
                  f.closed()));
            } else if (f.kind().equals("files")) {
              pieces.put(f.fileNumber(), new Seen(ANY_JOB, 0, f.bytes(), f.closed()));
            } else if (f.kind().equals("job")) {
              JobRecordFile r = JobRecordFile.parse(firstMember(d, f.fileNumber(), JobRecordFile.MEMBER));
              Found old = records.get(r.job().id());
              if (old != null) {
                problem.accept(at + " is a second record of job " + r.job().id() + " (the other is cartridge "
                    + old.at().cartridge() + ", tape file " + old.at().fileNumber() + "); the later one is kept");
              }
              if (old == null || r.written().isAfter(old.record().written())) {
                records.put(r.job().id(), new Found(r, new Catalog.RecordLocation(c.label(), f.fileNumber())));
              }
            } else if (f.kind().equals("verify")) {
              VerifyRecordFile r = VerifyRecordFile.parse(firstMember(d, f.fileNumber(), VerifyRecordFile.MEMBER));
              Catalog.RecordLocation here = new Catalog.RecordLocation(c.label(), f.fileNumber());
              for (Catalog.VerificationRecord v : r.verifications()) {
                keepLater(verifications, v.id(), new Row<>(v, r.written(), here), "verification", at, problem);
              }
            } else if (f.kind().equals("drill")) {
              DrillRecordFile r = DrillRecordFile.parse(firstMember(d, f.fileNumber(), DrillRecordFile.MEMBER));
              Catalog.RecordLocation here = new Catalog.RecordLocation(c.label(), f.fileNumber());
              for (Catalog.DrillRecord dr : r.drills()) {
                keepLater(drills, dr.id(), new Row<>(dr, r.written(), here), "drill", at, problem);
              }
            }
          } catch (IOException | RuntimeException e) {
            problem.accept(at + " cannot be read: " + e.getMessage());
          }
        }
      }
      progress.update(slot, slots);
    }

    java.util.Set<String> claimed = new java.util.HashSet<>();
    int jobs = 0;
    int archives = 0;
    int pieceCount = 0;
    long chunks = 0;
    for (Found found : records.values()) {
      JobRecordFile r = found.record();
      Catalog.JobRecord job = r.job();
      if (job.baseJobId() >= 0 && !records.containsKey(job.baseJobId())) {
        problem.accept("job " + job.id() + " (" + job.snapshot() + ") is an incremental on job " + job.baseJobId()
            + ", whose record is on none of the cartridges; it is recreated without its base");
        job = new Catalog.JobRecord(job.id(), job.snapshot(), job.level(), -1, job.baseSnapshotId(), job.pool(),
            job.chunkSize(), job.started(), job.ended(), job.outcome(), job.message(), job.bytes(), job.archive(),
            job.format());
      }
      if (job.archive() != null) {
        for (PieceEntry p : r.pieces()) {
          String what = "piece " + (p.piece() + 1) + " of " + r.pieces().size() + " of job " + job.id() + " ("
              + job.snapshot().volume() + "@" + job.snapshot().snapshot() + "), " + p.where();
          Map<Integer, Seen> on = seen.get(p.cartridge());
          Seen s = on == null ? null : on.get(p.fileNumber());
          if (on == null) {
            problem.accept(what + ": the cartridge is not in the library");
          } else if (s == null) {
            problem.accept(what + ": cartridge " + p.cartridge() + " has no such archive piece there"
                + " (the cartridge is truncated or was overwritten)");
          } else if (s.jobId() == ANY_JOB ? !Catalog.FORMAT_FILES.equals(job.format())
              : s.jobId() != job.id() || s.piece() != p.piece()) {
            problem.accept(what + ": that tape file holds piece " + (s.piece() + 1) + " of job " + s.jobId());
          } else if (s.jobId() == ANY_JOB && (!s.closed() || s.bytes() != p.bytes())) {
            problem.accept(what + ": the files archive's tape file has " + s.bytes() + " bytes"
                + (s.closed() ? "" : " without a filemark") + ", the record says " + p.bytes() + ": cartridge "
                + p.cartridge() + " is truncated");
          } else if (s.jobId() == ANY_JOB) {
            claimed.add(p.cartridge() + ":" + p.fileNumber());
          } else if (!s.closed() || s.bytes() != p.bytes()) {
            problem.accept(what + ": the tape file has " + s.bytes() + " bytes" + (s.closed() ? "" : " without a filemark")
                + ", the record says " + p.bytes() + ": cartridge " + p.cartridge() + " is truncated");
          }
        }
        archives++;
        pieceCount += r.pieces().size();
        chunks += r.chunks().size();
      }
      catalog.insertRecorded(job, r.pieces(), r.chunks(), found.at(), r.owner());
      jobs++;
    }
    // verifications and drills after the jobs they name
    for (Row<Catalog.VerificationRecord> v : verifications.values()) {
      if (!records.containsKey(v.row().jobId())) {
        notes.accept("verification " + v.row().id() + " (cartridge " + v.at().cartridge() + ", tape file "
            + v.at().fileNumber() + ") is of job " + v.row().jobId() + ", whose record is on none of the cartridges;"
            + " it is recreated all the same");
      }
      catalog.insertRecordedVerification(v.row(), v.at());
    }
    for (Row<Catalog.DrillRecord> dr : drills.values()) {
      catalog.insertRecordedDrill(dr.row(), dr.at());
    }
    // pieces no record accounts for
    for (Map.Entry<String, Map<Integer, Seen>> e : seen.entrySet()) {
      for (Map.Entry<Integer, Seen> p : new TreeMap<>(e.getValue()).entrySet()) {
        Seen s = p.getValue();
        if (s.jobId() == ANY_JOB) {
          if (!claimed.contains(e.getKey() + ":" + p.getKey())) {
            problem.accept("cartridge " + e.getKey() + ", tape file " + p.getKey() + " holds a files archive which no "
                + "job record on the cartridges names (a backup cut short, or its record was lost): not recreated");
          }
          continue;
        }
        Found f = records.get(s.jobId());
        if (f == null) {
          problem.accept("cartridge " + e.getKey() + ", tape file " + p.getKey() + " holds piece " + (s.piece() + 1)
              + " of " + (s.jobId() < 0 ? "an archive without a job number" : "job " + s.jobId())
              + ", which has no job record on the cartridges (a backup cut short, or its record was lost): not"
              + " recreated");
        } else if (f.record().job().archive() == null) {
          // a failed job's torn archive (an interrupted one's record is written by the next backup): not a problem
          notes.accept("cartridge " + e.getKey() + ", tape file " + p.getKey() + " holds piece " + (s.piece() + 1)
              + " of job " + s.jobId() + ", which failed (" + f.record().job().message() + "): its archive is not"
              + " recreated");
        }
      }
    }
    return new Result(labelled, blank, jobs, archives, pieceCount, chunks, List.copyOf(problems),
        (System.nanoTime() - t0) / 1e9, verifications.size(), drills.size());
  }

  /**
   * Keeps {@code row} as the one of {@code id} unless an earlier-found record of it was written
   * later; a second record of one row is a problem (the row is kept once).
   */
  private static <T> void keepLater(Map<Long, Row<T>> rows, long id, Row<T> row, String what, String at,
      Consumer<String> problem) {
    Row<T> old = rows.get(id);
    if (old != null) {
      problem.accept(at + " is a second record of " + what + " " + id + " (the other is cartridge "
          + old.at().cartridge() + ", tape file " + old.at().fileNumber() + "); the later one is kept");
    }
    if (old == null || row.written().isAfter(old.written())) {
      rows.put(id, row);
    }
  }

  /** The body of the first member of tape file {@code fileNumber}, which must be {@code name}. */
  private static byte[] firstMember(TapeDrive d, int fileNumber, String name) throws IOException {
    d.seekFile(fileNumber);
    TarArchiveInputStream tar = new TarArchiveInputStream(new TapeInputStream(d), "UTF-8");
    TarArchiveEntry e = tar.getNextEntry();
    if (e == null || !e.getName().equals(name)) {
      throw new IOException("its first member is " + (e == null ? "missing" : e.getName()) + ", not " + name);
    }
    if (e.getSize() > 256L << 20) {
      throw new IOException("its member " + name + " has " + e.getSize() + " bytes, too many for a " + name);
    }
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    tar.transferTo(b);
    return b.toByteArray();
  }
}
