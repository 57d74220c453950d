package dev.shade.offhost.backup;

import java.nio.file.Path;
import java.util.Objects;
import java.util.Properties;
import java.util.regex.Pattern;

/**
 * Where a backup catalog lives: an SQLite file ({@code jdbc:sqlite:PATH}, by default
 * {@value Catalog#FILE} in the tape library's directory) or a PostgreSQL database
 * ({@code jdbc:postgresql://HOST[:PORT]/DB?user=USER[&password=...]}) that several backup servers
 * share.
 *
 * <p>{@link #parse} checks the URL's form without connecting, so a misspelt URL fails before any
 * work starts. {@link #toString()} is the URL with any {@code password=} value hidden: it is what
 * error messages name. Credentials for PostgreSQL are what the PostgreSQL JDBC driver itself
 * takes: {@code user=} and {@code password=} in the URL, a client certificate ({@code sslcert=},
 * {@code sslkey=}, {@code sslmode=verify-full}), or a server whose {@code pg_hba.conf} asks that
 * user for none. The driver reads neither the {@code PGPASSWORD} environment variable nor
 * {@code ~/.pgpass} (libpq does; pgjdbc does not).
 *
 * <p>Immutable and thread-safe.
 */
public final class CatalogLocation {
  /** The prefix of an SQLite catalog's URL. */
  public static final String SQLITE_PREFIX = "jdbc:sqlite:";
  /** The prefix of a PostgreSQL catalog's URL. */
  public static final String POSTGRESQL_PREFIX = "jdbc:postgresql:";

  /** {@code password=...} in a URL's parameters, to hide it. */
  private static final Pattern PASSWORD = Pattern.compile("(?i)([?&]password=)[^&]*");

  /** The JDBC URL as given (with any password). */
  private final String url;
  /** The database kind of {@link #url}. */
  private final CatalogDialect dialect;

  private CatalogLocation(String url, CatalogDialect dialect) {
    this.url = url;
    this.dialect = dialect;
  }

  /**
   * The catalog at {@code url}, {@code jdbc:sqlite:PATH} or {@code jdbc:postgresql://...}.
   *
   * @throws IllegalArgumentException when {@code url} is neither, or is malformed; the message
   *     names the URL (password hidden) and the forms accepted
   */
  public static CatalogLocation parse(String url) {
    Objects.requireNonNull(url, "url");
    String u = url.strip();
    if (u.startsWith(SQLITE_PREFIX)) {
      String path = u.substring(SQLITE_PREFIX.length());
      if (path.isEmpty() || path.startsWith(":memory:") || path.startsWith("?")) {
        throw new IllegalArgumentException("the SQLite catalog URL " + u + " names no file; expected "
            + SQLITE_PREFIX + "PATH, e.g. " + SQLITE_PREFIX + "/srv/vtl/" + Catalog.FILE);
      }
      return new CatalogLocation(u, CatalogDialect.SQLITE);
    }
    if (u.startsWith(POSTGRESQL_PREFIX)) {
      Properties p = org.postgresql.Driver.parseURL(u, new Properties());
      if (p == null || !u.startsWith(POSTGRESQL_PREFIX + "//")) {
        throw new IllegalArgumentException("the PostgreSQL catalog URL " + hide(u) + " is malformed; expected "
            + POSTGRESQL_PREFIX + "//HOST[:PORT]/DATABASE?user=USER[&password=PASSWORD]");
      }
      // the driver fills in a database left out (from the user name): a catalog names its own
      String rest = u.substring((POSTGRESQL_PREFIX + "//").length());
      int slash = rest.indexOf('/');
      int query = rest.indexOf('?');
      String db = slash < 0 || (query >= 0 && query < slash) ? "" : rest.substring(slash + 1, query < 0 ? rest.length() : query);
      if (db.isEmpty()) {
        throw new IllegalArgumentException("the PostgreSQL catalog URL " + hide(u) + " names no database; expected "
            + POSTGRESQL_PREFIX + "//HOST[:PORT]/DATABASE?user=USER");
      }
      return new CatalogLocation(u, CatalogDialect.POSTGRESQL);
    }
    throw new IllegalArgumentException("not a catalog URL: " + hide(u) + " (expected " + POSTGRESQL_PREFIX
        + "//HOST[:PORT]/DATABASE?user=USER or " + SQLITE_PREFIX + "PATH)");
  }

  /** The default catalog of the tape library in {@code libraryDir}: its {@value Catalog#FILE}. */
  public static CatalogLocation inLibrary(Path libraryDir) {
    return new CatalogLocation(SQLITE_PREFIX + libraryDir.resolve(Catalog.FILE).toAbsolutePath(), CatalogDialect.SQLITE);
  }

  /**
   * The catalog a command uses: {@code url} when one is given, else the library's own
   * ({@link #inLibrary}).
   */
  public static CatalogLocation of(String url, Path libraryDir) {
    return url == null || url.isBlank() ? inLibrary(libraryDir) : parse(url);
  }

  /** The JDBC URL, password included: for connecting, never for messages. */
  String jdbcUrl() {
    return url;
  }

  CatalogDialect dialect() {
    return dialect;
  }

  /** True for a PostgreSQL catalog. */
  public boolean isPostgresql() {
    return dialect == CatalogDialect.POSTGRESQL;
  }

  /** The SQLite file of an SQLite catalog; null for PostgreSQL. */
  public Path sqliteFile() {
    if (dialect != CatalogDialect.SQLITE) {
      return null;
    }
    String path = url.substring(SQLITE_PREFIX.length());
    if (path.startsWith("file:")) {
      path = path.substring("file:".length());
    }
    int q = path.indexOf('?');
    return Path.of(q < 0 ? path : path.substring(0, q));
  }

  private static String hide(String url) {
    return PASSWORD.matcher(url).replaceAll("$1***");
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof CatalogLocation && ((CatalogLocation) o).url.equals(url);
  }

  @Override
  public int hashCode() {
    return url.hashCode();
  }

  /** The URL with any password hidden. */
  @Override
  public String toString() {
    return hide(url);
  }
}
