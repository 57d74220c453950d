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
 * library's directory, of jobs (one per backup run, each of a format: {@link #FORMAT_IMAGE} or
 * {@link #FORMAT_FILES}), the archive each successful job wrote
 * (cartridge, tape file, size, SHA-256 of its manifest) and that archive's chunks. The schema is
 * versioned in {@code schema_version}; {@link #open} migrates an older one.
 *
 * <p>Not thread-safe: one connection, used by one thread.
 */
public final class Catalog implements Closeable {
  /** The file in the library's directory. */
  public static final String FILE = "catalog.db";
  /** The schema this version writes. */
  public static final int SCHEMA_VERSION = 4;
  /** The format of a job that wrote a block image archive ({@code shade-image-1}). */
  public static final String FORMAT_IMAGE = "image";
  /** The format of a job that wrote a files archive ({@code shade-files-1}). */
  public static final String FORMAT_FILES = "files";
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
   * @param format what kind of archive: {@link #FORMAT_IMAGE} or {@link #FORMAT_FILES}
   */
  public record JobRecord(long id, SnapshotIdentity snapshot, String level, long baseJobId, long baseSnapshotId,
      String pool, int chunkSize, Instant started, Instant ended, String outcome, String message, long bytes,
      ArchiveRecord archive, String format) {}

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
    // 2 and 3: steps of other parts of the catalog
    "",
    "",
    // 4: what kind of archive a job wrote (every job before this step wrote an image)
    "ALTER TABLE jobs ADD COLUMN format TEXT NOT NULL DEFAULT 'image'"
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
      int version = 0;
      try (ResultSet r = s.executeQuery("SELECT max(version) FROM schema_version")) {
        if (r.next()) {
          version = r.getInt(1);
        }
      }
      if (version > SCHEMA_VERSION) {
        throw new SQLException("catalog schema version " + version + " is newer than this shade (" + SCHEMA_VERSION + ")");
      }
      db.setAutoCommit(false);
      try {
        for (int v = version; v < SCHEMA_VERSION; v++) {
          for (String sql : MIGRATIONS[v].split(";")) {
            if (!sql.isBlank()) {
              s.execute(sql);
            }
          }
          s.execute("INSERT INTO schema_version VALUES (" + (v + 1) + ")");
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

  /** Records an image backup job that is starting; returns its id. */
  public long startJob(SnapshotIdentity s, String level, long baseJobId, long baseSnapshotId, String pool, int chunkSize,
      Instant started) throws IOException {
    return startJob(s, level, baseJobId, baseSnapshotId, pool, chunkSize, started, FORMAT_IMAGE);
  }

  /** Records a job of {@code format} ({@link #FORMAT_IMAGE}, {@link #FORMAT_FILES}) that is starting; returns its id. */
  public long startJob(SnapshotIdentity s, String level, long baseJobId, long baseSnapshotId, String pool, int chunkSize,
      Instant started, String format) throws IOException {
    try (PreparedStatement p = db.prepareStatement("INSERT INTO jobs (volume, volume_uuid, snapshot, snapshot_id,"
        + " snapshot_created, size, level, base_job, base_snapshot_id, pool, chunk_size, started, outcome, format)"
        + " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", Statement.RETURN_GENERATED_KEYS)) {
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
      p.setString(14, format);
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

  /** The newest successful image backup of the volume of uuid {@code volumeUuid} (files archives are no base). */
  public Optional<JobRecord> lastBackup(String volumeUuid) throws IOException {
    List<JobRecord> all = query("j.volume_uuid = ? AND j.outcome = 'ok' AND j.format = 'image'", List.of(volumeUuid));
    return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
  }

  /**
   * The newest successful image backup of snapshot {@code snapshot} (a name, an id, or {@code id=N})
   * of the volume {@code volume} (a uuid or a name).
   */
  public Optional<JobRecord> find(String volume, String snapshot) throws IOException {
    return find(volume, snapshot, FORMAT_IMAGE);
  }

  /** The same for the archives of {@code format} ({@link #FORMAT_IMAGE}, {@link #FORMAT_FILES}). */
  public Optional<JobRecord> find(String volume, String snapshot, String format) throws IOException {
    String idText = snapshot.startsWith("id=") ? snapshot.substring(3) : snapshot;
    List<JobRecord> all;
    if (idText.matches("[0-9]{1,18}")) {
      all = query("(j.volume_uuid = ? OR j.volume = ?) AND j.outcome = 'ok' AND (j.snapshot_id = ? OR j.snapshot = ?)"
          + " AND j.format = ?", List.of(volume, volume, Long.parseLong(idText), snapshot, format));
    } else {
      all = query("(j.volume_uuid = ? OR j.volume = ?) AND j.outcome = 'ok' AND j.snapshot = ? AND j.format = ?",
          List.of(volume, volume, snapshot, format));
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
        + " j.outcome, j.message, j.bytes, a.id, a.cartridge, a.file_number, a.bytes, a.manifest_sha256, j.format"
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
              r.getString(16), r.getLong(17), a, r.getString(23)));
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
}
