package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.testing.CloseAfterEach;
import dev.shade.testing.Tools;
import dev.shade.testing.live.LivePostgres;
import dev.shade.testing.live.NbdMount;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.Statement;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code shade drill}, {@code shade verify} and {@code shade catalog drills} end to end, as root:
 * a real ext4 volume that {@code shade agent} serves (nbdfuse, a loop device), holding a SQLite
 * database or a PostgreSQL cluster, snapshotted with its writer, backed up through the agent's
 * NBD export to a virtual library; the drill restores it to scratch, attaches, fsck's and mounts
 * it, puts back the writer metadata and runs the database's own check. Then damage: a flipped
 * byte in a chunk on the cartridge fails verify (named by cartridge, tape file and chunk) and the
 * drill (at its restore step); a truncated cartridge fails verify.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class DrillIT {
  private static final int MiB = 1024 * 1024;
  @TempDir Path tmp;
  @RegisterExtension final CloseAfterEach teardown = new CloseAfterEach();

  /** A volume of {@code size} served by an agent and mounted (ext4) at {@code tmp/mnt/NAME}. */
  private NbdMount servedVolume(String name, String size) throws Exception {
    Path volume = tmp.resolve("volumes/" + name);
    Cli.run("volume", "create", volume, "--size", size, "--diff-max", size).ok();
    Path nbdSock = tmp.resolve("nbd.sock");
    Path control = tmp.resolve("control.sock");
    AgentProcess agent = AgentProcess.start(tmp, List.of(volume, "--control-socket", control, "--socket", nbdSock),
        control);
    teardown.push(() -> {
      if (agent.process().isAlive()) {
        agent.stop();
      }
    });
    return teardown.push(NbdMount.open("nbd+unix:///" + name + "?socket=" + nbdSock, tmp.resolve("nbd-" + name),
        tmp.resolve("mnt/" + name), true));
  }

  /** Takes snapshot {@code snap} with {@code writers} and backs it up to {@code lib} with its writer metadata. */
  private JsonNode snapshotAndBackUp(String name, String snap, Path lib, String... writers) throws Exception {
    Path volume = tmp.resolve("volumes/" + name);
    java.util.List<Object> args = new java.util.ArrayList<>(List.of("snapshot", "create", volume, "--name", snap));
    for (String w : writers) {
      args.add("--writer");
      args.add(w);
    }
    Cli.run(args.toArray()).ok();
    Path meta = tmp.resolve(snap + ".json");
    Files.writeString(meta, Cli.run("snapshot", "show", volume, snap, "--json").ok().out());
    return Cli.run("backup", "run", "--source", "nbd+unix:///" + name + "@" + snap + "?socket=" + tmp.resolve("nbd.sock"),
        "--library", lib, "--metadata", meta, "--json").ok().json();
  }

  /** A scratch directory that the user postgres can reach. */
  private Path scratch() throws Exception {
    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwx--x--x"));
    Path s = Files.createDirectories(tmp.resolve("scratch"));
    Files.setPosixFilePermissions(s, PosixFilePermissions.fromString("rwxr-xr-x"));
    return s;
  }

  @Test
  void sqliteOnExt4_drillPasses_damageFailsVerifyAndDrillNamingChunkAndStep_truncationFailsVerify() throws Exception {
    NbdMount.requireTools();
    Tools.require("blkid", "util-linux");
    NbdMount m = servedVolume("db", "128M");
    Path mnt = m.mountPoint();
    Files.createDirectories(mnt.resolve("app"));
    Path dbFile = mnt.resolve("app/app.db");
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + dbFile); Statement s = c.createStatement()) {
      s.execute("PRAGMA journal_mode=WAL");
      s.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)");
      c.setAutoCommit(false);
      try (PreparedStatement p = c.prepareStatement("INSERT INTO items (name) VALUES (?)")) {
        for (int i = 0; i < 1000; i++) {
          p.setString(1, "item " + i);
          p.addBatch();
        }
        p.executeBatch();
      }
      c.commit();
    }
    byte[] blob = new byte[3 * MiB];
    new Random(7).nextBytes(blob);
    Files.write(mnt.resolve("blob.bin"), blob);
    Path lib = tmp.resolve("vtl");
    Cli.run("tape", "library", "create", lib, "--slots", "2", "--capacity", "256M").ok();
    JsonNode backup = snapshotAndBackUp("db", "s1", lib, "sqlite:" + dbFile, "fs:" + mnt);
    Path scratch = scratch();

    // the drill: the database named by its path on the production host
    Cli.Result drill = Cli.run("drill", "db", "--library", lib, "--writer", "sqlite:" + dbFile, "--count", "items",
        "--scratch", scratch, "--json");
    JsonNode d = drill.ok().json();
    assertEquals("ok", d.get("outcome").asText(), d::toPrettyString);
    assertEquals("s1", d.get("snapshot").asText());
    assertEquals(backup.get("snapshotId").asLong(), d.get("snapshotId").asLong());
    assertEquals(List.of(backup.get("jobId").asLong()), List.of(d.get("jobChain").get(0).asLong()));
    assertTrue(d.get("fsck").asText().startsWith("ext4: clean"), d::toPrettyString);
    assertTrue(d.get("databaseCheck").asText().contains("PRAGMA integrity_check of app/app.db: ok")
        && d.get("databaseCheck").asText().contains("items: 1000 rows"), d::toPrettyString);
    assertTrue(d.get("firstByteSeconds").asDouble() > 0
        && d.get("firstByteSeconds").asDouble() <= d.get("restoreSeconds").asDouble(), d::toPrettyString);
    assertEquals(backup.get("dataBytes").asLong(), d.get("bytesRestored").asLong());
    List<String> steps = names(d);
    assertEquals(List.of("find", "restore", "attach", "fsck", "mount", "metadata", "check:sqlite:" + dbFile, "unmount",
        "detach", "delete"), steps);
    try (var left = Files.list(scratch)) {
      assertEquals(0, left.count(), "the scratch copy is gone");
    }
    JsonNode history = Cli.run("catalog", "drills", lib, "db", "--json").ok().json();
    assertEquals(1, history.get("drills").size());
    assertEquals(0, Cli.run("catalog", "drills", lib, "nosuchvolume", "--json").ok().json().get("drills").size());
    assertEquals(d.get("id").asLong(), history.get("drills").get(0).get("id").asLong());
    Cli.Result list = Cli.run("catalog", "list", lib, "--drills").ok();
    assertTrue(list.out().contains("db@s1") && list.out().contains("integrity_check"), list::toString);

    // s2, without the fs writer (the filesystem not frozen: its journal needs recovery), after more
    // rows: an incremental; the drill restores the chain, replays the journal, and passes
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + dbFile); Statement s = c.createStatement()) {
      s.execute("INSERT INTO items (name) SELECT 'more ' || id FROM items LIMIT 500");
    }
    JsonNode inc = snapshotAndBackUp("db", "s2", lib, "sqlite:" + dbFile);
    assertEquals("incremental", inc.get("level").asText(), inc::toPrettyString);
    JsonNode d2 = Cli.run("drill", "db", "--library", lib, "--writer", "sqlite:app/app.db", "--count", "items",
        "--scratch", scratch, "--json").ok().json();
    assertEquals("ok", d2.get("outcome").asText(), d2::toPrettyString);
    assertEquals("s2", d2.get("snapshot").asText());
    assertEquals(2, d2.get("jobChain").size(), d2::toPrettyString);
    assertTrue(d2.get("fsck").asText().contains("journal replayed first"), d2::toPrettyString);
    assertTrue(d2.get("databaseCheck").asText().contains("items: 1500 rows"), d2::toPrettyString);
    System.out.println("drills: " + summary(d) + "\n        " + summary(d2));

    // verify: every archive passes
    Cli.Result ok = Cli.run("verify", "--library", lib);
    assertEquals(0, ok.code(), ok::toString);
    assertTrue(ok.out().contains("all passed"), ok::toString);
    assertTrue(ok.err().contains("shade verify: wrote the record of 2 verifications on cartridge SHD001"),
        ok::toString);

    // the drills' and the verify's records are on tape: a catalog lost and rebuilt from the tapes has them all,
    // ids and times included
    assertEquals("SHD001", d2.get("records").get("written").get(0).get("cartridge").asText(), d2::toPrettyString);
    JsonNode before = Cli.run("catalog", "drills", lib, "--json").ok().json();
    JsonNode jobsBefore = Cli.run("catalog", "list", lib, "--json").ok().json();
    assertEquals(2, before.get("drills").size());
    assertEquals(2, before.get("verifications").size());
    for (String suffix : List.of("", "-wal", "-shm")) {
      Files.deleteIfExists(lib.resolve("catalog.db" + suffix));
    }
    JsonNode rebuilt = Cli.run("catalog", "rebuild", "--library", lib, "--json").ok().json();
    assertEquals(2, rebuilt.get("drills").asInt(), rebuilt::toPrettyString);
    assertEquals(2, rebuilt.get("verifications").asInt(), rebuilt::toPrettyString);
    assertEquals(before, Cli.run("catalog", "drills", lib, "--json").ok().json());
    assertEquals(jobsBefore, Cli.run("catalog", "list", lib, "--json").ok().json());

    // a flipped byte in a chunk of the blob, the cartridge's record CRC made to match
    Path export = tmp.resolve("s1.export");
    Cli.run("snapshot", "export", tmp.resolve("volumes/db"), "s1", export).ok();
    byte[] image = Files.readAllBytes(export);
    byte[] needle = Arrays.copyOfRange(blob, 2 * MiB + 4096, 2 * MiB + 4096 + 64);
    long imageOffset = indexOf(image, needle);
    String member = String.format("data/%016x", imageOffset / (4 * MiB) * (4 * MiB));
    Files.delete(export);
    Path cart = lib.resolve("slot-0001.tape");
    byte[] tape = Files.readAllBytes(cart);
    int at = indexOf(tape, needle);
    tape[at + 3] ^= 0x10;
    fixRecordCrc(tape, at);
    Files.write(cart, tape);
    Cli.Result bad = Cli.run("verify", "--library", lib, "--cartridge", "SHD001");
    assertEquals(ExitCodes.FAILURE, bad.code(), bad::toString);
    assertTrue(bad.err().contains("cartridge SHD001, tape file 1") && bad.err().contains(member)
        && bad.err().contains("CRC-32C"), () -> member + ": " + bad);
    JsonNode verifications = Cli.run("catalog", "drills", lib, "--json").ok().json().get("verifications");
    // this run: the full (tape file 1) failed, the incremental (tape file 2) passed
    JsonNode full = verifications.get(verifications.size() - 2);
    assertEquals(1, full.get("fileNumber").asInt());
    assertEquals("failed", full.get("outcome").asText());
    assertEquals(member, full.get("chunk").asText());
    assertEquals("ok", verifications.get(verifications.size() - 1).get("outcome").asText());

    Cli.Result failed = Cli.run("drill", "db", "--library", lib, "--writer", "sqlite:app/app.db", "--scratch",
        scratch);
    assertEquals(ExitCodes.FAILURE, failed.code(), failed::toString);
    assertTrue(failed.err().contains("failed at step restore") && failed.err().contains(member), failed::toString);
    assertTrue(failed.out().contains("FAILED at step restore"), failed::toString);
    JsonNode drills = Cli.run("catalog", "drills", lib, "--json").ok().json().get("drills");
    assertEquals(3, drills.size());
    JsonNode last = drills.get(2);
    assertEquals("failed", last.get("outcome").asText());
    assertEquals("restore", last.get("failedStep").asText());
    assertEquals("skipped", last.get("steps").get(2).get("outcome").asText(), last::toPrettyString);
    try (var left = Files.list(scratch)) {
      assertEquals(0, left.count(), "a failed drill cleans up too");
    }

    // a truncated cartridge: cut in the middle of the blob's chunk
    try (FileChannel ch = FileChannel.open(cart, StandardOpenOption.WRITE)) {
      ch.truncate(at);
    }
    Cli.Result cut = Cli.run("verify", "--library", lib, "--json");
    assertEquals(ExitCodes.FAILURE, cut.code(), cut::toString);
    JsonNode v = cut.json().get("archives").get(0);
    assertEquals("failed", v.get("outcome").asText());
    assertTrue(v.get("error").asText().contains("cartridge SHD001, tape file 1")
        && v.get("error").asText().contains("truncated") && v.get("chunk").asText().startsWith("data/"), v::toString);
  }

  @Test
  void postgresClusterOnExt4_snapshottedWithItsWriter_drillStartsItFromItsBackupLabelAndPassesPgAmcheck()
      throws Exception {
    NbdMount.requireTools();
    LivePostgres.requireTools();
    Tools.require("blkid", "util-linux");
    NbdMount m = servedVolume("pg", "256M");
    LivePostgres pg = teardown.push(LivePostgres.initdb(m.mountPoint().resolve("pgdata"), null, tmp.resolve("run")));
    int port = LivePostgres.freePort();
    pg.start(port, "shared_buffers=16MB", "max_wal_size=64MB");
    pg.psql("postgres", "CREATE TABLE counter (n bigint primary key)");
    pg.psql("postgres", "INSERT INTO counter SELECT generate_series(1, 5000)");
    Path lib = tmp.resolve("vtl");
    Cli.run("tape", "library", "create", lib, "--slots", "2", "--capacity", "512M").ok();
    snapshotAndBackUp("pg", "nightly", lib, "postgres:host=127.0.0.1 port=" + port + " user=postgres dbname=postgres",
        "fs:" + m.mountPoint());
    pg.psql("postgres", "INSERT INTO counter SELECT generate_series(5001, 6000)"); // after the snapshot
    Path scratch = scratch();

    JsonNode d = Cli.run("drill", "pg", "--library", lib, "--writer", "postgres", "--count", "counter", "--scratch",
        scratch, "--json").ok().json();
    assertEquals("ok", d.get("outcome").asText(), d::toPrettyString);
    String check = d.get("databaseCheck").asText();
    assertTrue(check.contains("PostgreSQL 15 on pgdata") && check.contains("recovered from its backup_label")
        && check.contains("pg_amcheck --all: ok") && check.contains("counter: 5000 rows"), d::toPrettyString);
    assertTrue(d.get("steps").get(5).get("detail").asText().contains("pgdata/backup_label"), d::toPrettyString);
    assertTrue(d.get("fsck").asText().startsWith("ext4: clean"), d::toPrettyString);
    try (var left = Files.list(scratch)) {
      assertEquals(0, left.count(), "the scratch copy is gone");
    }
    assertEquals(1, Cli.run("catalog", "drills", lib, "--json").ok().json().get("drills").size());
    System.out.println("drill: " + summary(d));

    // PGDATA as a path on the production host, and --keep: the image stays, unmounted and detached
    JsonNode kept = Cli.run("drill", "pg", "--library", lib, "--writer", "postgres:" + m.mountPoint().resolve("pgdata"),
        "--scratch", scratch, "--keep", "--json").ok().json();
    assertEquals("ok", kept.get("outcome").asText(), kept::toPrettyString);
    assertTrue(kept.get("databaseCheck").asText().contains("pg_amcheck --all: ok"), kept::toPrettyString);
    String keptDetail = kept.get("steps").get(kept.get("steps").size() - 1).get("detail").asText();
    assertTrue(keptDetail.startsWith("kept "), keptDetail);
    Path image = Path.of(keptDetail.substring("kept ".length()));
    assertTrue(Files.isRegularFile(image), image::toString);
    assertFalse(Files.exists(image.resolveSibling("mnt")), "the mount point is gone");
    String loops = dev.shade.testing.Command.run("losetup", "-a").output();
    assertFalse(loops.contains(image.toString()), loops);
    Files.delete(image);
  }

  /** The figures of a drill on one line. */
  private static String summary(JsonNode d) {
    StringBuilder b = new StringBuilder(String.format(java.util.Locale.ROOT,
        "%s@%s %s: first byte %.3f s, restore %.3f s, %d bytes;", d.get("volume").asText(), d.get("snapshot").asText(),
        d.get("outcome").asText(), d.get("firstByteSeconds").asDouble(), d.get("restoreSeconds").asDouble(),
        d.get("bytesRestored").asLong()));
    d.get("steps").forEach(s -> b.append(String.format(java.util.Locale.ROOT, " %s %.3f s", s.get("name").asText(),
        s.get("seconds").asDouble())));
    return b.toString();
  }

  private static List<String> names(JsonNode drill) {
    List<String> out = new java.util.ArrayList<>();
    drill.get("steps").forEach(s -> out.add(s.get("name").asText()));
    return out;
  }

  /** Recomputes the CRC-32C of the virtual cartridge frame holding byte {@code at} (docs/tapes.md). */
  private static void fixRecordCrc(byte[] tape, int at) {
    ByteBuffer b = ByteBuffer.wrap(tape);
    int pos = 64;
    while (pos < tape.length) {
      int len = b.getInt(pos + 4);
      if (at >= pos + 16 && at < pos + 16 + len) {
        CRC32C crc = new CRC32C();
        crc.update(tape, pos + 16, len);
        b.putInt(pos + 8, (int) crc.getValue());
        CRC32C h = new CRC32C();
        h.update(tape, pos, 12);
        b.putInt(pos + 12, (int) h.getValue());
        return;
      }
      pos += 16 + len;
    }
    throw new AssertionError("no frame holds byte " + at);
  }

  private static int indexOf(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    throw new AssertionError("pattern not found");
  }
}
