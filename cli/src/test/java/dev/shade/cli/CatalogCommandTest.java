package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code shade backup run} spanning cartridges, {@code shade catalog show} and
 * {@code shade catalog rebuild} end to end: a real agent serving a volume over NBD, a virtual tape
 * library of small cartridges.
 */
class CatalogCommandTest {
  private static final int MiB = 1024 * 1024;
  @TempDir Path tmp;
  @RegisterExtension final Leftovers started = new Leftovers();

  @Test
  void spanningBackup_show_lostCatalogRebuilt_restoreEqualsExport() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "16M");
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "a.bin", TestVolumes.random(1, 7 * MiB))).ok();
    Path lib = tmp.resolve("vtl");
    // about 2.9 MiB of data per cartridge before the early warning
    Cli.run("tape", "library", "create", lib, "--slots", "5", "--capacity", "4M", "--block-size", "64K",
        "--early-warning", "1M").ok();
    AgentProcess agent = started.agent(tmp, db);
    Path nbd = tmp.resolve("nbd.sock");
    Cli.run("snapshot", "create", db, "--name", "s1").ok();

    Cli.Result run = Cli.run("backup", "run", "--source", "nbd+unix:///db@s1?socket=" + nbd, "--library", lib,
        "--chunk-size", "256K");
    run.ok();
    assertTrue(run.out().contains("The archive spans 3 cartridges: SHD001:1, SHD002:1, SHD003:1."), run::toString);
    assertTrue(run.err().contains("cartridge SHD001 is full: the archive continues with piece 2 on cartridge SHD002"),
        run::toString);

    JsonNode show = Cli.run("catalog", "show", "1", "--library", lib, "--json").ok().json();
    assertEquals(3, show.get("pieces").size(), show::toString);
    assertEquals("SHD002", show.get("pieces").get(1).get("cartridge").asText());
    assertEquals(28, show.get("chunks").size(), "7 MiB in 256 KiB chunks");
    assertEquals(2, show.get("chunks").get(27).get("piece").asInt());
    assertEquals("SHD003", show.get("record").get("cartridge").asText());
    assertEquals(show, Cli.run("catalog", "show", "db@s1", "--library", lib, "--json").ok().json());
    Cli.Result text = Cli.run("catalog", "show", "db", "--library", lib).ok();
    assertTrue(text.out().contains("full backup of db@s1") && text.out().contains("manifest SHA-256 "
        + show.get("archive").get("manifestSha256").asText()) && text.out().contains("SHD003"), text::toString);

    // a verify: its record goes on the pool's newest cartridge, after the job's record
    JsonNode verify = Cli.run("verify", "--library", lib, "--json").ok().json();
    assertEquals("SHD003", verify.get("records").get("written").get(0).get("cartridge").asText(), verify::toString);
    assertEquals(0, verify.get("records").get("notWritten").size());
    Cli.Result tapes = Cli.run("tape", "list", lib, "--json").ok();
    assertTrue(tapes.out().contains("\"verify\""), tapes::toString);
    JsonNode history = Cli.run("catalog", "drills", lib, "--json").ok().json();
    assertEquals(1, history.get("verifications").size(), history::toString);
    JsonNode verified = Cli.run("catalog", "show", "1", "--library", lib, "--json").ok().json();
    assertEquals(1, verified.get("verifications").size(), verified::toString);

    // the catalog is lost: rebuilt from the tapes, it says the same
    JsonNode list = Cli.run("catalog", "list", lib, "--json").ok().json();
    for (String suffix : List.of("", "-wal", "-shm")) {
      Files.deleteIfExists(lib.resolve("catalog.db" + suffix));
    }
    Cli.Result rebuild = Cli.run("catalog", "rebuild", "--library", lib);
    rebuild.ok();
    assertTrue(rebuild.out().contains("from 3 cartridges (2 blank): 1 job, 1 archive in 3 pieces, 28 chunks, "
        + "1 verification, 0 drills"), rebuild::toString);
    assertTrue(rebuild.err().contains("[2/5] scanning cartridge SHD002 (slot 2, pool default)"), rebuild::toString);
    assertEquals(list, Cli.run("catalog", "list", lib, "--json").ok().json());
    assertEquals(verified, Cli.run("catalog", "show", "1", "--library", lib, "--json").ok().json());
    assertEquals(history, Cli.run("catalog", "drills", lib, "--json").ok().json(), "the verification, id and times");

    Path export = tmp.resolve("s1.export");
    Cli.run("snapshot", "export", db, "s1", export).ok();
    Path restored = tmp.resolve("s1.img");
    Cli.Result restore = Cli.run("restore", "--volume", "db", "--snapshot", "s1", "--library", lib, "--to", restored);
    restore.ok();
    assertTrue(restore.err().contains("shade restore: needs cartridge SHD003 (slot 3)"), restore::toString);
    assertEquals(-1L, Files.mismatch(export, restored));

    // a catalog with jobs is not replaced unless asked to
    Cli.Result again = Cli.run("catalog", "rebuild", "--library", lib, "--json");
    assertEquals(ExitCodes.FAILURE, again.code(), again::toString);
    assertTrue(again.err().contains("already has a catalog with 1 job"), again::toString);
    JsonNode forced = Cli.run("catalog", "rebuild", "--library", lib, "--force", "--json").ok().json();
    assertEquals(1, forced.get("jobs").asInt());
    assertEquals(1, forced.get("verifications").asInt());
    assertEquals(0, forced.get("problems").size());
    assertTrue(Files.exists(lib.resolve("catalog.db.old")));
    agent.stop();
  }
}
