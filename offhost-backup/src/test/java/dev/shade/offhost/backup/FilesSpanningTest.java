package dev.shade.offhost.backup;

import static dev.shade.testing.live.TreeFixture.sh;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.offhost.files.FilesManifest;
import dev.shade.offhost.tape.CartridgeInfo;
import dev.shade.offhost.tape.LibraryConfig;
import dev.shade.offhost.tape.TapeDrive;
import dev.shade.offhost.tape.TapeInputStream;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import dev.shade.testing.Tools;
import dev.shade.testing.live.TreeFixture;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link FilesBackupService} end to end over a real NBD export (nbdkit serving an ext4 image
 * that mkfs.ext4 filled), attached with nbdfuse, a loop device and a read-only mount, into a
 * virtual library of small cartridges: the archive spans three cartridges (a file larger than a
 * cartridge in parts across them), GNU tar lists every piece, {@link FilesRestoreService}
 * restores every file and puts the PostgreSQL writer's {@code backup_label} back with its data
 * directory (and only then), {@link VerifyService} passes, and a flipped byte in the second
 * cartridge fails it naming the cartridge, the tape file and the member.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class FilesSpanningTest {
  /** 4 MiB cartridges whose early warning starts 1 MiB before the end: about 3 MiB of archive each. */
  private static final LibraryConfig CONFIG = new LibraryConfig(6, 1, 4L << 20, 1L << 20, 64 * 1024);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String LABEL = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
      + "CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n"
      + "START TIME: 2026-12-01 02:00:00 UTC\nLABEL: shade s1\nSTART TIMELINE: 1\n";

  @TempDir Path tmp;
  private Process nbdkit;

  @AfterEach
  void stop() throws Exception {
    if (nbdkit != null) {
      nbdkit.destroy();
      nbdkit.waitFor(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void filesArchiveSpanningThreeCartridges_restoresEveryFile_writerLabelBack_verifyNamesDamage() throws Exception {
    Tools.requireRoot("attach the snapshot with a loop device and mount it");
    Tools.require("nbdkit", "nbdkit", "nbdfuse", "nbdfuse");
    Tools.require("mkfs.ext4", "e2fsprogs", "tar", "tar");
    Tools.requireFuse();
    Tools.requireLoopDevice();
    Path src = Files.createDirectories(tmp.resolve("src"));
    Path data = Files.createDirectories(src.resolve("pg/data"));
    Files.createDirectories(data.resolve("base/1"));
    Files.createDirectories(src.resolve("etc"));
    Files.writeString(data.resolve("PG_VERSION"), "15\n");
    for (int i = 0; i < 48; i++) {
      Files.write(data.resolve("base/1/" + (16384 + i)), TreeFixture.random(i, 40_000 + 211 * i));
    }
    byte[] big = TreeFixture.random(77, 5 << 20); // more than a whole cartridge holds
    Files.write(data.resolve("base/1/big"), big);
    Files.writeString(src.resolve("etc/hosts"), "127.0.0.1 localhost\n");
    Path image = tmp.resolve("fs.img");
    sh("truncate -s 48M '" + image + "' && mkfs.ext4 -q -F -E root_owner=0:0 -d '" + src + "' '" + image + "'");
    Path sock = tmp.resolve("nbd.sock");
    nbdkit = new ProcessBuilder("nbdkit", "--foreground", "--readonly", "--unix", sock.toString(), "file",
        image.toString()).redirectErrorStream(true).redirectOutput(tmp.resolve("nbdkit.log").toFile()).start();
    for (int i = 0; i < 100 && !Files.exists(sock); i++) {
      Thread.sleep(50);
    }
    assertTrue(Files.exists(sock), "nbdkit listens");

    JsonNode metadata = JSON.readTree("[{\"writer\":\"postgres:/srv/pg/data\",\"files\":[{\"path\":\"pg/data/backup_label\","
        + "\"content\":" + JSON.writeValueAsString(LABEL) + ",\"mode\":384}],\"facts\":{\"mountPoint\":\"/srv\"}}]");
    SnapshotIdentity id = new SnapshotIdentity("db", "0f0e-uuid", "s1", 1, Instant.parse("2026-12-01T02:00:00Z"),
        Files.size(image));
    Path libDir = tmp.resolve("vtl");
    List<String> notes = new ArrayList<>();
    FilesBackupService.Result r;
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(libDir, CONFIG); Catalog cat = Catalog.open(libDir)) {
      r = FilesBackupService.run(lib, cat, id, "nbd+unix:///?socket=" + sock,
          new FilesBackupService.Request("nightly", metadata), BackupProgress.NONE, notes::add);
    }
    assertEquals(3, r.pieces().size(), () -> r.pieces() + " " + notes);
    assertEquals(List.of("SHD001", "SHD002", "SHD003"), r.labelledAll());
    assertTrue(notes.stream().anyMatch(n -> n.contains("continues with piece 2 on cartridge SHD002")), notes::toString);
    assertEquals(r.pieces().stream().mapToLong(PieceEntry::bytes).sum(), r.archiveBytes());

    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(libDir); Catalog cat = Catalog.open(libDir)) {
      assertEquals(r.pieces(), cat.pieces(cat.job(r.jobId()).orElseThrow().archive()), "the pieces in the catalog");
      // every piece is a tar GNU tar lists: the header first, continued.json or the manifest last
      for (PieceEntry p : r.pieces()) {
        Path t = tmp.resolve("piece-" + p.piece() + ".tar");
        CartridgeInfo c = lib.find(p.cartridge()).orElseThrow();
        try (TapeDrive d = lib.openForReading(c.slot())) {
          d.seekFile(p.fileNumber());
          try (InputStream in = new TapeInputStream(d)) {
            Files.copy(in, t);
          }
        }
        List<String> names = sh("tar -t -f '" + t + "'").lines().toList();
        assertEquals(FilesManifest.HEADER_MEMBER, names.get(0));
        assertEquals(p.piece() == 2 ? FilesManifest.MANIFEST_MEMBER : "continued.json", names.get(names.size() - 1));
        assertTrue(p.piece() == 0 || names.stream().anyMatch(n -> n.startsWith("parts/pg/data/base/1/big/")), names::toString);
        // the virtual library tells its room: big is cut only where a cartridge ends, one part on each
        assertEquals(1, names.stream().filter(n -> n.endsWith("base/1/big") || n.contains("base/1/big/")).count(),
            names::toString);
        if (p.piece() < 2) {
          assertTrue(c.earlyWarning(), "the piece ends past the early warning: " + c);
        } else {
          JsonNode manifest = JSON.readTree(sh("tar -x -O -f '" + t + "' " + FilesManifest.MANIFEST_MEMBER));
          for (JsonNode f : manifest.get("checksums")) {
            assertEquals(f.get("path").asText().equals("pg/data/base/1/big") ? 3 : 0, f.path("parts").asInt(),
                f::toString);
          }
        }
      }

      // the whole tree: every file, and the writer's backup_label with its data directory
      Path all = tmp.resolve("all");
      FilesRestoreService.Result got = FilesRestoreService.restore(lib, cat, "db", "s1", List.of("*"), all, p -> {});
      try (var walk = Files.walk(src)) {
        for (Path p : walk.filter(Files::isRegularFile).toList()) {
          assertArrayEquals(Files.readAllBytes(p), Files.readAllBytes(all.resolve(src.relativize(p))), p.toString());
        }
      }
      assertEquals(51, got.extracted().checked(), "every regular file's checksum");
      assertEquals(List.of("pg/data/backup_label"), got.extracted().writerFiles());
      assertEquals(LABEL, Files.readString(all.resolve("pg/data/backup_label")));
      assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(
          Files.getPosixFilePermissions(all.resolve("pg/data/backup_label"))));

      // the data directory alone brings it too; a directory inside it, or another file, does not
      Path dataDir = tmp.resolve("data");
      got = FilesRestoreService.restore(lib, cat, "db", "s1", List.of("pg/data"), dataDir, p -> {});
      assertEquals(LABEL, Files.readString(dataDir.resolve("pg/data/backup_label")));
      assertArrayEquals(big, Files.readAllBytes(dataDir.resolve("pg/data/base/1/big")));
      Path base = tmp.resolve("base");
      got = FilesRestoreService.restore(lib, cat, "db", "s1", List.of("pg/data/base"), base, p -> {});
      assertFalse(Files.exists(base.resolve("pg/data/backup_label")));
      assertTrue(got.extracted().writerFiles().isEmpty());
      Path hosts = tmp.resolve("hosts");
      got = FilesRestoreService.restore(lib, cat, "db", "s1", List.of("etc/hosts"), hosts, p -> {});
      assertEquals(List.of("etc/hosts"), got.extracted().restored());
      assertTrue(got.extracted().notes().isEmpty(), got.extracted().notes()::toString);
      assertEquals(1, got.extracted().checked());

      VerifyService.Result v = VerifyService.verify(lib, cat, VerifyService.Selection.ALL, BackupProgress.NONE, x -> { });
      assertTrue(v.ok(), v::toString);
      assertEquals(1, v.archives().size());
    }

    // the catalog lost: rebuilt from the tapes, the job comes back with its three pieces
    for (String f : List.of(Catalog.FILE, Catalog.FILE + "-wal", Catalog.FILE + "-shm")) {
      Files.deleteIfExists(libDir.resolve(f));
    }
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(libDir); Catalog cat = Catalog.open(libDir)) {
      CatalogRebuild.Result rebuilt = CatalogRebuild.rebuild(lib, cat, BackupProgress.NONE, n -> { });
      assertEquals(List.of(), rebuilt.problems(), rebuilt::toString);
      assertEquals(r.pieces(), cat.pieces(cat.job(r.jobId()).orElseThrow().archive()));
      Path again = tmp.resolve("again");
      FilesRestoreService.restore(lib, cat, "db", "s1", List.of("pg/data/base/1/big"), again, p -> {});
      assertArrayEquals(big, Files.readAllBytes(again.resolve("pg/data/base/1/big")));
    }

    // a byte of big's data on the second cartridge flipped, its record's CRC made good: only the SHA-256 tells
    Path cart = libDir.resolve("slot-0002.tape");
    byte[] tape = Files.readAllBytes(cart);
    int at = -1;
    for (int off = 0; off + 64 <= big.length && at < 0; off += 64 * 1024) {
      try {
        at = VerifyServiceTest.indexOf(tape, Arrays.copyOfRange(big, off, off + 64));
      } catch (AssertionError notHere) {
        // that slice is on another cartridge
      }
    }
    assertTrue(at > 0, "part of big on SHD002");
    tape[at + 7] ^= 0x01;
    VerifyServiceTest.fixRecordCrc(tape, at);
    Files.write(cart, tape);
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(libDir); Catalog cat = Catalog.open(libDir)) {
      VerifyService.Result v = VerifyService.verify(lib, cat, VerifyService.Selection.ALL, BackupProgress.NONE, x -> { });
      assertFalse(v.ok());
      Catalog.VerificationRecord bad = v.failures().get(0);
      assertEquals("files/pg/data/base/1/big", bad.chunk(), bad::toString);
      assertTrue(bad.error().contains("cartridge SHD00") && bad.error().contains("tape file 1")
          && bad.error().contains("member files/pg/data/base/1/big") && bad.error().contains("pieces 1 to 3")
          && bad.error().contains("SHA-256"), bad.error());
      System.out.println("verify of the damaged files archive: " + bad.error());
      // the restore of that file fails the same way; another file still restores
      BackupException e = org.junit.jupiter.api.Assertions.assertThrows(BackupException.class,
          () -> FilesRestoreService.restore(lib, cat, "db", "s1", List.of("pg/data/base/1/big"), tmp.resolve("b2"),
              p -> {}));
      assertTrue(e.getMessage().contains("file pg/data/base/1/big") && e.getMessage().contains("damaged"),
          e::getMessage);
      FilesRestoreService.restore(lib, cat, "db", "s1", List.of("etc/hosts"), tmp.resolve("h2"), p -> {});
      assertEquals("127.0.0.1 localhost\n", Files.readString(tmp.resolve("h2/etc/hosts"), StandardCharsets.UTF_8));
    }
  }
}
