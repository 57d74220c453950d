package dev.shade.cli;

import static dev.shade.cli.AgentProcess.source;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.testing.PostgresCluster;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --catalog URL} on {@code backup run}, {@code restore} and {@code catalog list}: a
 * PostgreSQL catalog started by the test, a real agent serving a volume over NBD, a virtual tape
 * library.
 */
class CatalogOptionTest {
  private static final int MiB = 1024 * 1024;
  @TempDir Path tmp;
  @RegisterExtension final Leftovers started = new Leftovers();

  @Test
  void badCatalogUrl_isAUsageError_thatHidesThePassword() throws Exception {
    Path lib = tmp.resolve("vtl");
    Cli.run("tape", "library", "create", lib, "--slots", "1", "--capacity", "64M").ok();
    for (String[] args : List.of(
        new String[] {"catalog", "list", lib.toString()},
        new String[] {"restore", "--volume", "db", "--snapshot", "s1", "--library", lib.toString(), "--to",
            tmp.resolve("r.img").toString()},
        new String[] {"backup", "run", "--source", "nbd://127.0.0.1:1/db@s1", "--library", lib.toString()})) {
      List<Object> a = new ArrayList<>(List.of((Object[]) args));
      a.add("--catalog");
      a.add("jdbc:mysql://db1/shade?user=shade&password=s3cret");
      Cli.Result r = Cli.run(a.toArray());
      assertEquals(ExitCodes.USAGE, r.code(), r::toString);
      assertTrue(r.err().contains("--catalog") && r.err().contains("not a catalog URL")
          && r.err().contains("jdbc:postgresql://HOST[:PORT]/DATABASE?user=USER"), r::toString);
      assertFalse(r.err().contains("s3cret"), r::toString);
    }
    Cli.Result down = Cli.run("catalog", "list", lib, "--catalog", "jdbc:postgresql://127.0.0.1:"
        + PostgresCluster.freePort() + "/shade?user=shade&password=s3cret");
    assertEquals(ExitCodes.FAILURE, down.code(), down::toString);
    assertTrue(down.err().contains("cannot open the backup catalog jdbc:postgresql://127.0.0.1:")
        && down.err().contains("password=***"), down::toString);
    assertFalse(down.err().contains("s3cret"), down::toString);
  }

  @Test
  void backupRestoreAndList_withTheCatalogOnPostgresql() throws Exception {
    try (PostgresCluster pg = PostgresCluster.create(tmp.resolve("pg"))) {
      pg.psql("CREATE DATABASE shade_catalog");
      String url = "jdbc:postgresql://127.0.0.1:" + pg.port() + "/shade_catalog?user=" + PostgresCluster.USER;
      Path db = TestVolumes.create(tmp.resolve("db"), "16M");
      Cli.run("volume", "import", db, TestVolumes.file(tmp, "a.bin", TestVolumes.random(1, 6 * MiB))).ok();
      Path lib = tmp.resolve("vtl");
      Cli.run("tape", "library", "create", lib, "--slots", "2", "--capacity", "128M").ok();
      AgentProcess agent = started.agent(tmp, db);
      Path nbd = tmp.resolve("nbd.sock");

      Cli.run("snapshot", "create", db, "--name", "s1").ok();
      JsonNode full = Cli.run("backup", "run", "--source", source(nbd, "s1"), "--library", lib, "--chunk-size", "1M",
          "--catalog", url, "--json").ok().json();
      assertEquals("full", full.get("level").asText(), full::toString);
      Cli.run("volume", "import", db, TestVolumes.file(tmp, "b.bin", TestVolumes.random(2, 128 * 1024)),
          "--offset", "2M").ok();
      Cli.run("snapshot", "create", db, "--name", "s2").ok();
      JsonNode inc = Cli.run("backup", "run", "--source", source(nbd, "s2"), "--library", lib, "--catalog", url,
          "--json").ok().json();
      assertEquals("incremental", inc.get("level").asText(), "the base was found in the PostgreSQL catalog");
      assertFalse(Files.exists(lib.resolve("catalog.db")), "the library's own catalog was not used");
      try (java.sql.Connection c = java.sql.DriverManager.getConnection(url);
          java.sql.ResultSet r = c.createStatement().executeQuery("SELECT count(*) FROM jobs WHERE outcome = 'ok'")) {
        assertTrue(r.next());
        assertEquals(2, r.getInt(1), "both jobs are in the PostgreSQL catalog");
      }

      JsonNode listed = Cli.run("catalog", "list", lib, "--catalog", url, "--json").ok().json();
      assertEquals(url, listed.get("catalog").asText());
      assertEquals(2, listed.get("jobs").size());
      assertEquals(full.get("jobId").asLong(), listed.get("jobs").get(0).get("jobId").asLong());
      Cli.Result own = Cli.run("catalog", "list", lib).ok();
      assertTrue(own.out().contains("No backups in the catalog of"), own::toString);

      Path s2Export = tmp.resolve("s2.export");
      Cli.run("snapshot", "export", db, "s2", s2Export).ok();
      Path s2Restored = tmp.resolve("s2.restored");
      JsonNode res = Cli.run("restore", "--volume", "db", "--snapshot", "s2", "--library", lib, "--to", s2Restored,
          "--catalog", url, "--json").ok().json();
      assertEquals(2, res.get("chain").size());
      assertEquals(Files.size(s2Export), Files.size(s2Restored));
      assertEquals(-1L, Files.mismatch(s2Export, s2Restored), "the restored image equals the export");
      agent.stop();
    }
  }

}
