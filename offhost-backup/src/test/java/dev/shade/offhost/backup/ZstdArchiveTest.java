package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.offhost.tape.LibraryConfig;
import dev.shade.offhost.tape.TapeDrive;
import dev.shade.offhost.tape.TapeInputStream;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import dev.shade.testing.Tools;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Image archives with zstd compression ({@code --compress zstd}): restores, verify, the catalog
 * rebuilt from the tapes, and the GNU tar + zstd + dd rebuild of docs/tape-format.md.
 */
class ZstdArchiveTest {
  private static final int CHUNK = 64 * 1024;
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  /** Lines of text, as a database's pages of rows hold them: compressible, no zero pages. */
  private static byte[] text(long seed, int chunks) {
    Random r = new Random(seed);
    StringBuilder b = new StringBuilder();
    while (b.length() < chunks * CHUNK) {
      b.append("row ").append(r.nextInt(1_000_000)).append(" customer=").append(r.nextInt(5000))
          .append(" city=").append(List.of("Lyon", "Graz", "Porto", "Turku").get(r.nextInt(4)))
          .append(" total=").append(r.nextInt(100_000) / 100.0).append('\n');
    }
    return Arrays.copyOf(b.toString().getBytes(StandardCharsets.US_ASCII), chunks * CHUNK);
  }

  /** Text with chunks 4 and 5 random (stored plain) and chunk 6 zeros (left out). */
  private static byte[] mixed(long seed) {
    byte[] b = text(seed, 16);
    byte[] noise = new byte[2 * CHUNK];
    new Random(seed).nextBytes(noise);
    System.arraycopy(noise, 0, b, 4 * CHUNK, noise.length);
    Arrays.fill(b, 6 * CHUNK, 7 * CHUNK, (byte) 0);
    return b;
  }

  private static BackupService.Request request(String level, int zstd) {
    return request(level, zstd, ChunkChecksum.DEFAULT);
  }

  private static BackupService.Request request(String level, int zstd, ChunkChecksum checksum) {
    return new BackupService.Request("nightly", level, CHUNK, null, zstd, checksum);
  }

