package dev.shade.offhost.backup;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The backup catalog of one tape library: an SQLite database, {@code catalog.db} in the
 * library's directory, of jobs (one per backup run), the archive each successful job wrote
 * (cartridge, tape file, size, SHA-256 of its manifest), that archive's chunks, the
 * verifications of archives read back from tape and the fire drills. The schema is versioned in
 * {@code schema_version}; {@link #open} migrates an older one.
 *
 * <p>Migrations are numbered steps; {@code schema_version} holds one row per step applied. A
 * catalog is brought up to date by applying every step this version knows and the catalog has
 * not had, in order, so a step added later with a lower number than one already applied (steps
 * written in parallel) is still applied. A step this version leaves out is {@code null} in
 * {@code MIGRATIONS} and recorded as nothing.
 *
 * <p>Not thread-safe: one connection, used by one thread.
 */
public final class Catalog implements Closeable {
  /** The file in the library's directory. */
  public static final String FILE = "catalog.db";
  /** The schema this version writes: its highest migration step. */
  public static final int SCHEMA_VERSION = 3;
  public static final String RUNNING = "running";
  public static final String OK = "ok";
  public static final String FAILED = "failed";

  /** One archive on tape. */
  public record ArchiveRecord(long id, long jobId, String cartridge, int fileNumber, long bytes, String manifestSha256) {}

  /**
   * One backup job.
   *
   * @param baseJobId the job of the base snapshot for an incremental, else -1
   * @param baseSnapshotId the base snapshot's id for an incremental, else -1
   * @param archive what it wrote, when it succeeded
   */
  public record JobRecord(long id, SnapshotIdentity snapshot, String level, long baseJobId, long baseSnapshotId,
      String pool, int chunkSize, Instant started, Instant ended, String outcome, String message, long bytes,
      ArchiveRecord archive) {}

  private static final String[] MIGRATIONS = {
    // 1
    "CREATE TABLE jobs (id INTEGER PRIMARY KEY, volume TEXT NOT NULL, volume_uuid TEXT NOT NULL,"
        + " snapshot TEXT NOT NULL, snapshot_id INTEGER NOT NULL, snapshot_created TEXT NOT NULL, size INTEGER NOT NULL,"
        + " level TEXT NOT NULL, base_job INTEGER REFERENCES jobs(id), base_snapshot_id INTEGER, pool TEXT NOT NULL,"
        + " chunk_size INTEGER NOT NULL, started TEXT NOT NULL, ended TEXT, outcome TEXT NOT NULL, message TEXT,"
        + " bytes INTEGER NOT NULL DEFAULT 0);"
        + "CREATE INDEX jobs_volume ON jobs(volume_uuid, snapshot_id);"
        + "CREATE TABLE archives (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL UNIQUE REFERENCES jobs(id),"
        + " cartridge TEXT NOT NULL, file_number INTEGER NOT NULL, bytes INTEGER NOT NULL, manifest_sha256 TEXT NOT NULL);"
        + "CREATE TABLE chunks (archive_id INTEGER NOT NULL REFERENCES archives(id), offset INTEGER NOT NULL,"
        + " length INTEGER NOT NULL, sha256 TEXT, zero INTEGER NOT NULL, PRIMARY KEY (archive_id, offset));",
    // 2: not in this version (tape pieces and job records)
    null,
    // 3: verifications and drills (SQL that PostgreSQL runs too)
    "CREATE TABLE verifications (id INTEGER PRIMARY KEY, run_started TEXT NOT NULL, job_id BIGINT NOT NULL,"
        + " archive_id BIGINT NOT NULL, cartridge TEXT NOT NULL, file_number INTEGER NOT NULL, verified TEXT NOT NULL,"
        + " outcome TEXT NOT NULL, bytes BIGINT NOT NULL, millis BIGINT NOT NULL, chunk TEXT, error TEXT);"
        + "CREATE INDEX verifications_job ON verifications(job_id);"
        + "CREATE TABLE drills (id INTEGER PRIMARY KEY, volume TEXT NOT NULL, volume_uuid TEXT, snapshot TEXT,"
        + " snapshot_id BIGINT, job_chain TEXT NOT NULL, started TEXT NOT NULL, ended TEXT NOT NULL,"
        + " outcome TEXT NOT NULL, failed_step TEXT, error TEXT, first_byte_millis BIGINT, restore_millis BIGINT,"
        + " bytes_restored BIGINT NOT NULL, fsck TEXT, database_check TEXT, steps TEXT NOT NULL);"
        + "CREATE INDEX drills_volume ON drills(volume_uuid);"
  };

  private final Path file;
  private final Connection db;

  private Catalog(Path file, Connection db) {
    this.file = file;
    this.db = db;
  }

  /** Opens (creating or migrating) the catalog of the library in {@code libraryDir}. */
  public static Catalog open(Path libraryDir) throws IOException {
    Path file = libraryDir.resolve(FILE);
    try {
      Connection c = DriverManager.getConnection("jdbc:sqlite:" + file.toAbsolutePath());
      Catalog cat = new Catalog(file, c);
      try {
        cat.migrate();
      } catch (SQLException | RuntimeException e) {
        c.close();
        throw e;
      }
      return cat;
    } catch (SQLException e) {
      throw new IOException("cannot open the backup catalog " + file + ": " + e.getMessage(), e);
    }
  }

  private void migrate() throws SQLException {
    try (Statement s = db.createStatement()) {
      s.execute("PRAGMA foreign_keys = ON");
      s.execute("PRAGMA journal_mode = WAL");
      s.execute("PRAGMA busy_timeout = 10000");
      s.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
      java.util.Set<Integer> applied = new java.util.HashSet<>();
      try (ResultSet r = s.executeQuery("SELECT version FROM schema_version")) {
        while (r.next()) {
          applied.add(r.getInt(1));
        }
      }
      int version = applied.stream().mapToInt(Integer::intValue).max().orElse(0);
      if (version > SCHEMA_VERSION) {
        throw new SQLException("catalog schema version " + version + " is newer than this shade (" + SCHEMA_VERSION + ")");
      }
      db.setAutoCommit(false);
      try {
        for (int v = 1; v <= SCHEMA_VERSION; v++) {
          if (MIGRATIONS[v - 1] == null || applied.contains(v)) {
            continue;
          }
          for (String sql : MIGRATIONS[v - 1].split(";")) {
            if (!sql.isBlank()) {
              s.execute(sql);
            }
          }
          s.execute("INSERT INTO schema_version VALUES (" + v + ")");
        }
        db.commit();
      } catch (SQLException e) {
        db.rollback();
        throw e;
      } finally {
        db.setAutoCommit(true);
      }
    }
  }

  /** Records a job that is starting; returns its id. */
  public long startJob(SnapshotIdentity s, String level, long baseJobId, long baseSnapshotId, String pool, int chunkSize,
      Instant started) throws IOException {
    try (PreparedStatement p = db.prepareStatement("INSERT INTO jobs (volume, volume_uuid, snapshot, snapshot_id,"
        + " snapshot_created, size, level, base_job, base_snapshot_id, pool, chunk_size, started, outcome)"
        + " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", Statement.RETURN_GENERATED_KEYS)) {
      p.setString(1, s.volume());
      p.setString(2, s.volumeUuid());
      p.setString(3, s.snapshot());
      p.setLong(4, s.snapshotId());
      p.setString(5, s.created().toString());
      p.setLong(6, s.size());
      p.setString(7, level);
      if (baseJobId >= 0) {
        p.setLong(8, baseJobId);
        p.setLong(9, baseSnapshotId);
      } else {
        p.setNull(8, java.sql.Types.INTEGER);
        p.setNull(9, java.sql.Types.INTEGER);
      }
      p.setString(10, pool);
      p.setInt(11, chunkSize);
      p.setString(12, started.toString());
      p.setString(13, RUNNING);
      p.executeUpdate();
      try (ResultSet r = p.getGeneratedKeys()) {
        r.next();
        return r.getLong(1);
      }
    } catch (SQLException e) {
      throw failure("record the start of a backup of " + s, e);
    }
  }

  /** Records that job {@code jobId} failed with {@code message}. */
  public void failJob(long jobId, String message, Instant ended) throws IOException {
    try (PreparedStatement p = db.prepareStatement("UPDATE jobs SET outcome = ?, message = ?, ended = ? WHERE id = ?")) {
      p.setString(1, FAILED);
      p.setString(2, message);
      p.setString(3, ended.toString());
      p.setLong(4, jobId);
      p.executeUpdate();
    } catch (SQLException e) {
      throw failure("record the failure of job " + jobId, e);
    }
  }

  /** Records, in one transaction, job {@code jobId}'s archive and its chunks and the job's success. */
  public void completeJob(long jobId, String cartridge, int fileNumber, long archiveBytes, String manifestSha256,
      List<ChunkEntry> chunks, long dataBytes, String message, Instant ended) throws IOException {
    try {
      db.setAutoCommit(false);
      try {
        long archiveId;
        try (PreparedStatement p = db.prepareStatement("INSERT INTO archives (job_id, cartridge, file_number, bytes,"
            + " manifest_sha256) VALUES (?,?,?,?,?)", Statement.RETURN_GENERATED_KEYS)) {
          p.setLong(1, jobId);
          p.setString(2, cartridge);
          p.setInt(3, fileNumber);
          p.setLong(4, archiveBytes);
          p.setString(5, manifestSha256);
          p.executeUpdate();
          try (ResultSet r = p.getGeneratedKeys()) {
            r.next();
            archiveId = r.getLong(1);
          }
        }
        try (PreparedStatement p = db.prepareStatement("INSERT INTO chunks VALUES (?,?,?,?,?)")) {
          for (ChunkEntry c : chunks) {
            p.setLong(1, archiveId);
            p.setLong(2, c.offset());
            p.setLong(3, c.length());
            p.setString(4, c.sha256());
            p.setInt(5, c.zero() ? 1 : 0);
            p.addBatch();
          }
          p.executeBatch();
        }
        try (PreparedStatement p = db.prepareStatement("UPDATE jobs SET outcome = ?, message = ?, ended = ?, bytes = ?"
            + " WHERE id = ?")) {
          p.setString(1, OK);
          p.setString(2, message);
          p.setString(3, ended.toString());
          p.setLong(4, dataBytes);
          p.setLong(5, jobId);
          p.executeUpdate();
        }
        db.commit();
      } catch (SQLException | RuntimeException e) {
        db.rollback();
        throw e;
      } finally {
        db.setAutoCommit(true);
      }
    } catch (SQLException e) {
      throw failure("record the archive of job " + jobId, e);
    }
  }

  /** Every job, oldest first. */
  public List<JobRecord> jobs() throws IOException {
    return query("1 = 1", List.of());
  }

  /** The job of {@code id}. */
  public Optional<JobRecord> job(long id) throws IOException {
    return query("j.id = ?", List.of(id)).stream().findFirst();
  }

  /** The newest successful backup of the volume of uuid {@code volumeUuid}. */
  public Optional<JobRecord> lastBackup(String volumeUuid) throws IOException {
    List<JobRecord> all = query("j.volume_uuid = ? AND j.outcome = 'ok'", List.of(volumeUuid));
    return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
  }

  /**
   * The newest successful backup of snapshot {@code snapshot} (a name, an id, or {@code id=N}) of
   * the volume {@code volume} (a uuid or a name).
   */
  public Optional<JobRecord> find(String volume, String snapshot) throws IOException {
    String idText = snapshot.startsWith("id=") ? snapshot.substring(3) : snapshot;
    List<JobRecord> all;
    if (idText.matches("[0-9]{1,18}")) {
      all = query("(j.volume_uuid = ? OR j.volume = ?) AND j.outcome = 'ok' AND (j.snapshot_id = ? OR j.snapshot = ?)",
          List.of(volume, volume, Long.parseLong(idText), snapshot));
    } else {
      all = query("(j.volume_uuid = ? OR j.volume = ?) AND j.outcome = 'ok' AND j.snapshot = ?",
          List.of(volume, volume, snapshot));
    }
    return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
  }

  /** The chunks of archive {@code archiveId}, by offset. */
  public List<ChunkEntry> chunks(long archiveId) throws IOException {
    List<ChunkEntry> out = new ArrayList<>();
    try (PreparedStatement p = db.prepareStatement("SELECT offset, length, sha256, zero FROM chunks"
        + " WHERE archive_id = ? ORDER BY offset")) {
      p.setLong(1, archiveId);
      try (ResultSet r = p.executeQuery()) {
        while (r.next()) {
          out.add(new ChunkEntry(r.getLong(1), r.getLong(2), r.getString(3), r.getInt(4) != 0));
        }
      }
    } catch (SQLException e) {
      throw failure("read the chunks of archive " + archiveId, e);
    }
    return out;
  }

  private List<JobRecord> query(String where, List<Object> args) throws IOException {
    List<JobRecord> out = new ArrayList<>();
    try (PreparedStatement p = db.prepareStatement("SELECT j.id, j.volume, j.volume_uuid, j.snapshot, j.snapshot_id,"
        + " j.snapshot_created, j.size, j.level, j.base_job, j.base_snapshot_id, j.pool, j.chunk_size, j.started, j.ended,"
        + " j.outcome, j.message, j.bytes, a.id, a.cartridge, a.file_number, a.bytes, a.manifest_sha256"
        + " FROM jobs j LEFT JOIN archives a ON a.job_id = j.id WHERE " + where + " ORDER BY j.id")) {
      for (int i = 0; i < args.size(); i++) {
        p.setObject(i + 1, args.get(i));
      }
      try (ResultSet r = p.executeQuery()) {
        while (r.next()) {
          SnapshotIdentity s = new SnapshotIdentity(r.getString(2), r.getString(3), r.getString(4), r.getLong(5),
              Instant.parse(r.getString(6)), r.getLong(7));
          long baseJob = r.getLong(9);
          baseJob = r.wasNull() ? -1 : baseJob;
          long baseSnap = r.getLong(10);
          baseSnap = r.wasNull() ? -1 : baseSnap;
          String ended = r.getString(14);
          long archiveId = r.getLong(18);
          ArchiveRecord a = r.wasNull() ? null
              : new ArchiveRecord(archiveId, r.getLong(1), r.getString(19), r.getInt(20), r.getLong(21), r.getString(22));
          out.add(new JobRecord(r.getLong(1), s, r.getString(8), baseJob, baseSnap, r.getString(11), r.getInt(12),
              Instant.parse(r.getString(13)), ended == null ? null : Instant.parse(ended), r.getString(15),
              r.getString(16), r.getLong(17), a));
        }
      }
    } catch (SQLException e) {
      throw failure("read the jobs", e);
    }
    return out;
  }

  private IOException failure(String what, SQLException e) {
    return new IOException("backup catalog " + file + ": cannot " + what + ": " + e.getMessage(), e);
  }

  @Override
  public void close() throws IOException {
    try {
      db.close();
    } catch (SQLException e) {
      throw failure("close", e);
    }
  }

  // ---- verifications and drills (migration step 3) ----

  /**
   * One archive read back from tape and checked.
   *
   * @param id its row; ignored by {@link #addVerification}
   * @param runStarted when the verify run that checked it began (the same for every archive of one run)
   * @param verified when this archive's check ended
   * @param outcome {@link #OK} or {@link #FAILED}
   * @param bytes bytes of chunk data read and checked
   * @param chunk the member that failed ({@code data/...} or {@code manifest.json}), or null
   * @param error what failed, naming the cartridge, tape file and chunk; null when it passed
   */
  public record VerificationRecord(long id, Instant runStarted, long jobId, long archiveId, String cartridge,
      int fileNumber, Instant verified, String outcome, long bytes, double seconds, String chunk, String error) {}

  /**
   * One step of a drill.
   *
   * @param name {@code find}, {@code restore}, {@code attach}, {@code fsck}, {@code mount}, {@code metadata},
   *     {@code check:KIND:PATH}, {@code unmount}, {@code detach}, {@code delete}
   * @param outcome {@link #OK}, {@link #FAILED} or {@code skipped}
   * @param detail what it found (fsck's verdict, the database check's, rows counted) or why it failed
   */
  public record DrillStep(String name, String outcome, double seconds, String detail) {}

  /**
   * One fire drill: a restore of the newest backed-up snapshot of a volume to scratch, attached,
   * checked by fsck and by the databases' own checks.
   *
   * @param id its row; ignored by {@link #addDrill}
   * @param volume the volume as the drill was asked for (name or uuid)
   * @param volumeUuid its uuid, null when the catalog has no backup of it
   * @param snapshot the snapshot restored, null when none was found
   * @param snapshotId its id, -1 when none was found
   * @param jobChain the jobs restored, full first
   * @param outcome {@link #OK} or {@link #FAILED}
   * @param failedStep the first step that failed, or null
   * @param error that step's message, or null
   * @param firstByteSeconds from the start of the restore to its first chunk written, -1 if none was
   * @param restoreSeconds the whole restore, -1 if it did not end
   * @param bytesRestored chunk data written to the scratch image
   * @param fsck fsck's verdict, or null when it did not run
   * @param databaseCheck the database checks' verdicts, or null when none ran
   */
  public record DrillRecord(long id, String volume, String volumeUuid, String snapshot, long snapshotId,
      List<Long> jobChain, Instant started, Instant ended, String outcome, String failedStep, String error,
      double firstByteSeconds, double restoreSeconds, long bytesRestored, String fsck, String databaseCheck,
      List<DrillStep> steps) {
    public DrillRecord {
      jobChain = List.copyOf(jobChain);
      steps = List.copyOf(steps);
    }
  }

  private static final com.fasterxml.jackson.databind.ObjectMapper STEPS_JSON =
      new com.fasterxml.jackson.databind.ObjectMapper();

  /** Records the check of one archive; returns its id. */
  public long addVerification(VerificationRecord v) throws IOException {
    try (PreparedStatement p = db.prepareStatement("INSERT INTO verifications (run_started, job_id, archive_id,"
        + " cartridge, file_number, verified, outcome, bytes, millis, chunk, error) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        Statement.RETURN_GENERATED_KEYS)) {
      p.setString(1, v.runStarted().toString());
      p.setLong(2, v.jobId());
      p.setLong(3, v.archiveId());
      p.setString(4, v.cartridge());
      p.setInt(5, v.fileNumber());
      p.setString(6, v.verified().toString());
      p.setString(7, v.outcome());
      p.setLong(8, v.bytes());
      p.setLong(9, Math.round(v.seconds() * 1000));
      p.setString(10, v.chunk());
      p.setString(11, v.error());
      p.executeUpdate();
      try (ResultSet r = p.getGeneratedKeys()) {
        r.next();
        return r.getLong(1);
      }
    } catch (SQLException e) {
      throw failure("record the verification of job " + v.jobId(), e);
    }
  }

  /** Every verification, oldest first. */
  public List<VerificationRecord> verifications() throws IOException {
    List<VerificationRecord> out = new ArrayList<>();
    try (PreparedStatement p = db.prepareStatement("SELECT id, run_started, job_id, archive_id, cartridge, file_number,"
        + " verified, outcome, bytes, millis, chunk, error FROM verifications ORDER BY id");
        ResultSet r = p.executeQuery()) {
      while (r.next()) {
        out.add(new VerificationRecord(r.getLong(1), Instant.parse(r.getString(2)), r.getLong(3), r.getLong(4),
            r.getString(5), r.getInt(6), Instant.parse(r.getString(7)), r.getString(8), r.getLong(9),
            r.getLong(10) / 1000.0, r.getString(11), r.getString(12)));
      }
    } catch (SQLException e) {
      throw failure("read the verifications", e);
    }
    return out;
  }

  /** Records a drill; returns its id. */
  public long addDrill(DrillRecord d) throws IOException {
    try (PreparedStatement p = db.prepareStatement("INSERT INTO drills (volume, volume_uuid, snapshot, snapshot_id,"
        + " job_chain, started, ended, outcome, failed_step, error, first_byte_millis, restore_millis, bytes_restored,"
        + " fsck, database_check, steps) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", Statement.RETURN_GENERATED_KEYS)) {
      p.setString(1, d.volume());
      p.setString(2, d.volumeUuid());
      p.setString(3, d.snapshot());
      if (d.snapshotId() >= 0) {
        p.setLong(4, d.snapshotId());
      } else {
        p.setNull(4, java.sql.Types.BIGINT);
      }
      StringBuilder chain = new StringBuilder();
      for (long j : d.jobChain()) {
        chain.append(chain.length() == 0 ? "" : ",").append(j);
      }
      p.setString(5, chain.toString());
      p.setString(6, d.started().toString());
      p.setString(7, d.ended().toString());
      p.setString(8, d.outcome());
      p.setString(9, d.failedStep());
      p.setString(10, d.error());
      setMillis(p, 11, d.firstByteSeconds());
      setMillis(p, 12, d.restoreSeconds());
      p.setLong(13, d.bytesRestored());
      p.setString(14, d.fsck());
      p.setString(15, d.databaseCheck());
      p.setString(16, STEPS_JSON.writeValueAsString(d.steps()));
      p.executeUpdate();
      try (ResultSet r = p.getGeneratedKeys()) {
        r.next();
        return r.getLong(1);
      }
    } catch (SQLException | com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IOException("backup catalog " + file + ": cannot record the drill of " + d.volume() + ": "
          + e.getMessage(), e);
    }
  }

  /** The drills of the volume {@code volume} (name or uuid), or of every volume when null; oldest first. */
  public List<DrillRecord> drills(String volume) throws IOException {
    List<DrillRecord> out = new ArrayList<>();
    try (PreparedStatement p = db.prepareStatement("SELECT id, volume, volume_uuid, snapshot, snapshot_id, job_chain,"
        + " started, ended, outcome, failed_step, error, first_byte_millis, restore_millis, bytes_restored, fsck,"
        + " database_check, steps FROM drills" + (volume == null ? "" : " WHERE volume = ? OR volume_uuid = ?")
        + " ORDER BY id")) {
      if (volume != null) {
        p.setString(1, volume);
        p.setString(2, volume);
      }
      try (ResultSet r = p.executeQuery()) {
        while (r.next()) {
          long snapshotId = r.getLong(5);
          snapshotId = r.wasNull() ? -1 : snapshotId;
          List<Long> chain = new ArrayList<>();
          for (String j : r.getString(6).split(",")) {
            if (!j.isEmpty()) {
              chain.add(Long.parseLong(j));
            }
          }
          long firstByte = r.getLong(12);
          double firstByteSeconds = r.wasNull() ? -1 : firstByte / 1000.0;
          long restore = r.getLong(13);
          double restoreSeconds = r.wasNull() ? -1 : restore / 1000.0;
          List<DrillStep> steps = List.of(STEPS_JSON.readValue(r.getString(17), DrillStep[].class));
          out.add(new DrillRecord(r.getLong(1), r.getString(2), r.getString(3), r.getString(4), snapshotId, chain,
              Instant.parse(r.getString(7)), Instant.parse(r.getString(8)), r.getString(9), r.getString(10),
              r.getString(11), firstByteSeconds, restoreSeconds, r.getLong(14), r.getString(15), r.getString(16),
              steps));
        }
      }
    } catch (SQLException | com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IOException("backup catalog " + file + ": cannot read the drills: " + e.getMessage(), e);
    }
    return out;
  }

  private static void setMillis(PreparedStatement p, int index, double seconds) throws SQLException {
    if (seconds >= 0) {
      p.setLong(index, Math.round(seconds * 1000));
    } else {
      p.setNull(index, java.sql.Types.BIGINT);
    }
  }
}
