package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code shade restore --to DIR/} and {@code --to nbd+unix://}: a snapshot backed up as a full
 * and an incremental (whose chunks include one zeroed since the full), restored into a new
 * volume, into an existing one with --force, and into the writable export of a volume an agent
 * holds, filled with 0xAA first; each compared byte for byte with {@code shade snapshot export}.
 * And the refusals: a directory of other files, an existing volume without --force, a volume an
 * agent holds, a smaller volume.
 */
class RestoreTargetsTest {
  private static final int MiB = 1024 * 1024;
  /** Shared by the tests (backed up once); each test uses names of its own in it. */
  @TempDir static Path tmp;
  @RegisterExtension static final Leftovers started = new Leftovers();
  private static Path lib;
  /** The incremental's snapshot, as 'shade snapshot export' wrote it. */
  private static byte[] s2;

  /** db (8 MiB): s1 with data at [0, 3) MiB and [5, 6) MiB; s2 with [1, 2) MiB zeroed and 64 KiB at 6 MiB. */
  @BeforeAll
  static void backUp() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "8M");
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "a.bin", TestVolumes.random(1, 3 * MiB))).ok();
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "b.bin", TestVolumes.random(2, MiB)), "--offset", "5M").ok();
    lib = tmp.resolve("vtl");
    Cli.run("tape", "library", "create", lib, "--slots", "2", "--capacity", "256M").ok();
    Path control = tmp.resolve("db-control.sock");
    Path nbd = tmp.resolve("db-nbd.sock");
    AgentProcess agent = started.agent(tmp, control, nbd, List.of(db));
    Cli.run("snapshot", "create", db, "--name", "s1").ok();
    Cli.run("backup", "run", "--source", "nbd+unix:///db@s1?socket=" + nbd, "--library", lib, "--chunk-size", "1M")
        .ok();
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "z.bin", new byte[MiB]), "--offset", "1M").ok();
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "c.bin", TestVolumes.random(3, 64 * 1024)), "--offset",
        "6M").ok();
    Cli.run("snapshot", "create", db, "--name", "s2").ok();
    assertTrue(Cli.run("backup", "run", "--source", "nbd+unix:///db@s2?socket=" + nbd, "--library", lib, "--level",
        "incremental").ok().out().contains("as an incremental since s1"));
    Path export = tmp.resolve("s2.export");
    Cli.run("snapshot", "export", db, "s2", export).ok();
    s2 = Files.readAllBytes(export);
    assertEquals(8 * MiB, s2.length);
    agent.stop();
  }

  private static Cli.Result restore(Object to, Object... more) {
    List<Object> args = new ArrayList<>(List.of("restore", "--volume", "db", "--snapshot", "s2", "--library", lib,
        "--to", to));
    args.addAll(Arrays.asList(more));
    return Cli.run(args.toArray());
  }

  private static byte[] volumeImage(Path dir, Path tmp) throws Exception {
    Path out = tmp.resolve("export-" + System.nanoTime() + ".img");
    Cli.run("volume", "export", dir, out).ok();
    return Files.readAllBytes(out);
  }

  /** A new volume of {@code size} whose whole origin holds 0xAA. */
  private static Path filledVolume(String name, String size, int bytes) throws Exception {
    Path v = TestVolumes.create(tmp.resolve(name), size);
    byte[] fill = new byte[bytes];
    Arrays.fill(fill, (byte) 0xAA);
    Cli.run("volume", "import", v, TestVolumes.file(tmp, name + ".fill", fill)).ok();
    return v;
  }

  @Test
  void newVolumeDir_equalsTheSnapshot_andIsAShadeVolume() throws Exception {
    Path dir = tmp.resolve("restored");
    JsonNode r = restore(dir + "/", "--json", "--block-size", "16K").ok().json();
    assertEquals("volume", r.get("target").asText(), r::toString);
    assertEquals(dir.toAbsolutePath().toString(), r.get("directory").asText());
    assertEquals(2, r.get("chain").size());
    assertArrayEquals(s2, volumeImage(dir, tmp));
    JsonNode info = Cli.run("volume", "info", dir, "--json").ok().json();
    assertEquals(8L * MiB, info.get("size").asLong());
    assertEquals(16 * 1024, info.get("blockSize").asInt());
    assertTrue(r.get("notes").toString().contains("block size 16 KiB (--block-size)"), r::toString);
    // the restored volume is a volume like any other: a snapshot of it exports the same bytes
    Cli.run("snapshot", "create", dir, "--name", "restored").ok();
    Path snap = tmp.resolve("restored-snap.img");
    Cli.run("snapshot", "export", dir, "restored", snap).ok();
    assertArrayEquals(s2, Files.readAllBytes(snap));
  }

  @Test
  void existingEmptyDir_getsTheVolume_textSummaryNamesIt() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("empty"));
    Cli.Result r = restore(dir).ok();
    assertTrue(r.out().contains("to volume " + dir), r::toString);
    assertTrue(r.err().contains("created volume"), r::toString);
    assertArrayEquals(s2, volumeImage(dir, tmp));
    // without --block-size the new volume gets the backed-up volume's (4K; shade volume create's default is 64K)
    assertTrue(r.err().contains("block size 4 KiB (the backed-up volume's)"), r::toString);
    assertEquals(4096, Cli.run("volume", "info", dir, "--json").ok().json().get("blockSize").asInt());
    JsonNode job = Cli.run("catalog", "show", "db@s2", "--library", lib, "--json").ok().json();
    assertEquals(4096, job.get("volumeBlockSize").asInt(), job::toString);
  }

  @Test
  void blockSize_isForANewVolumeOnly() throws Exception {
    Cli.Result file = restore(tmp.resolve("image.img"), "--block-size", "16K");
    assertEquals(ExitCodes.USAGE, file.code(), file::toString);
    assertTrue(file.err().contains("--block-size is for a new volume (--to DIR)"), file::toString);
    assertFalse(Files.exists(tmp.resolve("image.img")));
    Cli.Result nbd = restore("nbd+unix:///db?socket=" + tmp.resolve("none.sock"), "--block-size", "16K");
    assertEquals(ExitCodes.USAGE, nbd.code(), nbd::toString);
    assertTrue(nbd.err().contains("--block-size is for a new volume (--to DIR)"), nbd::toString);
  }

  @Test
  void existingVolume_refusedWithoutForce_withForceHoldsTheSnapshot_itsSnapshotsKept() throws Exception {
    Path v = filledVolume("old", "8M", 8 * MiB);
    Cli.run("snapshot", "create", v, "--name", "before").ok();
    Cli.Result no = restore(v);
    assertEquals(ExitCodes.FAILURE, no.code(), no::toString);
    assertTrue(no.err().contains("a volume already exists in " + v) && no.err().contains("--force"), no::toString);
    byte[] fill = new byte[8 * MiB];
    Arrays.fill(fill, (byte) 0xAA);
    assertArrayEquals(fill, volumeImage(v, tmp), "refused: untouched");

    restore(v, "--force").ok();
    assertArrayEquals(s2, volumeImage(v, tmp), "zero chunks written over the 0xAA too");
    Path before = tmp.resolve("before.img");
    Cli.run("snapshot", "export", v, "before", before).ok();
    assertArrayEquals(fill, Files.readAllBytes(before), "the restore went through copy-on-write");
  }

  @Test
  void failedRestore_removesTheVolumeItCreated() throws Exception {
    // a copy of the library whose cartridge holds only the first 2 MiB of the full
    Path broken = Files.createDirectories(tmp.resolve("vtl-broken"));
    for (String f : List.of("catalog.db", "library.properties", "slot-0001.tape", "slot-0002.tape")) {
      Files.copy(lib.resolve(f), broken.resolve(f));
    }
    try (var ch = java.nio.channels.FileChannel.open(broken.resolve("slot-0001.tape"),
        java.nio.file.StandardOpenOption.WRITE)) {
      ch.truncate(2L * MiB);
    }
    Path fresh = tmp.resolve("fresh");
    Cli.Result r = Cli.run("restore", "--volume", "db", "--snapshot", "s2", "--library", broken, "--to", fresh + "/");
    assertEquals(ExitCodes.FAILURE, r.code(), r::toString);
    assertFalse(Files.exists(fresh), "the directory the restore made is gone: " + r);
    Path empty = Files.createDirectories(tmp.resolve("was-empty"));
    assertEquals(ExitCodes.FAILURE, Cli.run("restore", "--volume", "db", "--snapshot", "s2", "--library", broken,
        "--to", empty).code());
    assertEquals(List.of(), Files.list(empty).toList(), "an empty directory given is left empty");
  }

  @Test
  void smallerVolume_isRefusedNamingBothSizes() throws Exception {
    Path v = TestVolumes.create(tmp.resolve("small"), "4M");
    Cli.Result r = restore(v, "--force");
    assertEquals(ExitCodes.FAILURE, r.code(), r::toString);
    assertTrue(r.err().contains("holds " + 4 * MiB + " bytes, less than the image's " + 8 * MiB), r::toString);
  }

  @Test
  void dirOfOtherFiles_isRefused_andLeftAlone() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("other"));
    Files.writeString(dir.resolve("keep.txt"), "mine");
    Cli.Result r = restore(dir);
    assertEquals(ExitCodes.FAILURE, r.code(), r::toString);
    assertTrue(r.err().contains("holds other files and no shade volume"), r::toString);
    assertEquals(List.of(dir.resolve("keep.txt")), Files.list(dir).toList());
  }

  @Test
  void volumeHeldByAnAgent_refusedAsADir_restoredThroughItsWritableExport() throws Exception {
    Path tgt = filledVolume("tgt", "8M", 8 * MiB);
    Path control = tmp.resolve("tgt-control.sock");
    Path nbd = tmp.resolve("tgt-nbd.sock");
    AgentProcess agent = started.agent(tmp, control, nbd, List.of(tgt));

    Cli.Result held = restore(tgt, "--force");
    assertEquals(ExitCodes.FAILURE, held.code(), held::toString);
    assertTrue(held.err().contains("is held by the shade agent") && held.err().contains(control.toString()),
        held::toString);

    JsonNode r = restore("nbd+unix:///tgt?socket=" + nbd, "--json").ok().json();
    assertEquals("nbd", r.get("target").asText(), r::toString);
    assertEquals("nbd+unix:///tgt?socket=" + nbd, r.get("export").asText());
    assertArrayEquals(s2, volumeImage(tgt, tmp), "read through the agent: exactly the snapshot");
    agent.stop();
    assertArrayEquals(s2, TestVolumes.image(tgt), "and durable in the volume itself");
  }

  @Test
  void readOnlyExport_isRefused() throws Exception {
    Path tgt = filledVolume("ro", "8M", 8 * MiB);
    Path control = tmp.resolve("ro-control.sock");
    Path nbd = tmp.resolve("ro-nbd.sock");
    started.agent(tmp, control, nbd, List.of(tgt));
    Cli.run("snapshot", "create", tgt, "--name", "snap").ok();
    Cli.Result r = restore("nbd+unix:///ro@snap?socket=" + nbd);
    assertEquals(ExitCodes.FAILURE, r.code(), r::toString);
    assertTrue(r.err().contains("is read-only"), r::toString);
  }

  @Test
  void usageErrors_tlsWithoutNbds_badUri() throws Exception {
    Cli.Result tls = restore(tmp.resolve("x.img"), "--tls-ca", tmp.resolve("ca.pem"));
    assertEquals(ExitCodes.USAGE, tls.code(), tls::toString);
    Cli.Result uri = restore("nbd+unix:///x");
    assertEquals(ExitCodes.USAGE, uri.code(), uri::toString);
    assertTrue(uri.err().contains("socket"), uri::toString);
    assertFalse(Files.exists(tmp.resolve("x.img")));
  }
}