  @Test
  void compressedFullAndIncremental_restoreByteForByte_andTheManifestSaysZstd_withEitherChecksum() throws Exception {
    byte[] s1 = mixed(1);
    byte[] s2 = s1.clone();
    Arrays.fill(s2, 10 * CHUNK + 100, 10 * CHUNK + 900, (byte) 'x'); // one chunk changed
    Arrays.fill(s2, 12 * CHUNK, 13 * CHUNK, (byte) 0); // one chunk zeroed
    Map<Long, byte[]> host = new HashMap<>();
    host.put(1L, s1);
    Path vtl = tmp.resolve("vtl");
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(vtl, LibraryConfig.of(2, 64L << 20));
        Catalog cat = Catalog.open(vtl)) {
      // the full with SHA-256 (shade-image-2), the incremental with the default CRC-32C (shade-image-3): one chain
      BackupService.Result full = BackupService.run(lib, cat, new FakeSource("s1", 1, s1, host),
          request("auto", 3, ChunkChecksum.SHA256), BackupProgress.NONE, n -> { });
      assertEquals(15, full.chunks());
      BackupService.Result inc = BackupService.run(lib, cat, new FakeSource("s2", 2, s2, host),
          request("auto", 3), BackupProgress.NONE, n -> { });
      assertEquals("incremental", inc.level());

      List<String> names = new ArrayList<>();
      JsonNode manifest = manifest(lib, "SHD001", 1, names);
      assertEquals(ImageManifest.FORMAT_ZSTD, manifest.path("format").asText());
      assertEquals("zstd", manifest.path("compression").asText());
      assertEquals(3, manifest.path("compressionLevel").asInt());
      assertTrue(names.contains("data/0000000000000000.zst"), names.toString());
      assertTrue(names.contains("data/0000000000040000") && names.contains("data/0000000000050000"),
          "random chunks do not shrink: stored plain: " + names);
      for (JsonNode c : manifest.path("chunks")) {
        boolean zst = c.path("member").asText().endsWith(".zst");
        assertEquals(zst, c.path("stored").asLong() < c.path("length").asLong(), c.toString());
        // the checksum is that of the chunk's bytes, as without compression
        long o = c.path("offset").asLong();
        assertEquals(Sha256.hex(s1, (int) o, CHUNK), c.path("sha256").asText(), c.toString());
      }
      JsonNode incremental = manifest(lib, "SHD001", 3, new ArrayList<>());
      assertEquals(ImageManifest.FORMAT_CRC32C, incremental.path("format").asText());
      assertEquals("crc32c", incremental.path("checksum").asText());
      assertEquals("zstd", incremental.path("compression").asText());
      for (JsonNode c : incremental.path("chunks")) {
        if (!c.path("zero").asBoolean()) {
          int o = (int) c.path("offset").asLong();
          assertEquals(ChunkChecksum.CRC32C.of(s2, o, CHUNK), c.path("crc32c").asText(), c.toString());
          assertTrue(c.path("sha256").isMissingNode(), c.toString());
        }
      }
      assertEquals(List.of(ChunkChecksum.SHA256, ChunkChecksum.CRC32C),
          cat.jobs().stream().map(j -> j.archive().chunkChecksum()).toList());

      Path r1 = tmp.resolve("s1.img");
      Path r2 = tmp.resolve("s2.img");
      RestoreService.restore(lib, cat, "db", "s1", r1, false, BackupProgress.NONE);
      RestoreService.restore(lib, cat, "db", "s2", r2, false, BackupProgress.NONE);
      assertArrayEquals(s1, Files.readAllBytes(r1));
      assertArrayEquals(s2, Files.readAllBytes(r2));

      VerifyService.Result v = VerifyService.verify(lib, cat, VerifyService.Selection.ALL, BackupProgress.NONE,
          x -> { });
      assertTrue(v.ok(), v::toString);
    }
  }

  @Test
  void compressibleData_makesASmallerArchive_randomData_aboutTheSame() throws Exception {
    byte[] text = text(2, 32);
    byte[] random = new byte[32 * CHUNK];
    new Random(2).nextBytes(random);
    long plainText = archive(text, 0).archiveBytes();
    long zstdText = archive(text, 3).archiveBytes();
    assertTrue(zstdText * 2 < plainText, "text: " + zstdText + " compressed, " + plainText + " plain");
    ImageArchiveWriter.Result plainRandom = archive(random, 0);
    ImageArchiveWriter.Result zstdRandom = archive(random, 3);
    assertTrue(Math.abs(zstdRandom.archiveBytes() - plainRandom.archiveBytes()) < 16 * 1024,
        "random: " + zstdRandom.archiveBytes() + " compressed, " + plainRandom.archiveBytes() + " plain");
    assertEquals(Map.of(), zstdRandom.manifest().stored(), "no random chunk is stored compressed");
    assertEquals(plainRandom.dataBytes(), zstdRandom.dataBytes());
    // the readers see the chunk bytes either way
    assertEquals(plainRandom.manifest().chunks(), zstdRandom.manifest().chunks());
  }

  @Test
  void flippedByteInAZstMember_isNamedByCartridgeTapeFileAndChunk() throws Exception {
    byte[] s1 = mixed(3);
    Path vtl = tmp.resolve("vtl");
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(vtl, LibraryConfig.of(2, 64L << 20));
        Catalog cat = Catalog.open(vtl)) {
      BackupService.run(lib, cat, new FakeSource("s1", 1, s1, Map.of()), request("full", 3), BackupProgress.NONE,
          n -> { });
    }
    Path cart = vtl.resolve("slot-0001.tape");
    byte[] tape = Files.readAllBytes(cart);
    byte[] frame = ImageArchiveWriter.compress(s1, 2 * CHUNK, CHUNK, 3);
    assertNotNull(frame);
    int at = VerifyServiceTest.indexOf(tape, frame);
    assertTrue(at > 0, "the frame of chunk 2 is on the cartridge as written");
    tape[at + frame.length / 2] ^= 0x10;
    VerifyServiceTest.fixRecordCrc(tape, at); // only the frame itself can tell
    Files.write(cart, tape);
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(vtl); Catalog cat = Catalog.open(vtl)) {
      VerifyService.Result r = VerifyService.verify(lib, cat, VerifyService.Selection.ALL, BackupProgress.NONE,
          v -> { });
      assertFalse(r.ok());
      Catalog.VerificationRecord bad = r.failures().get(0);
      assertEquals("SHD001", bad.cartridge());
      assertEquals(1, bad.fileNumber());
      assertEquals("data/0000000000020000.zst", bad.chunk(), bad::toString);
      assertTrue(bad.error().contains("cartridge SHD001, tape file 1")
          && bad.error().contains("chunk data/0000000000020000.zst is damaged: its zstd frame"), bad.error());

      Exception e = org.junit.jupiter.api.Assertions.assertThrows(Exception.class,
          () -> RestoreService.restore(lib, cat, "db", "s1", tmp.resolve("r.img"), false, BackupProgress.NONE));
      assertTrue(e.getMessage().contains("cartridge SHD001, tape file 1")
          && e.getMessage().contains("data/0000000000020000.zst"), e.getMessage());
    }
  }

  @Test
  void gnuTarZstdAndDd_rebuildTheImage_asDocumented() throws Exception {
    Path tar = Tools.require("tar", "tar");
    Tools.require("zstd", "zstd");
    byte[] s1 = mixed(4);
    Path vtl = tmp.resolve("vtl");
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(vtl, LibraryConfig.of(2, 64L << 20));
        Catalog cat = Catalog.open(vtl)) {
      BackupService.run(lib, cat, new FakeSource("s1", 1, s1, Map.of()), request("full", 3), BackupProgress.NONE,
          n -> { });
      Path file = tmp.resolve("archive.tar");
      dump(lib, "SHD001", 1, file);
      Path dir = Files.createDirectories(tmp.resolve("rebuild"));
      run(List.of(tar.toString(), "-xf", file.toString()), dir);
      Path image = tmp.resolve("dd.img");
      // docs/tape-format.md, "Reading an archive without shade": the .zst members first, then dd
      run(List.of("bash", "-c", "find data -name '*.zst' -exec zstd -q -d --rm {} + && truncate -s " + s1.length
          + " " + image + " && for f in data/*; do dd if=\"$f\" of=" + image
          + " bs=1M seek=$((16#${f#data/})) oflag=seek_bytes conv=notrunc status=none; done"), dir);
      assertArrayEquals(s1, Files.readAllBytes(image));
    }
  }

  @Test
  void lostCatalogOfACompressedJob_rebuiltFromTheTapes_equalsTheLostOne() throws Exception {
    byte[] s1 = mixed(5);
    byte[] s2 = s1.clone();
    Arrays.fill(s2, 9 * CHUNK, 9 * CHUNK + 50, (byte) 'q');
    Map<Long, byte[]> host = new HashMap<>();
    host.put(1L, s1);
    Path vtl = tmp.resolve("vtl");
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(vtl, LibraryConfig.of(2, 64L << 20))) {
      try (Catalog cat = Catalog.open(vtl)) {
        BackupService.run(lib, cat, new FakeSource("s1", 1, s1, host), request("full", 3), BackupProgress.NONE,
            n -> { });
        BackupService.run(lib, cat, new FakeSource("s2", 2, s2, host), request("auto", 19), BackupProgress.NONE,
            n -> { });
      }
      Map<String, List<String>> lost = SpanningTest.dump(vtl.resolve(Catalog.FILE));
      for (String suffix : List.of("", "-wal", "-shm")) {
        Files.deleteIfExists(vtl.resolve(Catalog.FILE + suffix));
      }
      try (Catalog cat = Catalog.open(vtl)) {
        CatalogRebuild.Result r = CatalogRebuild.rebuild(lib, cat, BackupProgress.NONE, n -> { });
        assertEquals(List.of(), r.problems());
        assertEquals(2, r.archives());
      }
      assertEquals(lost, SpanningTest.dump(vtl.resolve(Catalog.FILE)));
      try (Catalog cat = Catalog.open(vtl)) {
        RestoreService.restore(lib, cat, "db", "s2", tmp.resolve("s2.img"), false, BackupProgress.NONE);
      }
      assertArrayEquals(s2, Files.readAllBytes(tmp.resolve("s2.img")));
    }
  }

  @Test
  void plainArchive_keepsFormatOne_andNoCompressionKeys() throws Exception {
    ImageArchiveWriter.Result r = archive(text(6, 4), 0, ChunkChecksum.SHA256);
    assertEquals(ImageManifest.FORMAT, r.manifest().format());
    ImageArchiveWriter.Result crc = archive(text(6, 4), 0, ChunkChecksum.CRC32C);
    assertEquals(ImageManifest.FORMAT_CRC32C, crc.manifest().format());
    assertTrue(crc.manifest().toJson().path("compression").isMissingNode());
    assertEquals(0, ImageManifest.parse(crc.manifest().bytes()).zstdLevel(), "shade-image-3 without compression");
    assertEquals(FakeSource.BLOCK_SIZE, crc.manifest().toJson().path("volumeBlockSize").asInt(), "the volume's block size");
    assertEquals(FakeSource.BLOCK_SIZE, ImageManifest.parse(crc.manifest().bytes()).snapshot().blockSize());
    JsonNode doc = r.manifest().toJson();
    assertTrue(doc.path("compression").isMissingNode());
    assertTrue(doc.path("chunks").get(0).path("stored").isMissingNode());
    assertNull(ImageArchiveWriter.compress(new byte[0], 0, 0, 3), "nothing does not shrink");
  }

  /** {@code image} archived to memory with {@code zstd} (0: plain), read back and checked. */
  private static ImageArchiveWriter.Result archive(byte[] image, int zstd) throws IOException {
    return archive(image, zstd, ChunkChecksum.DEFAULT);
  }

  private static ImageArchiveWriter.Result archive(byte[] image, int zstd, ChunkChecksum checksum) throws IOException {
    FakeSource src = new FakeSource("s1", 1, image, Map.of());
    ImageManifest header = new ImageManifest(src.identity(), "full", -1, null, CHUNK, 512, Instant.now(), null,
        null, List.of(), zstd, Map.of(), checksum);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    List<Long> offsets = ImageArchiveWriter.chunksOf(src.allocated(), CHUNK, image.length);
    ImageArchiveWriter.Result r = ImageArchiveWriter.write(out, 512, header, offsets, src, BackupProgress.NONE);
    byte[] got = new byte[image.length];
    ImageArchiveReader.Contents c = ImageArchiveReader.read(new ByteArrayInputStream(out.toByteArray()), CHUNK,
        new ImageArchiveReader.Handler() {
          @Override
          public boolean wants(long offset) {
            return true;
          }

          @Override
          public void chunk(long offset, byte[] data, int length, String sum) {
            assertEquals(checksum.of(image, (int) offset, length), sum);
            System.arraycopy(data, 0, got, (int) offset, length);
          }
        });
    assertArrayEquals(image, got);
    assertEquals(r.manifestSha256(), c.manifestSha256());
    assertEquals(r.manifest().stored(), c.manifest().stored());
    return r;
  }

  /** The manifest of the archive in tape file {@code file} of {@code label}; its member names go to {@code names}. */
  private JsonNode manifest(VirtualTapeLibrary lib, String label, int file, List<String> names) throws Exception {
    Path to = tmp.resolve("t" + label + "-" + file + ".tar");
    dump(lib, label, file, to);
    JsonNode m = null;
    try (TarArchiveInputStream in = new TarArchiveInputStream(Files.newInputStream(to))) {
      for (TarArchiveEntry e; (e = in.getNextEntry()) != null; ) {
        names.add(e.getName());
        if (e.getName().equals(ImageManifest.MANIFEST_MEMBER)) {
          m = JSON.readTree(in.readAllBytes());
        }
      }
    }
    return m;
  }

  private static long dump(VirtualTapeLibrary lib, String label, int fileNumber, Path to) throws IOException {
    try (TapeDrive d = lib.openForReading(lib.find(label).orElseThrow().slot());
        OutputStream out = Files.newOutputStream(to)) {
      d.seekFile(fileNumber);
      return new TapeInputStream(d).transferTo(out);
    }
  }

  private static void run(List<String> cmd, Path dir) throws Exception {
    Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, p.exitValue(), cmd + ": " + out);
  }
}
