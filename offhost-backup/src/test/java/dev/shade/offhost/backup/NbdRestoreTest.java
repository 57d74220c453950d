package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.offhost.tape.LibraryConfig;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import dev.shade.testing.nbd.NbdServerProcess;
import dev.shade.testing.nbd.TestPki;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Restores into NBD exports of real servers (qemu-nbd on a raw file, nbdkit's file plugin,
 * over a Unix socket, TCP and TLS), whose files were filled with 0xAA first: the file must then
 * hold exactly the image, its zero chunks included. And the refusals: an export smaller than
 * the image, a read-only one.
 */
class NbdRestoreTest {
  private static final int CHUNK = 64 * 1024;
  private static final int MIB = 1 << 20;
  private static final byte FILL = (byte) 0xAA;
  @TempDir Path tmp;
  private Path vtl;
  /** The full's snapshot: random, with zero chunks 4 to 7 and a zero tail in chunk 9. */
  private byte[] s1;
  /** The incremental's: chunk 10 changed, chunk 12 zeroed. */
  private byte[] s2;

  @BeforeEach
  void backUp() throws IOException {
    s1 = new byte[MIB];
    new Random(5).nextBytes(s1);
    Arrays.fill(s1, 4 * CHUNK, 8 * CHUNK, (byte) 0);
    Arrays.fill(s1, 9 * CHUNK + 4096, 10 * CHUNK, (byte) 0);
    s2 = s1.clone();
    Arrays.fill(s2, 10 * CHUNK + 100, 10 * CHUNK + 200, (byte) 7);
    Arrays.fill(s2, 12 * CHUNK, 13 * CHUNK, (byte) 0);
    vtl = tmp.resolve("vtl");
    Map<Long, byte[]> host = new HashMap<>();
    host.put(1L, s1);
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(vtl, LibraryConfig.of(2, 64L << 20));
        Catalog cat = Catalog.open(CatalogLocation.inLibrary(vtl))) {
      BackupService.Request r = new BackupService.Request("nightly", "auto", CHUNK, null);
      assertEquals("full", BackupService.run(lib, cat, new FakeSource("s1", 1, s1, host), r, BackupProgress.NONE,
          n -> { }).level());
      assertEquals("incremental", BackupService.run(lib, cat, new FakeSource("s2", 2, s2, host), r,
          BackupProgress.NONE, n -> { }).level());
    }
  }

  /** A file of {@code size} bytes of 0xAA. */
  private Path filled(String name, int size) throws IOException {
    byte[] b = new byte[size];
    Arrays.fill(b, FILL);
    return Files.write(tmp.resolve(name), b);
  }

  private RestoreService.Result restore(String snapshot, RestoreSink sink, List<String> notes) throws IOException {
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(vtl);
        Catalog cat = Catalog.open(CatalogLocation.inLibrary(vtl))) {
      return RestoreService.restore(lib, cat, "db", snapshot, sink, BackupProgress.NONE, notes::add);
    }
  }

  private static RestoreSink nbd(String uri) {
    return RestoreSink.nbd(NbdClientConfig.builder(uri).build(), 4);
  }

  @Test
  void qemuNbd_rawFile_holdsExactlyTheIncrementalsImage() throws Exception {
    Path target = filled("target.raw", MIB);
    List<String> notes = new ArrayList<>();
    RestoreService.Result r;
    try (NbdServerProcess s = NbdServerProcess.qemuNbd(tmp, "-f", "raw", "-x", "img", target.toString())) {
      r = restore("s2", nbd(s.uri("img")), notes);
    }
    assertArrayEquals(s2, Files.readAllBytes(target), "zero chunks (4-7, 12) written over the 0xAA too");
    assertEquals(2, r.chain().size());
    assertNull(r.file(), "not a file target");
    assertTrue(notes.stream().noneMatch(n -> n.contains("more than")), notes.toString());
  }

  @Test
  void nbdkitFile_overTcp_largerExport_imageAtZero_restLeftAlone_zeroesAsWriteZeroes() throws Exception {
    Path target = filled("target.img", 2 * MIB);
    Path log = tmp.resolve("nbdkit-requests.log");
    List<String> notes = new ArrayList<>();
    try (NbdServerProcess s = NbdServerProcess.nbdkitTcp(tmp, "--filter=log", "file", target.toString(),
        "logfile=" + log)) {
      restore("s1", nbd(s.uri("")), notes);
    }
    byte[] got = Files.readAllBytes(target);
    assertArrayEquals(s1, Arrays.copyOf(got, MIB));
    byte[] rest = new byte[MIB];
    Arrays.fill(rest, FILL);
    assertArrayEquals(rest, Arrays.copyOfRange(got, MIB, 2 * MIB), "past the image: left as it was");
    assertTrue(notes.stream().anyMatch(n -> n.contains(2 * MIB + " bytes, more than the image's " + MIB)),
        notes.toString());
    String requests = Files.readString(log);
    assertTrue(requests.contains("Zero"), "zero ranges go as NBD_CMD_WRITE_ZEROES:\n" + requests);
    assertTrue(requests.contains("Flush"), "a FLUSH at the end:\n" + requests);
  }

  @Test
  void nbdkitWithoutWriteZeroes_zerosAreWrittenAsData() throws Exception {
    Path target = filled("target.img", MIB);
    try (NbdServerProcess s = NbdServerProcess.nbdkit(tmp, "--filter=nozero", "file", target.toString())) {
      restore("s2", nbd(s.uri("")), new ArrayList<>());
    }
    assertArrayEquals(s2, Files.readAllBytes(target));
  }

  @Test
  void nbdkitFile_overTls_withClientCertificate() throws Exception {
    TestPki pki = TestPki.create(tmp.resolve("pki"));
    Path target = filled("target.img", MIB);
    try (NbdServerProcess s = NbdServerProcess.nbdkitTcp(tmp, "--tls=require", "--tls-certificates=" + pki.serverDir,
        "--tls-verify-peer", "file", target.toString())) {
      NbdClientConfig config = NbdClientConfig.builder(s.uri("").replace("nbd://", "nbds://"))
          .tlsCa(pki.caCert)
          .tlsClientCertificate(pki.clientDir.resolve("client-cert.pem"), pki.clientDir.resolve("client-key.pem"))
          .build();
      restore("s2", RestoreSink.nbd(config, 1), new ArrayList<>());
    }
    assertArrayEquals(s2, Files.readAllBytes(target));
  }

  @Test
  void imageWithAShortZeroLastChunk_isZeroedToItsEnd_andNotPast() throws Exception {
    byte[] s3 = new byte[MIB + 12 * 1024];
    new Random(9).nextBytes(s3);
    Arrays.fill(s3, MIB, s3.length, (byte) 0); // the short last chunk: zeros
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(vtl);
        Catalog cat = Catalog.open(CatalogLocation.inLibrary(vtl))) {
      BackupService.run(lib, cat, new FakeSource("s3", 3, s3, Map.of()),
          new BackupService.Request("nightly", "auto", CHUNK, null), BackupProgress.NONE, n -> { });
    }
    Path target = filled("short.raw", 2 * MIB);
    try (NbdServerProcess s = NbdServerProcess.qemuNbd(tmp, "-f", "raw", "-x", "img", target.toString())) {
      restore("s3", nbd(s.uri("img")), new ArrayList<>());
    }
    byte[] got = Files.readAllBytes(target);
    assertArrayEquals(s3, Arrays.copyOf(got, s3.length));
    for (int i = s3.length; i < got.length; i++) {
      assertEquals(FILL, got[i], "offset " + i + ", past the image");
    }
  }

  @Test
  void smallerExport_isRefused_namingBothSizes_andLeftUntouched() throws Exception {
    Path target = filled("small.raw", MIB / 2);
    BackupException e;
    try (NbdServerProcess s = NbdServerProcess.qemuNbd(tmp, "-f", "raw", "-x", "img", target.toString())) {
      e = assertThrows(BackupException.class, () -> restore("s2", nbd(s.uri("img")), new ArrayList<>()));
    }
    assertTrue(e.getMessage().contains("holds " + MIB / 2 + " bytes, less than the image's " + MIB + " bytes"),
        e.getMessage());
    assertTrue(e.getMessage().contains("NBD export nbd+unix:///img"), e.getMessage());
    byte[] fill = new byte[MIB / 2];
    Arrays.fill(fill, FILL);
    assertArrayEquals(fill, Files.readAllBytes(target));
  }

  @Test
  void readOnlyExport_isRefused() throws Exception {
    Path target = filled("ro.img", MIB);
    BackupException e;
    try (NbdServerProcess s = NbdServerProcess.nbdkit(tmp, "-r", "file", target.toString())) {
      e = assertThrows(BackupException.class, () -> restore("s1", nbd(s.uri("")), new ArrayList<>()));
    }
    assertTrue(e.getMessage().contains("is read-only"), e.getMessage());
    byte[] fill = new byte[MIB];
    Arrays.fill(fill, FILL);
    assertArrayEquals(fill, Files.readAllBytes(target));
  }

  @Test
  void fileSink_existingFileWithoutForce_isRefusedAndKept() throws Exception {
    Path target = filled("kept.img", 4096);
    BackupException e = assertThrows(BackupException.class,
        () -> restore("s1", RestoreSink.file(target, false), new ArrayList<>()));
    assertTrue(e.getMessage().contains("restore target exists"), e.getMessage());
    assertEquals(4096, Files.size(target), "a refused restore leaves the file there alone");
  }
}
