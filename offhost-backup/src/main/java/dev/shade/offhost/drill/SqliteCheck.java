package dev.shade.offhost.drill;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;

/**
 * SQLite's own check of a database in the copy: {@code PRAGMA integrity_check} through
 * sqlite-jdbc, which must answer the single row {@code ok}; then the rows of the tables asked for.
 * The copy is a scratch copy, so opening it may replay its WAL into it.
 *
 * <p>Thread-safe: immutable.
 */
final class SqliteCheck implements DatabaseCheck {
  /** The spec as given. */
  private final String spec;
  /** The database's path, relative to the copy's root or as on the production host. */
  private final String path;

  SqliteCheck(String spec, String path) {
    this.spec = spec;
    this.path = path;
  }

  @Override
  public String spec() {
    return spec;
  }

  @Override
  public Verdict run(Path root, WriterFiles metadata, Path work, List<String> counts) throws IOException {
    Path db = root.resolve(metadata.relative(path)).normalize();
    if (!db.startsWith(root.normalize()) || !Files.isRegularFile(db)) {
      throw new IOException("no SQLite database " + path + " in the copy (looked for " + db + ")");
    }
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + db.toAbsolutePath());
        Statement s = c.createStatement()) {
      List<String> problems = new ArrayList<>();
      try (ResultSet r = s.executeQuery("PRAGMA integrity_check")) {
        while (r.next()) {
          problems.add(r.getString(1));
        }
      }
      boolean ok = problems.equals(List.of("ok"));
      StringBuilder summary = new StringBuilder("PRAGMA integrity_check of " + root.relativize(db) + ": "
          + (ok ? "ok" : String.join("; ", problems.subList(0, Math.min(20, problems.size())))));
      if (ok) {
        for (String t : counts) {
          String table = t.contains(".") ? t.substring(t.lastIndexOf('.') + 1) : t;
          try (ResultSet r = s.executeQuery("SELECT count(*) FROM \"" + table.replace("\"", "\"\"") + "\"")) {
            r.next();
            summary.append(", ").append(table).append(": ").append(r.getLong(1)).append(" rows");
          }
        }
      }
      return new Verdict(ok, summary.toString());
    } catch (SQLException e) {
      throw new IOException("SQLite database " + db + " in the copy: " + e.getMessage(), e);
    }
  }

  @Override
  public String toString() {
    return spec;
  }
}
