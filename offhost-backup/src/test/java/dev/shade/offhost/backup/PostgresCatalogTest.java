package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.testing.PostgresCluster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The catalog on a real PostgreSQL server started for these tests (skipped without PostgreSQL,
 * failed under CI=true): each test on a database of its own.
 */
class PostgresCatalogTest extends CatalogContract {
  @TempDir static Path serverDir;
  private static PostgresCluster server;
  private static final AtomicInteger DATABASES = new AtomicInteger();

  /** The database of this test. */
  private String database;

  @BeforeAll
  static void startServer() throws Exception {
    server = PostgresCluster.create(serverDir.resolve("pg"));
  }

  @AfterAll
  static void stopServer() throws Exception {
    if (server != null) {
      server.close();
    }
  }

  @BeforeEach
  void database() throws Exception {
    database = "catalog_" + DATABASES.incrementAndGet();
    server.psql("CREATE DATABASE " + database);
    where = CatalogLocation.parse("jdbc:postgresql://127.0.0.1:" + server.port() + "/" + database + "?user="
        + PostgresCluster.USER);
  }

  @Test
  void backupAndRestore_roundTrip_withTheCatalogOnPostgresql() throws Exception {
    Path vtl = tmp.resolve("vtl");
    BackupRestoreTest.roundTrip(tmp, vtl, where);
    assertTrue(!Files.exists(vtl.resolve(Catalog.FILE)), "nothing went to the library's own catalog");
    assertEquals("3", CatalogScenarios.scalar(where, "SELECT count(*) FROM jobs"));
    assertEquals("bigint", CatalogScenarios.scalar(where, "SELECT data_type FROM information_schema.columns"
        + " WHERE table_name = 'chunks' AND column_name = 'offset'"), "64-bit offsets");
    assertEquals("YES", CatalogScenarios.scalar(where, "SELECT is_identity FROM information_schema.columns"
        + " WHERE table_name = 'jobs' AND column_name = 'id'"));
  }

  /** A server that asks for a password: {@code password=} in the URL is what the driver sends. */
  @Test
  void passwordInTheUrl_isWhatAuthenticates() throws Exception {
    server.psql("CREATE ROLE shade_pw LOGIN PASSWORD 'pw-1'");
    server.psql("CREATE DATABASE catalog_pw OWNER shade_pw");
    Path hba = server.dataDirectory().resolve("pg_hba.conf");
    Files.writeString(hba, "host all shade_pw 127.0.0.1/32 scram-sha-256\n" + Files.readString(hba));
    server.psql("SELECT pg_reload_conf()");
    String base = "jdbc:postgresql://127.0.0.1:" + server.port() + "/catalog_pw?user=shade_pw";
    IOException none = assertThrows(IOException.class, () -> Catalog.open(CatalogLocation.parse(base)));
    assertTrue(none.getMessage().contains("no password was provided"), none.getMessage());
    IOException wrong = assertThrows(IOException.class,
        () -> Catalog.open(CatalogLocation.parse(base + "&password=wrong")));
    assertTrue(wrong.getMessage().contains("password authentication failed for user \"shade_pw\"")
        && wrong.getMessage().contains("password=***"), wrong.getMessage());
    try (Catalog c = Catalog.open(CatalogLocation.parse(base + "&password=pw-1"))) {
      assertTrue(c.jobs().isEmpty());
      assertEquals(base + "&password=***", c.location().toString());
    }
  }

  /**
   * Once the schema is made, a role that may only read and write its rows uses the catalog: no
   * right to create tables is needed after the first open (docs/backup.md).
   */
  @Test
  void migratedCatalog_needsNoRightToCreate() throws Exception {
    try (Catalog c = Catalog.open(where)) {
      assertTrue(c.jobs().isEmpty());
    }
    server.psql("CREATE ROLE shade_dml LOGIN");
    CatalogScenarios.execute(where, "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO shade_dml",
        "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO shade_dml");
    CatalogLocation dml = CatalogLocation.parse("jdbc:postgresql://127.0.0.1:" + server.port() + "/" + database
        + "?user=shade_dml");
    assertThrows(java.sql.SQLException.class, () -> CatalogScenarios.execute(dml, "CREATE TABLE t (x INTEGER)"),
        "the role may not create tables");
    try (Catalog c = Catalog.open(dml)) {
      long job = c.startJob(new FakeSource("s1", 1, new byte[4096], java.util.Map.of()).identity(), "full", -1, -1,
          "p", 65536, java.time.Instant.now());
      c.completeJob(job, "SHD001", 1, 100, "m", java.util.List.of(new ChunkEntry(0, 4096, "h", false)), 4096, null,
          java.time.Instant.now());
      assertEquals(Catalog.OK, c.job(job).orElseThrow().outcome());
      assertEquals(1, c.chunks(c.job(job).orElseThrow().archive().id()).size());
    }
  }
}
