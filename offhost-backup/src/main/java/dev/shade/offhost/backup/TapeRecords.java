package dev.shade.offhost.backup;

import dev.shade.offhost.tape.CartridgeInfo;
import dev.shade.offhost.tape.TapeLibrary;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Puts the records of verifications and drills on tape ({@link VerifyRecordFile},
 * {@link DrillRecordFile}): every row of the catalog whose record is not on tape yet, so that a
 * catalog rebuilt from the tapes has them.
 *
 * <p>Not thread-safe: called by the one thread of a verify or a drill, which then has drive 0.
 */
public final class TapeRecords {
  /*
   * Where a record goes: on a cartridge of the pool of what was verified or drilled (a
   * verification: its job's pool; a drill: the pool of the first job of its chain), the pool's
   * newest cartridge short of its early warning, else a blank one labelled into the pool; exactly
   * where that pool's next archive would go (BackupService.chooseCartridge). A drill that found no
   * backup has no pool of its own: its record goes to the pool of the catalog's newest job, or,
   * in a catalog without jobs, to the pool of the first labelled cartridge that takes it.
   *
   * Each pool gets one tape file per kind: a verify run over two pools writes two verification
   * records. A record that cannot be written (no cartridge of the pool has room and none is blank)
   * leaves its rows without a record location; the next verify or drill writes them with its own,
   * so they reach the tape once there is room. That is also what brings the verifications and
   * drills of a catalog made before schema step 6 onto tape.
   */

  /**
   * What was put on tape.
   *
   * @param written the tape files written, one per pool and kind
   * @param notWritten why records could not go on tape, one message per pool; empty when all did
   */
  public record Result(List<Catalog.RecordLocation> written, List<String> notWritten) {
    public Result {
      written = List.copyOf(written);
      notWritten = List.copyOf(notWritten);
    }

    /** True when every record is on tape. */
    public boolean ok() {
      return notWritten.isEmpty();
    }
  }

  /** The records of one pool still to write. */
  private static final class Pending {
    /** Verifications of the pool without a record on tape. */
    final List<Catalog.VerificationRecord> verifications = new ArrayList<>();
    /** Drills of the pool without a record on tape. */
    final List<Catalog.DrillRecord> drills = new ArrayList<>();
  }

  private TapeRecords() {}

  /**
   * Writes a record of every verification and drill of {@code catalog} that has none on tape, on
   * cartridges of {@code library}, and records where each went; {@code notes} hears the
   * cartridges labelled and the records written. A record that cannot go on tape is a result
   * ({@link Result#notWritten}), not an exception: the verify or drill it belongs to still stands.
   */
  public static Result writePending(TapeLibrary library, Catalog catalog, Consumer<String> notes)
      throws IOException {
    Map<Long, Optional<String>> poolOfJob = new HashMap<>();
    Function<Long, Optional<String>> pool = id -> poolOfJob.computeIfAbsent(id, j -> {
      try {
        return catalog.job(j).map(Catalog.JobRecord::pool);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
    Map<String, Pending> byPool = new LinkedHashMap<>();
    List<Catalog.VerificationRecord> verifications = catalog.verificationsWithoutRecord();
    List<Catalog.DrillRecord> drills = catalog.drillsWithoutRecord();
    if (verifications.isEmpty() && drills.isEmpty()) {
      return new Result(List.of(), List.of());
    }
    String fallback = null;
    try {
      for (Catalog.VerificationRecord v : verifications) {
        String p = pool.apply(v.jobId()).orElse(null);
        if (p == null) {
          fallback = fallback != null ? fallback : fallbackPool(library, catalog);
          p = fallback;
        }
        byPool.computeIfAbsent(p, k -> new Pending()).verifications.add(v);
      }
      for (Catalog.DrillRecord d : drills) {
        String p = d.jobChain().isEmpty() ? null : pool.apply(d.jobChain().get(0)).orElse(null);
        if (p == null) {
          fallback = fallback != null ? fallback : fallbackPool(library, catalog);
          p = fallback;
        }
        byPool.computeIfAbsent(p, k -> new Pending()).drills.add(d);
      }
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
    List<Catalog.RecordLocation> written = new ArrayList<>();
    List<String> notWritten = new ArrayList<>();
    for (Map.Entry<String, Pending> e : byPool.entrySet()) {
      Pending p = e.getValue();
      String what = count(p.verifications.size(), "verification") + (p.verifications.isEmpty() || p.drills.isEmpty()
          ? "" : " and ") + count(p.drills.size(), "drill");
      if (e.getKey().isEmpty()) {
        notWritten.add("the records of " + what + " could not go on tape: " + library + " has no labelled cartridge"
            + " with room and no pool to label a blank one into; they stay in the catalog until a later verify or"
            + " drill finds room");
        continue;
      }
      try {
        TapePieces tape = new TapePieces(library, e.getKey(), 0, notes);
        Instant now = Instant.ofEpochMilli(System.currentTimeMillis());
        if (!p.verifications.isEmpty()) {
          Catalog.RecordLocation at = tape.writeRecord(new VerifyRecordFile(p.verifications, now));
          catalog.setVerificationRecordLocation(p.verifications.stream().map(Catalog.VerificationRecord::id).toList(),
              at);
          written.add(at);
          notes.accept("wrote the record of " + count(p.verifications.size(), "verification") + " on cartridge "
              + at.cartridge() + ", tape file " + at.fileNumber());
        }
        if (!p.drills.isEmpty()) {
          Catalog.RecordLocation at = tape.writeRecord(new DrillRecordFile(p.drills, now));
          catalog.setDrillRecordLocation(p.drills.stream().map(Catalog.DrillRecord::id).toList(), at);
          written.add(at);
          notes.accept("wrote the record of " + count(p.drills.size(), "drill") + " on cartridge " + at.cartridge()
              + ", tape file " + at.fileNumber());
        }
      } catch (IOException | RuntimeException x) {
        notWritten.add("the records of " + what + " (pool " + e.getKey() + ") could not go on tape: " + x.getMessage()
            + "; they stay in the catalog until a later verify or drill finds room");
      }
    }
    return new Result(written, notWritten);
  }

  /**
   * The pool of records that have none of their own: the catalog's newest job's, else the pool
   * of the first labelled cartridge short of its early warning; "" when there is neither.
   */
  private static String fallbackPool(TapeLibrary library, Catalog catalog) throws IOException {
    List<Catalog.JobRecord> jobs = catalog.jobs();
    if (!jobs.isEmpty()) {
      return jobs.get(jobs.size() - 1).pool();
    }
    for (CartridgeInfo c : library.list()) {
      if (!c.blank() && !c.earlyWarning()) {
        return c.pool();
      }
    }
    return "";
  }

  private static String count(int n, String what) {
    return n == 0 ? "" : n + " " + what + (n == 1 ? "" : "s");
  }
}
