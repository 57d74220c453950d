package dev.shade.offhost.drill;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * A database's own consistency check, run on the mounted copy of a restored snapshot: what a
 * {@code --writer} of a drill asks for. Every implementation leaves the copy's database stopped
 * when it returns or throws, whatever happened, and is immutable (thread-safe); a check of a
 * database that cannot run at all (not there, does not start) throws, one that ran and found
 * damage returns a verdict that is not ok.
 */
interface DatabaseCheck {
  /** What was found: whether the database passed, and a line saying what ran and what it said. */
  record Verdict(boolean ok, String summary) {}

  /** The spec as given, e.g. {@code postgres:pgdata} or {@code sqlite:app/data.db}. */
  String spec();

  /**
   * Checks the database in the copy mounted at {@code root}, with {@code work} a private scratch
   * directory; {@code counts} are tables whose rows to count ({@code [DATABASE.]TABLE}).
   */
  Verdict run(Path root, WriterFiles metadata, Path work, List<String> counts) throws IOException;

  /**
   * The check {@code spec} asks for: {@code postgres[:PGDATA]} (PGDATA relative to the copy's
   * root, or absolute as on the production host; without it, the directory of the
   * backup_label in the writer metadata) or {@code sqlite:DB_PATH}.
   */
  static DatabaseCheck parse(String spec) {
    int colon = spec.indexOf(':');
    String kind = colon < 0 ? spec : spec.substring(0, colon);
    String path = colon < 0 ? "" : spec.substring(colon + 1);
    switch (kind) {
      case "postgres":
        return new PostgresCheck(spec, path);
      case "sqlite":
        if (path.isEmpty()) {
          throw new IllegalArgumentException("sqlite needs the database's path: sqlite:PATH (" + spec + ")");
        }
        return new SqliteCheck(spec, path);
      default:
        throw new IllegalArgumentException("unknown database check " + spec
            + ": give postgres[:PGDATA] or sqlite:DB_PATH");
    }
  }
}
