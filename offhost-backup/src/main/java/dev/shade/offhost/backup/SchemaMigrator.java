package dev.shade.offhost.backup;

import java.io.IOException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Clock;
import java.util.List;

/**
 * Brings a catalog's schema to the newest of an ordered list of steps, applying each missing step
 * once, in its own transaction, and recording it in {@code schema_version (version, applied)}.
 *
 * <p>Not thread-safe: one connection, one thread. Several migrators on several connections (other
 * threads, processes or backup servers) may run against one database at once.
 */
final class SchemaMigrator {
  /*
   * Each step runs in a transaction that first takes the dialect's migration lock (SQLite's BEGIN
   * IMMEDIATE, PostgreSQL's pg_advisory_xact_lock) and only then reads the version, so a second
   * migrator waits and then finds the step done; a crash mid-step rolls the whole step back,
   * recording included (SQLite and PostgreSQL both run DDL inside transactions). The unique index
   * on schema_version.version makes a step recorded twice fail rather than pass unnoticed.
   *
   * Catalogs of version 1 made before the steps were recorded with their time have
   * schema_version (version) alone: the applied column is added to them, empty for that row.
   */

  private SchemaMigrator() {}

  /**
   * Migrates the database of {@code db} to {@code steps.size()}; returns the version it was at.
   *
   * @param steps step {@code i} (0-based) makes version {@code i + 1}; SQL in the portable form
   *     ({@link Catalog}), statements separated by {@code ;}
   * @param resource what messages name (the catalog's URL without password)
   * @throws IOException when the database is at a version newer than {@code steps.size()}
   */
  static int migrate(Connection db, CatalogDialect dialect, List<String> steps, String resource, Clock clock)
      throws IOException, SQLException {
    int found = -1;
    while (true) {
      dialect.beginExclusive(db);
      try (Statement s = db.createStatement()) {
        prepareVersionTable(s, dialect);
        int version = version(s);
        if (found < 0) {
          found = version;
        }
        if (version > steps.size()) {
          throw new IOException("backup catalog " + resource + " has schema version " + version
              + ", newer than this shade's " + steps.size() + ": a newer shade upgraded it, and only that version"
              + " or a later one may use it");
        }
        if (version == steps.size()) {
          dialect.commit(db);
          return found;
        }
        int next = version + 1;
        try {
          for (String sql : dialect.translate(steps.get(version)).split(";")) {
            if (!sql.isBlank()) {
              s.execute(sql);
            }
          }
        } catch (SQLException e) {
          throw new SQLException("schema step " + next + " failed: " + e.getMessage(), e.getSQLState(), e);
        }
        try (PreparedStatement p = db.prepareStatement("INSERT INTO schema_version (version, applied) VALUES (?, ?)")) {
          p.setInt(1, next);
          p.setString(2, clock.instant().toString());
          p.executeUpdate();
        }
        dialect.commit(db);
      } catch (IOException | SQLException | RuntimeException e) {
        try {
          dialect.rollback(db);
        } catch (SQLException r) {
          e.addSuppressed(r);
        }
        throw e;
      }
    }
  }

  /** The versions recorded, oldest first, each with when it was applied (null when not known). */
  static List<String[]> history(Connection db) throws SQLException {
    List<String[]> out = new java.util.ArrayList<>();
    try (Statement s = db.createStatement();
        ResultSet r = s.executeQuery("SELECT version, applied FROM schema_version ORDER BY version")) {
      while (r.next()) {
        out.add(new String[] {Integer.toString(r.getInt(1)), r.getString(2)});
      }
    }
    return out;
  }

  /**
   * Makes schema_version, or brings a version-1 one (no applied column) up to date. Looks before
   * it creates, so a catalog already made needs no right to create tables (PostgreSQL checks that
   * right even for CREATE ... IF NOT EXISTS of a table that exists).
   */
  private static void prepareVersionTable(Statement s, CatalogDialect dialect) throws SQLException {
    if (!dialect.exists(s, "schema_version")) {
      s.execute(dialect.translate("CREATE TABLE schema_version (version INTEGER NOT NULL, applied TEXT)"));
    } else if (dialect == CatalogDialect.SQLITE) { // only SQLite catalogs predate the applied column
      boolean applied = false;
      try (ResultSet r = s.executeQuery("PRAGMA table_info(schema_version)")) {
        while (r.next()) {
          applied |= "applied".equalsIgnoreCase(r.getString("name"));
        }
      }
      if (!applied) {
        s.execute("ALTER TABLE schema_version ADD COLUMN applied TEXT");
      }
    }
    if (!dialect.exists(s, "schema_version_once")) {
      s.execute("CREATE UNIQUE INDEX schema_version_once ON schema_version (version)");
    }
  }

  private static int version(Statement s) throws SQLException {
    try (ResultSet r = s.executeQuery("SELECT max(version) FROM schema_version")) {
      return r.next() ? r.getInt(1) : 0;
    }
  }
}
