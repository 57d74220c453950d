package dev.shade.requestor.writer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Makes writers from their specs, {@code KIND:ARGUMENT}:
 *
 * <ul>
 *   <li>{@code fs:MOUNTPOINT} — freeze and thaw the filesystem mounted there (root);
 *   <li>{@code sqlite:DBFILE} — hold the writers of an SQLite database out, checkpoint its WAL;
 *   <li>{@code postgres:CONNINFO} — a PostgreSQL base backup around the snapshot, over TCP
 *       ({@code postgres:host=127.0.0.1 port=5432 user=postgres dbname=postgres}, or
 *       {@code postgres:postgresql://postgres@127.0.0.1:5432/postgres}; the keyword
 *       {@code shade.archive=DIR} names a WAL archive to clean up when the backup is on tape);
 *   <li>{@code exec:DIR} — a directory of hook executables.
 * </ul>
 *
 * <p>docs/writers.md says what each does in each phase. Thread-safe: stateless.
 */
public final class Writers {
  /** The kinds of writer, as a spec starts. */
  public static final List<String> KINDS = List.of("fs", "sqlite", "postgres", "exec");

  private Writers() {}

  /**
   * The writer {@code spec} names, new for one snapshot (or one rollback). Checks what can be
   * checked without acting: the spec's syntax, that an fs mount point is a mount point now
   * (per {@code /proc/self/mountinfo}), that an SQLite database file exists, that a PostgreSQL
   * connection string is one shade can use; it connects to nothing.
   *
   * @throws IllegalArgumentException when the spec is wrong, with a message that quotes it and
   *     says what is wrong (an unknown kind lists the kinds)
   * @throws UncheckedIOException when {@code /proc/self/mountinfo} cannot be read
   */
  public static Writer parse(String spec) {
    return parse(spec, MountTable.PROC_MOUNTINFO);
  }

  /** {@link #parse(String)} reading mounts from {@code mountInfo} instead of this process's. */
  static Writer parse(String spec, Path mountInfo) {
    if (spec == null) {
      throw new IllegalArgumentException("writer spec is null; expected KIND:ARGUMENT with KIND one of " + KINDS);
    }
    int colon = spec.indexOf(':');
    if (colon <= 0) {
      throw new IllegalArgumentException("writer spec '" + ConnInfo.redact(spec) + "' has no kind; expected KIND:ARGUMENT "
          + "with KIND one of " + String.join(", ", KINDS) + " (e.g. fs:/srv/pg)");
    }
    String kind = spec.substring(0, colon);
    String arg = spec.substring(colon + 1);
    if (!KINDS.contains(kind)) {
      throw new IllegalArgumentException("unknown writer kind '" + kind + "' in '" + ConnInfo.redact(spec)
          + "'; the kinds are " + String.join(", ", KINDS));
    }
    if (arg.isBlank()) {
      throw new IllegalArgumentException("writer spec '" + spec + "' has nothing after '" + kind + ":'; expected "
          + usage(kind));
    }
    switch (kind) {
      case "fs":
        return fs(spec, path(spec, arg), mountInfo);
      case "sqlite":
        return sqlite(spec, path(spec, arg));
      case "postgres":
        try {
          return new PostgresWriter(spec, ConnInfo.parse(arg), mountInfo);
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException("writer spec '" + ConnInfo.redact(spec) + "': " + e.getMessage(), e);
        }
      case "exec":
        return ExecWriter.of(path(spec, arg));
      default:
        throw new AssertionError(kind);
    }
  }

  private static Writer fs(String spec, Path given, Path mountInfo) {
    Path mountPoint = given;
    try {
      mountPoint = given.toRealPath(); // the mount table has no symbolic links
    } catch (IOException e) {
      // missing: the lookup below says it is not a mount point
    }
    try {
      if (MountTable.read(mountInfo).at(mountPoint).isEmpty()) {
        throw new IllegalArgumentException("writer spec '" + spec + "': " + mountPoint + " is not a mount point "
            + "(not in " + mountInfo + ")" + (Files.isDirectory(mountPoint) ? "" : "; it is not a directory here"));
      }
    } catch (IOException e) {
      throw new UncheckedIOException("writer spec '" + spec + "': cannot read the mount table " + mountInfo, e);
    }
    return new FsWriter(spec, mountPoint, mountInfo);
  }

  private static Writer sqlite(String spec, Path db) {
    if (!Files.exists(db)) {
      throw new IllegalArgumentException("writer spec '" + spec + "': database file " + db + " does not exist");
    }
    if (!Files.isRegularFile(db)) {
      throw new IllegalArgumentException("writer spec '" + spec + "': " + db + " is not a regular file (an SQLite database file)");
    }
    return new SqliteWriter(spec, db);
  }

  private static Path path(String spec, String arg) {
    Path p = Path.of(arg);
    if (!p.isAbsolute()) {
      throw new IllegalArgumentException("writer spec '" + spec + "': " + arg + " is not an absolute path");
    }
    return p.normalize();
  }

  private static String usage(String kind) {
    switch (kind) {
      case "fs": return "fs:MOUNTPOINT, e.g. fs:/srv/pg";
      case "sqlite": return "sqlite:DBFILE, e.g. sqlite:/srv/app/app.db";
      case "postgres": return "postgres:CONNINFO, e.g. postgres:host=127.0.0.1 port=5432 user=postgres dbname=postgres";
      default: return "exec:DIR, e.g. exec:/etc/shade/hooks.d";
    }
  }
}
