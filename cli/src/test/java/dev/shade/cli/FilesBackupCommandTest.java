package dev.shade.cli;

import static dev.shade.testing.live.TreeFixture.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.offhost.backup.Catalog;
import dev.shade.offhost.backup.SnapshotIdentity;
import dev.shade.offhost.files.FilesManifest;
import dev.shade.offhost.tape.TapeDrive;
import dev.shade.offhost.tape.TapeOutputStream;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import dev.shade.testing.Tools;
import dev.shade.testing.live.NbdMount;
import dev.shade.testing.live.TreeFixture;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code shade backup run --format files} and {@code shade restore --files} end to end: a real
 * ext4 volume served by a shade agent (holding long names, a 9 GiB sparse file, symbolic and
 * hard links, modes, owners, xattrs, ACLs, a fifo, a device node), a virtual tape library, GNU
 * tar reading the archive from {@code shade tape cat}, and a crafted archive on a cartridge
 * that the restore refuses.
 */
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class FilesBackupCommandTest {
  @TempDir Path tmp;
  private AgentProcess agent;
  private NbdMount mount;

  @AfterEach
  void tearDown() throws Exception {
    if (mount != null) {
      mount.close();
    }
    if (agent != null && agent.process().isAlive()) {
      agent.process().destroyForcibly();
      agent.process().waitFor(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void filesBackup_gnuTarListsAndExtracts_restoreFilesEqualsOriginals_craftedArchiveRefused() throws Exception {
    NbdMount.requireTools();
    Tools.require("getfacl", "acl");
    Tools.require("setfacl", "acl");
    Tools.require("tar", "tar");
    Path db = TestVolumes.create(tmp.resolve("db"), "512M");
    Path control = tmp.resolve("control.sock");
    Path nbd = tmp.resolve("nbd.sock");
    Path raw = TestVolumes.create(tmp.resolve("raw"), "64M"); // no filesystem on it
    agent = AgentProcess.start(tmp, List.of(db, raw, "--control-socket", control, "--socket", nbd), control);
    mount = NbdMount.open("nbd+unix:///db?socket=" + nbd, tmp.resolve("nbd-origin"), tmp.resolve("mnt"), true);
    Path mnt = mount.mountPoint();
    TreeFixture.populate(mnt);
    Map<String, String> original = TreeFixture.describe(mnt);
    mount.close(); // a clean filesystem on the volume
    mount = null;
    Cli.run("snapshot", "create", db, "--name", "s1").ok();

    Path lib = tmp.resolve("vtl");
    Cli.run("tape", "library", "create", lib, "--slots", "2", "--capacity", "1G").ok();
    // a snapshot without a filesystem: the job fails, recorded as failed, and the attachment comes down
    Cli.run("snapshot", "create", raw, "--name", "r1").ok();
    Cli.Result noFs = Cli.run("backup", "run", "--source", "nbd+unix:///raw@r1?socket=" + nbd, "--library", lib,
        "--format", "files");
    assertEquals(ExitCodes.FAILURE, noFs.code(), noFs::toString);
    assertTrue(noFs.err().contains("no filesystem found on nbd+unix:///raw@r1"), noFs::toString);
    assertEquals("failed", Cli.run("catalog", "list", lib, "--json").ok().json().get("jobs").get(0).get("outcome")
        .asText());
    assertAttachmentsGone();
    assertEquals(ExitCodes.USAGE, Cli.run("backup", "run", "--source", "nbd+unix:///db@s1?socket=" + nbd, "--library",
        lib, "--format", "files", "--level", "incremental").code());

    JsonNode b = Cli.run("backup", "run", "--source", "nbd+unix:///db@s1?socket=" + nbd, "--library", lib, "--format",
        "files", "--json").ok().json();
    assertEquals("files", b.get("format").asText(), b::toString);
    assertEquals("ext4", b.get("filesystem").asText(), b::toString);
    assertEquals("SHD001", b.get("cartridge").asText());
    assertEquals(1, b.get("sparseFiles").asInt(), b::toString);
    assertEquals(2, b.get("hardLinks").asInt(), b::toString);
    assertTrue(b.get("bytes").asLong() > TreeFixture.BIG, b::toString);
    assertTrue(b.get("archiveBytes").asLong() < 32 << 20, "holes stay out of the archive: " + b);
    assertTrue(b.get("acls").asBoolean());
    System.out.printf("files backup: %d entries, %d bytes in files, %d stored, archive %d bytes, in %.2f s%n",
        b.get("files").asLong(), b.get("bytes").asLong(), b.get("dataBytes").asLong(), b.get("archiveBytes").asLong(),
        b.get("seconds").asDouble());
    JsonNode job = Cli.run("catalog", "list", lib, "--json").ok().json().get("jobs").get(1);
    assertEquals("files", job.get("format").asText(), job::toString);
    assertEquals("ok", job.get("outcome").asText(), job::toString);
    assertTrue(Cli.run("catalog", "list", lib).ok().out().contains("files"));
    // tape file 1 is the record of the failed job above (no filesystem), 2 the files archive
    JsonNode tapeFiles = Cli.run("tape", "list", lib, "--json").ok().json().get("cartridges").get(0).get("files");
    assertEquals("job", tapeFiles.get(1).get("kind").asText(), tapeFiles::toString);
    assertEquals("files", tapeFiles.get(2).get("kind").asText(), tapeFiles::toString);
    assertEquals(2, b.get("fileNumber").asInt(), b::toString);
    assertAttachmentsGone();

    // GNU tar lists the tape file and extracts one file identical to the original
    String listing = shell("tape cat '" + lib + "' SHD001 2 | tar -t");
    List<String> members = listing.lines().toList();
    assertEquals(FilesManifest.HEADER_MEMBER, members.get(0));
    assertEquals(FilesManifest.MANIFEST_MEMBER, members.get(members.size() - 1));
    assertTrue(members.contains("files/data/db/big.img"), listing);
    assertTrue(members.contains("files/srv/fifo"), listing);
    Path x = Files.createDirectories(tmp.resolve("x"));
    String one = "srv/app dir é/run me.sh";
    shell("tape cat '" + lib + "' SHD001 2 | (cd '" + x + "' && tar -x --xattrs --xattrs-include='*' --acls "
        + "--numeric-owner 'files/" + one + "' files/etc/hosts)");
    assertEquals(original.get(one), TreeFixture.describe(x.resolve("files")).get(one));
    assertEquals(original.get("etc/hosts"), TreeFixture.describe(x.resolve("files")).get("etc/hosts"));

    // shade restore --files: one file, then a whole directory
    Path r1 = tmp.resolve("r1");
    JsonNode r = Cli.run("restore", "--volume", "db", "--snapshot", "s1", "--library", lib, "--files", "etc/hosts",
        "--to", r1, "--json").ok().json();
    assertEquals(1, r.get("files").asInt(), r::toString);
    assertEquals(1, r.get("checked").asInt(), "its SHA-256 checked against the manifest: " + r);
    assertEquals(original.get("etc/hosts"), TreeFixture.describe(r1).get("etc/hosts"));
    Path r2 = tmp.resolve("r2");
    // (with the third name of data/db/page.db, so that its link count is the original's)
    Cli.Result text = Cli.run("restore", "--volume", "db", "--snapshot", "s1", "--library", lib, "--files", "data",
        "--files", "srv", "--files", "etc/page.db.link2", "--to", r2).ok();
    assertTrue(text.out().startsWith("Restored "), text::toString);
    Map<String, String> want = new TreeMap<>(original);
    want.keySet().removeIf(k -> !(k.startsWith("data") || k.startsWith("srv") || k.equals("etc/page.db.link2")));
    Map<String, String> got = TreeFixture.describe(r2);
    got.remove("etc"); // made as the link's parent, not restored from the archive
    TreeFixture.assertSameTree(want, got);
    assertTrue(TreeFixture.allocated(r2.resolve("data/db/big.img")) < 16 << 20, "the restored big file is sparse");

    // the catalog lost: rebuilt from the tapes alone, the files job is back (its record follows its
    // archive on tape) and restores as before, and so is the failed one (its record alone on tape)
    JsonNode failedJob = Cli.run("catalog", "list", lib, "--json").ok().json().get("jobs").get(0);
    for (String f : List.of("catalog.db", "catalog.db-wal", "catalog.db-shm")) {
      Files.deleteIfExists(lib.resolve(f));
    }
    Cli.Result rebuilt = Cli.run("catalog", "rebuild", "--library", lib, "--json").ok();
    assertEquals(0, rebuilt.json().get("problems").size(), rebuilt::toString);
    JsonNode back = Cli.run("catalog", "list", lib, "--json").ok().json().get("jobs");
    assertEquals(2, back.size(), back::toString);
    assertEquals(failedJob, back.get(0), "the failed files job, message and times, from its record on tape");
    assertEquals(job.get("jobId"), back.get(1).get("jobId"), back::toString);
    assertEquals("files", back.get(1).get("format").asText(), back::toString);
    assertEquals(job.get("archive"), back.get(1).get("archive"), back::toString);
    Path r4 = tmp.resolve("r4");
    Cli.run("restore", "--volume", "db", "--snapshot", "s1", "--library", lib, "--files", "etc/hosts", "--to", r4).ok();
    assertEquals(original.get("etc/hosts"), TreeFixture.describe(r4).get("etc/hosts"));

    // shade verify reads the files archive whole and checks every file's SHA-256
    JsonNode v = Cli.run("verify", "--library", lib, "--json").ok().json();
    assertEquals(1, v.get("archives").size(), v::toString);
    assertEquals("ok", v.get("archives").get(0).get("outcome").asText(), v::toString);
    assertTrue(v.get("bytes").asLong() > 1 << 20, v::toString);

    // a crafted archive on a cartridge: a symbolic link out, then a file through it; a '..' name
    Path outside = Files.createDirectories(tmp.resolve("outside"));
    Files.writeString(outside.resolve("passwd"), "root:x:0:0\n");
    craft(lib, b.get("volumeUuid").asText());
    Path r3 = tmp.resolve("r3");
    Cli.Result evil = Cli.run("restore", "--volume", "db", "--snapshot", "evil", "--library", lib, "--files", "*",
        "--to", r3);
    assertEquals(ExitCodes.FAILURE, evil.code(), evil::toString);
    assertTrue(evil.err().contains("refusing archive member 'files/dir/passwd'") && evil.err().contains("symbolic link"),
        evil::toString);
    assertEquals("root:x:0:0\n", Files.readString(outside.resolve("passwd")));
    assertEquals(List.of("passwd"), Files.list(outside).map(p -> p.getFileName().toString()).toList());
  }

  /** No mount, FUSE mount or loop device of a files backup's attachment is left. */
  private static void assertAttachmentsGone() throws Exception {
    assertEquals("", sh("grep 'shade-files-' /proc/self/mountinfo || true").strip(), "mounts left");
    assertEquals("", sh("losetup -a | grep 'shade-files-' || true").strip(), "loop devices left");
  }

  /** Appends a crafted files archive of snapshot "evil" to SHD001 and records it in the catalog. */
  private void craft(Path lib, String volumeUuid) throws Exception {
    Path outside = tmp.resolve("outside");
    ByteArrayOutputStream a = new ByteArrayOutputStream();
    FilesManifest h = new FilesManifest("db", volumeUuid, "evil", 999, Instant.EPOCH, 0, "ext4", 512, Instant.EPOCH,
        null, null, null);
    byte[] manifest = h.complete(Instant.EPOCH, new FilesManifest.Counts(2, 0, 1, 0, 1, 0, 0, 0, 5, 5)).bytes();
    try (TarArchiveOutputStream t = new TarArchiveOutputStream(a, "UTF-8")) {
      t.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      put(t, new TarArchiveEntry(FilesManifest.HEADER_MEMBER), h.bytes());
      TarArchiveEntry link = new TarArchiveEntry("files/dir", TarConstants.LF_SYMLINK);
      link.setLinkName(outside.toString());
      put(t, link, new byte[0]);
      put(t, new TarArchiveEntry("files/dir/passwd"), "evil\n".getBytes(StandardCharsets.UTF_8));
      put(t, new TarArchiveEntry("files/../../outside/x", true), "evil\n".getBytes(StandardCharsets.UTF_8));
      put(t, new TarArchiveEntry(FilesManifest.MANIFEST_MEMBER), manifest);
    }
    int fileNumber;
    try (VirtualTapeLibrary l = VirtualTapeLibrary.open(lib)) {
      int slot = l.find("SHD001").orElseThrow().slot();
      TapeDrive d = l.load(0, slot);
      d.seekEndOfData();
      fileNumber = l.cartridgeInfo(slot).files().size();
      TapeOutputStream out = new TapeOutputStream(d);
      out.write(a.toByteArray());
      out.close();
      l.unload(0);
    }
    try (Catalog c = Catalog.open(lib)) {
      SnapshotIdentity id = new SnapshotIdentity("db", volumeUuid, "evil", 999, Instant.EPOCH, 512L << 20);
      long job = c.startJob(id, "full", -1, -1, "default", 0, Instant.EPOCH, Catalog.FORMAT_FILES);
      c.completeJob(job, "SHD001", fileNumber, a.size(),
          HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(manifest)), List.of(), 5, null,
          Instant.EPOCH);
    }
  }

  private static void put(TarArchiveOutputStream t, TarArchiveEntry e, byte[] body) throws Exception {
    e.setSize(body.length);
    t.putArchiveEntry(e);
    t.write(body);
    t.closeArchiveEntry();
  }

  /** Runs {@code shade ARGS} (a real JVM) in a bash pipeline with pipefail; returns its stdout. */
  private static String shell(String shadeArgsAndPipe) throws Exception {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    return sh("export CP='" + System.getProperty("java.class.path") + "'; '" + java
        + "' -Xshare:auto -XX:TieredStopAtLevel=1 -cp \"$CP\" dev.shade.cli.Shade " + shadeArgsAndPipe);
  }
}
