package dev.shade.requestor.writer;

import java.io.IOException;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The writer of a PostgreSQL cluster, {@code postgres:CONNINFO}: a non-exclusive base backup
 * around the snapshot on one session held from prepare on ({@code pg_backup_start} in prepare,
 * {@code pg_backup_stop} in freeze), whose {@code backup_label} and {@code tablespace_map}
 * become the snapshot's writer metadata.
 *
 * <p>Why the backup stops in freeze, before the filesystems freeze and the set is committed:
 * {@code pg_backup_stop} writes the end-of-backup WAL record, and a server started from a
 * {@code backup_label} refuses to open until it has replayed that record. Stopped after the
 * snapshot, the record would be missing from the snapshot's WAL and every copy would need the
 * WAL archive to start. A shade snapshot set catches all the cluster's filesystems (data,
 * {@code pg_wal}, tablespaces: {@link #identify} lists them as {@code mountPoints}) at one
 * instant, later than the backup's end, so the copy is a crash-consistent image of a moment
 * after the backup ended: recovery starts at the backup's checkpoint, passes its end in the
 * snapshot's own WAL, and replays to the end of that WAL, i.e. exactly what was committed
 * before the filesystems froze. PostgreSQL keeps running and committing throughout; the
 * freeze of the filesystems is what holds its writes. This is only valid for such atomic
 * sets: a copy taken file by file over time needs the backup to end after the copy.
 *
 * <p>Needs PostgreSQL 15 or later, over TCP, as a superuser (or a role with the
 * {@code pg_backup_start}/{@code pg_backup_stop} grants and {@code pg_read_all_settings}).
 *
 * <p>Thread-safety as {@link Writer} requires: one thread runs the phases, on one JDBC session
 * that must stay open from {@link #prepare} to {@link #freeze} (the backup ends with its
 * session); {@link #abort} may come from another thread and closes the session.
 */
final class PostgresWriter implements Writer {
  /*
   * Paths of the metadata files are relative to the root of the filesystem that holds the data
   * directory, so that they land beside the data wherever the snapshot is attached: the mount
   * holding data_directory is looked up in /proc/self/mountinfo, and the mount's own root (not
   * "/" for a bind mount) is put in front of the data directory's path below its mount point.
   *
   * stop and start for a rollback are PgCtl's.
   */
  private static final Logger LOG = LoggerFactory.getLogger(PostgresWriter.class);
  /** pg_backup_start exists from PostgreSQL 15 (before it was pg_start_backup). */
  static final int MIN_VERSION_NUM = 150000;
  /** How long pg_archivecleanup may take. */
  private static final Duration CLEANUP_TIMEOUT = Duration.ofSeconds(120);
  /** {@code START WAL LOCATION: 0/2000028 (file 000000010000000000000002)} in a backup_label. */
  private static final Pattern START_WAL =
      Pattern.compile("^START WAL LOCATION: (\\S+) \\(file ([0-9A-F]{24})\\)", Pattern.MULTILINE);
  /** {@code START TIMELINE: 1} in a backup_label. */
  private static final Pattern TIMELINE = Pattern.compile("^START TIMELINE: (\\d+)", Pattern.MULTILINE);

  /** The spec, {@code postgres:} and the connection string. */
  private final String spec;
  /** What the backup returned when it ended in freeze; null before. */
  private WriterMetadata metadata;
  /** The spec with any password hidden, for messages and logs. */
  private final String name;
  /** Where and how to connect. */
  private final ConnInfo conn;
  /** Where mounts are read from ({@code /proc/self/mountinfo} but in tests). */
  private final Path mountInfo;
  /** The held session; null before the first use and after close. Guarded by this. */
  private Connection session;
  /** The server's data directory, once identified. */
  private Path dataDirectory;
  /** The server's version number, once identified, e.g. 150004. */
  private int versionNum;
  /** The label of the running backup, null when none runs; {@link #abort} may clear it from another thread. */
  private volatile String label;
  /** Where the running backup started. */
  private String startLsn;
  /** The server {@link #stop} stopped, to start again; null before. */
  private PgCtl stopped;

  PostgresWriter(String spec, ConnInfo conn, Path mountInfo) {
    this.spec = spec;
    this.name = ConnInfo.redact(spec);
    this.conn = conn;
    this.mountInfo = mountInfo;
  }

  @Override
  public String spec() {
    return spec;
  }

  /**
   * Facts: {@code serverVersion}, {@code serverVersionNum}, {@code dataDirectory},
   * {@code mountPoint} (of the data directory), {@code inRecovery}, {@code tablespaces} (name,
   * location and mount point of each one outside the data directory) and {@code mountPoints}
   * (every filesystem the snapshot set must hold for this cluster).
   */
  @Override
  public Map<String, Object> identify() throws IOException {
    Map<String, Object> facts = new LinkedHashMap<>();
    try {
      Connection c = session();
      String version;
      boolean inRecovery;
      try (Statement st = c.createStatement();
          ResultSet rs = st.executeQuery("SELECT current_setting('server_version_num')::int, "
              + "current_setting('server_version'), current_setting('data_directory'), pg_is_in_recovery()")) {
        rs.next();
        versionNum = rs.getInt(1);
        version = rs.getString(2);
        dataDirectory = Path.of(rs.getString(3));
        inRecovery = rs.getBoolean(4);
      }
      if (versionNum < MIN_VERSION_NUM) {
        throw new IOException(name + ": PostgreSQL " + version + " at " + conn + " is too old: the postgres writer "
            + "needs 15 or later (pg_backup_start/pg_backup_stop)");
      }
      MountTable mounts = MountTable.read(mountInfo);
      Path realData = real(dataDirectory);
      String dataMount = mounts.holding(realData).mountPoint().toString();
      List<String> mountPoints = new ArrayList<>(List.of(dataMount));
      List<Map<String, String>> tablespaces = new ArrayList<>();
      try (Statement st = c.createStatement();
          ResultSet rs = st.executeQuery("SELECT spcname, pg_tablespace_location(oid) FROM pg_tablespace "
              + "WHERE pg_tablespace_location(oid) <> '' ORDER BY spcname")) {
        while (rs.next()) {
          String location = rs.getString(2);
          String mp = mounts.holding(real(Path.of(location))).mountPoint().toString();
          tablespaces.add(Map.of("name", rs.getString(1), "location", location, "mountPoint", mp));
          if (!mountPoints.contains(mp)) {
            mountPoints.add(mp);
          }
        }
      }
      facts.put("serverVersion", version);
      facts.put("serverVersionNum", versionNum);
      facts.put("dataDirectory", dataDirectory.toString());
      facts.put("mountPoint", dataMount);
      facts.put("inRecovery", inRecovery);
      facts.put("tablespaces", tablespaces);
      facts.put("mountPoints", mountPoints);
      return facts;
    } catch (SQLException e) {
      throw sqlError("identify the server", e);
    }
  }

  /** Identifies the server and starts the backup on the held session ({@code pg_backup_start}). */
  @Override
  public void prepare() throws IOException {
    if (dataDirectory == null) {
      identify();
    }
    String l = "shade " + Instant.now();
    try (PreparedStatement ps = session().prepareStatement("SELECT pg_backup_start(?, fast => true)::text")) {
      ps.setString(1, l);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        startLsn = rs.getString(1);
        label = l;
      }
      LOG.info("{}: backup '{}' started at WAL {}", name, label, startLsn);
    } catch (SQLException e) {
      throw sqlError("start the backup (pg_backup_start)", e);
    }
  }

  /**
   * Ends the backup ({@code pg_backup_stop(wait_for_archive => false)}), so that its end is in
   * the WAL the snapshot catches (see the class comment), and keeps its {@code backup_label}
   * (and {@code tablespace_map} when there are tablespaces) for {@link #postSnapshot}.
   */
  @Override
  public void freeze(Duration limit) throws IOException {
    if (label == null) {
      throw new IllegalStateException(name + ": freeze without a running backup (prepare first)");
    }
    String stopLsn;
    String labelFile;
    String mapFile;
    try (Statement st = session().createStatement()) {
      st.setQueryTimeout((int) Math.max(1, limit.toSeconds()));
      try (ResultSet rs = st.executeQuery("SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(wait_for_archive => false)")) {
        rs.next();
        stopLsn = rs.getString(1);
        labelFile = rs.getString(2);
        mapFile = rs.getString(3);
      }
    } catch (SQLException e) {
      throw sqlError("stop the backup (pg_backup_stop)", e);
    }
    String backupLabel = label;
    label = null;
    LOG.info("{}: backup '{}' stopped at WAL {}", name, backupLabel, stopLsn);
    metadata = metadata(backupLabel, stopLsn, labelFile, mapFile);
  }

  /** Nothing to do: the backup ended in freeze, and PostgreSQL never stopped. */
  @Override
  public void thaw() {
    LOG.debug("{}: thaw: nothing to do", name);
  }

  /**
   * The backup's {@code backup_label} (and {@code tablespace_map} when there are tablespaces),
   * mode 0600, at the data directory's path within its filesystem; facts {@code startLsn},
   * {@code stopLsn}, {@code startWalFile}, {@code timeline}, {@code label},
   * {@code dataDirectory}, {@code mountPoint}, {@code serverVersionNum}.
   */
  @Override
  public WriterMetadata postSnapshot() throws IOException {
    if (metadata == null) {
      throw new IllegalStateException(name + ": postSnapshot without a finished backup (freeze first)");
    }
    return metadata;
  }

  private WriterMetadata metadata(String backupLabel, String stopLsn, String labelFile, String mapFile) throws IOException {
    MountTable.Mount mount = MountTable.read(mountInfo).holding(real(dataDirectory));
    String dir = pathInFilesystem(mount, real(dataDirectory));
    List<WriterMetadata.File> files = new ArrayList<>();
    files.add(new WriterMetadata.File(join(dir, "backup_label"), labelFile, 0600));
    if (mapFile != null && !mapFile.isEmpty()) {
      files.add(new WriterMetadata.File(join(dir, "tablespace_map"), mapFile, 0600));
    }
    Map<String, String> facts = new LinkedHashMap<>();
    facts.put("label", backupLabel);
    facts.put("startLsn", startLsn);
    facts.put("stopLsn", stopLsn);
    Matcher wal = START_WAL.matcher(labelFile);
    if (wal.find()) {
      facts.put("startWalFile", wal.group(2));
    }
    Matcher tl = TIMELINE.matcher(labelFile);
    if (tl.find()) {
      facts.put("timeline", tl.group(1));
    }
    facts.put("dataDirectory", dataDirectory.toString());
    facts.put("mountPoint", mount.mountPoint().toString());
    facts.put("serverVersionNum", Integer.toString(versionNum));
    return new WriterMetadata(spec, files, facts);
  }

  /** {@code path} below {@code mount}'s root within its filesystem, without a leading slash ("" for the root). */
  static String pathInFilesystem(MountTable.Mount mount, Path path) {
    String rel = mount.mountPoint().relativize(path).toString();
    String root = mount.root().equals("/") ? "" : mount.root().replaceAll("^/+", "");
    return join(root, rel);
  }

  private static String join(String dir, String name) {
    return dir.isEmpty() ? name : name.isEmpty() ? dir : dir + "/" + name;
  }

  /** Ends the backup if one runs, by closing its session: a non-exclusive backup ends with it. */
  @Override
  public void abort() {
    if (label != null) {
      LOG.info("{}: aborting backup '{}' by closing its session", name, label);
    }
    label = null;
    closeSession();
  }

  /**
   * Removes from the WAL archive ({@code shade.archive=DIR} in the connection string) every WAL
   * file older than the first one this snapshot needs, with {@code pg_archivecleanup}. Without
   * that keyword, does nothing (and logs so).
   */
  @Override
  public void backupComplete(WriterMetadata metadata) throws IOException {
    String archive = conn.archive();
    if (archive == null) {
      LOG.info("{}: backup complete; no {} given, so no WAL archive to clean up", name, ConnInfo.ARCHIVE);
      return;
    }
    String walFile = startWalFile(metadata);
    Path tool = PgCtl.tool("pg_archivecleanup", Optional.empty(), versionNum, name);
    ExternalCommand.require(List.of(tool.toString(), archive, walFile), CLEANUP_TIMEOUT,
        name + ": clean up WAL archive " + archive + " before " + walFile);
    LOG.info("{}: removed WAL older than {} from {}", name, walFile, archive);
  }

  /** The first WAL file the snapshot of {@code metadata} needs, from its backup_label. */
  static String startWalFile(WriterMetadata metadata) throws IOException {
    for (WriterMetadata.File f : metadata.files()) {
      if (f.path().equals("backup_label") || f.path().endsWith("/backup_label")) {
        Matcher m = START_WAL.matcher(f.content());
        if (m.find()) {
          return m.group(2);
        }
      }
    }
    String fact = metadata.facts().get("startWalFile");
    if (fact != null) {
      return fact;
    }
    throw new IOException(metadata.writer() + ": the writer metadata holds no backup_label with a START WAL LOCATION "
        + "line, so the WAL the snapshot needs is unknown; not cleaning up the archive");
  }

  /**
   * Stops the server ({@code pg_ctl stop -m fast}) as the owner of its data directory,
   * remembering the options it ran with (postmaster.opts) for {@link #start}. The server must
   * answer: its data directory comes from it.
   */
  @Override
  public void stop() throws IOException {
    identify();
    closeSession();
    PgCtl ctl = PgCtl.of(name, dataDirectory, versionNum);
    ctl.stop();
    stopped = ctl;
  }

  /**
   * Starts the server {@link #stop} stopped, with the options it ran with, waiting until it
   * accepts connections; its log goes to {@code shade-pg-start.log} beside the data directory.
   */
  @Override
  public void start() throws IOException {
    PgCtl ctl = stopped;
    if (ctl == null) {
      throw new IOException(name + ": cannot start PostgreSQL: this writer did not stop it, so its data directory "
          + "and options are unknown");
    }
    ctl.start();
    stopped = null;
  }

  /** The real path of {@code p} when it exists here (symbolic links resolved), else {@code p}. */
  private static Path real(Path p) {
    try {
      return p.toRealPath();
    } catch (IOException e) {
      return p.toAbsolutePath().normalize();
    }
  }

  private synchronized Connection session() throws SQLException {
    if (session == null || session.isClosed()) {
      // the driver directly, not DriverManager: no dependence on service files surviving a fat jar
      Connection c = new org.postgresql.Driver().connect(conn.jdbcUrl(), conn.jdbcProperties());
      if (c == null) {
        throw new SQLException("the PostgreSQL driver does not take the URL " + conn.jdbcUrl(), "08001");
      }
      c.setAutoCommit(true);
      session = c;
    }
    return session;
  }

  private synchronized void closeSession() {
    if (session != null) {
      try {
        session.close();
      } catch (SQLException | RuntimeException e) {
        LOG.debug("{}: closing the session: {}", name, e.toString());
      }
      session = null;
    }
  }

  private IOException sqlError(String what, SQLException e) {
    String advice = "";
    if ("28P01".equals(e.getSQLState()) || "28000".equals(e.getSQLState())) {
      advice = "; check user and password (or pg_hba.conf)";
    } else if ("42501".equals(e.getSQLState())) {
      advice = "; the role needs superuser, or EXECUTE on pg_backup_start/pg_backup_stop and pg_read_all_settings";
    } else if ("08001".equals(e.getSQLState()) || "08004".equals(e.getSQLState())) {
      advice = "; is the server running and listening on TCP " + conn.host() + ":" + conn.port() + " (listen_addresses)?";
    } else if ("55000".equals(e.getSQLState())) {
      advice = "; the server may need wal_level = replica (or logical)";
    }
    return new IOException(name + ": cannot " + what + " on " + conn + ": " + e.getMessage()
        + " (SQLSTATE " + e.getSQLState() + ")" + advice, e);
  }

  @Override
  public void close() {
    abort();
  }

  @Override
  public String toString() {
    return name;
  }
}
