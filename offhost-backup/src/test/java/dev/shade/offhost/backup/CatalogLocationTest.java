package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class CatalogLocationTest {
  @TempDir Path tmp;

  @ParameterizedTest
  @ValueSource(strings = {
    "jdbc:postgresql://db1:5432/shade?user=shade",
    "jdbc:postgresql://db1/shade",
    "jdbc:postgresql://127.0.0.1:15432/shade?user=shade&password=pw&sslmode=require",
    "jdbc:postgresql://[::1]:5432/shade?user=shade",
    "jdbc:postgresql://db1:5432,db2:5432/shade?user=shade&targetServerType=primary"
  })
  void postgresqlUrls_areAccepted(String url) {
    CatalogLocation l = CatalogLocation.parse(url);
    assertTrue(l.isPostgresql());
    assertNull(l.sqliteFile());
    assertEquals(CatalogDialect.POSTGRESQL, l.dialect());
  }

  @Test
  void sqliteUrls_areAccepted_andNameTheirFile() {
    CatalogLocation l = CatalogLocation.parse("jdbc:sqlite:/srv/vtl/catalog.db");
    assertFalse(l.isPostgresql());
    assertEquals(Path.of("/srv/vtl/catalog.db"), l.sqliteFile());
    assertEquals(Path.of("/srv/c.db"), CatalogLocation.parse("jdbc:sqlite:file:/srv/c.db?mode=rwc").sqliteFile());
    assertEquals(CatalogLocation.inLibrary(tmp), CatalogLocation.of(null, tmp));
    assertEquals(CatalogLocation.inLibrary(tmp), CatalogLocation.of(" ", tmp));
    assertEquals(tmp.resolve(Catalog.FILE).toAbsolutePath(), CatalogLocation.inLibrary(tmp).sqliteFile());
    assertEquals("jdbc:sqlite:/x.db", CatalogLocation.of("jdbc:sqlite:/x.db", tmp).toString());
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
    "''                                          | not a catalog URL",
    "/srv/vtl/catalog.db                         | not a catalog URL",
    "jdbc:mysql://db1/shade                      | not a catalog URL",
    "postgresql://db1/shade                      | not a catalog URL",
    "jdbc:sqlite:                                | names no file",
    "jdbc:sqlite::memory:                        | names no file",
    "jdbc:postgresql:shade                       | is malformed",
    "jdbc:postgresql://db1:notaport/shade        | is malformed",
    "jdbc:postgresql://db1:5432/                 | names no database",
    "jdbc:postgresql://db1:5432/?user=x&password=secret | names no database",
    "jdbc:postgresql://db1:5432?user=x           | is malformed"
  })
  void badUrls_areRefused_namingTheUrlAndTheForms(String url, String says) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CatalogLocation.parse(url));
    assertTrue(e.getMessage().contains(says), e.getMessage());
    assertTrue(e.getMessage().contains("jdbc:"), "the message shows the form expected: " + e.getMessage());
    assertFalse(e.getMessage().contains("secret"), "a password is never shown: " + e.getMessage());
  }

  @Test
  void passwords_areHiddenInWhatMessagesShow() {
    CatalogLocation l = CatalogLocation.parse("jdbc:postgresql://db1/shade?user=shade&password=s3cret&ssl=true");
    assertEquals("jdbc:postgresql://db1/shade?user=shade&password=***&ssl=true", l.toString());
    assertTrue(l.jdbcUrl().contains("s3cret"), "the driver still gets it");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> CatalogLocation.parse("jdbc:mysql://db1/shade?password=s3cret"));
    assertFalse(e.getMessage().contains("s3cret"), e.getMessage());
  }

  @Test
  void unreachableServer_failsNamingTheCatalog_withoutThePassword() throws IOException {
    int port = dev.shade.testing.PostgresCluster.freePort(); // nothing listens there
    CatalogLocation l = CatalogLocation.parse("jdbc:postgresql://127.0.0.1:" + port
        + "/shade?user=shade&password=s3cret&connectTimeout=5");
    IOException e = assertThrows(IOException.class, () -> Catalog.open(l));
    assertTrue(e.getMessage().startsWith("cannot open the backup catalog jdbc:postgresql://127.0.0.1:" + port),
        e.getMessage());
    assertTrue(e.getMessage().contains("refused"), e.getMessage());
    assertFalse(e.getMessage().contains("s3cret"), e.getMessage());
  }

  @Test
  void sqliteFileInAMissingFolder_failsNamingTheFolder() {
    CatalogLocation l = CatalogLocation.parse("jdbc:sqlite:" + tmp.resolve("nowhere/catalog.db"));
    IOException e = assertThrows(IOException.class, () -> Catalog.open(l));
    assertTrue(e.getMessage().contains("the folder " + tmp.resolve("nowhere") + " does not exist"), e.getMessage());
  }

  @Test
  void translate_portableStep_forEachDatabase() {
    String step = "CREATE TABLE t (id {{id}}, n INTEGER NOT NULL, r REAL, b BLOB, \"offset\" INTEGER, note TEXT)";
    assertEquals("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, r REAL, b BLOB, \"offset\" INTEGER,"
        + " note TEXT)", CatalogDialect.SQLITE.translate(step));
    assertEquals("CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n BIGINT NOT NULL,"
        + " r DOUBLE PRECISION, b BYTEA, \"offset\" BIGINT, note TEXT)", CatalogDialect.POSTGRESQL.translate(step));
  }
}
