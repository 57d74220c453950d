package dev.shade.cli;

import static dev.shade.cli.AgentProcess.source;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.testing.Tools;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code shade backup run --compress zstd}: a real agent serving a volume over NBD, a virtual
 * tape library, and the GNU tar + zstd + dd rebuild of docs/tape-format.md.
 */
class BackupCompressCommandTest {
  private static final int MiB = 1024 * 1024;
  @TempDir Path tmp;
  @RegisterExtension final Leftovers started = new Leftovers();

  /** Lines of text: compressible, no page of zeros. */
  private static byte[] text(long seed, int length) {
    Random r = new Random(seed);
    StringBuilder b = new StringBuilder();
    while (b.length() < length) {
      b.append("order ").append(r.nextInt(10_000_000)).append(" item=").append(r.nextInt(900))
          .append(" qty=").append(r.nextInt(40)).append(" state=shipped\n");
    }
    return b.substring(0, length).getBytes(StandardCharsets.US_ASCII);
  }

  @Test
  void compressedFullAndIncremental_restoreEqualsExport_tarZstdDdRebuild_smallerThanPlain() throws Exception {
    Tools.require("zstd", "zstd");
    Path db = TestVolumes.create(tmp.resolve("db"), "16M");
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "a.txt", text(1, 6 * MiB))).ok();
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "r.bin", TestVolumes.random(1, 2 * MiB)), "--offset", "6M")
        .ok();
    Path lib = tmp.resolve("vtl");
    Cli.run("tape", "library", "create", lib, "--slots", "2", "--capacity", "256M").ok();
    AgentProcess agent = started.agent(tmp, db);
    Path nbd = tmp.resolve("nbd.sock");

    Cli.run("snapshot", "create", db, "--name", "s1").ok();
    JsonNode plain = Cli.run("backup", "run", "--source", source(nbd, "s1"), "--library", lib, "--chunk-size", "1M",
        "--level", "full", "--json").ok().json();
    JsonNode zstd = Cli.run("backup", "run", "--source", source(nbd, "s1"), "--library", lib, "--chunk-size", "1M",
        "--level", "full", "--compress", "zstd", "--json").ok().json();
    assertEquals(8, zstd.get("chunks").asInt(), zstd::toString);
    assertEquals("zstd:3", zstd.get("compression").asText());
    assertEquals("none", plain.get("compression").asText());
    assertEquals(plain.get("dataBytes").asLong(), zstd.get("dataBytes").asLong(), "dataBytes counts chunk bytes");
    long p = plain.get("archiveBytes").asLong();
    long z = zstd.get("archiveBytes").asLong();
    // 6 MiB of text shrinks, 2 MiB of random bytes is stored plain
    assertTrue(z < p * 6 / 10 && z > 2L * MiB, "compressed " + z + " bytes, plain " + p);

    Path s1Export = tmp.resolve("s1.export");
    Cli.run("snapshot", "export", db, "s1", s1Export).ok();
    Path s1Restored = tmp.resolve("s1.restored");
    Cli.run("restore", "--volume", "db", "--snapshot", "s1", "--library", lib, "--to", s1Restored).ok();
    assertImagesEqual(s1Export, s1Restored);

    // an incremental, compressed at level 19, over the compressed full
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "b.txt", text(2, 256 * 1024)), "--offset", "3M").ok();
    Cli.run("snapshot", "create", db, "--name", "s2").ok();
    Cli.Result inc = Cli.run("backup", "run", "--source", source(nbd, "s2"), "--library", lib, "--level",
        "incremental", "--compress", "zstd:19").ok();
    assertTrue(inc.out().contains("as an incremental since s1"), inc::toString);
    Path s2Export = tmp.resolve("s2.export");
    Cli.run("snapshot", "export", db, "s2", s2Export).ok();
    Path s2Restored = tmp.resolve("s2.restored");
    Cli.run("restore", "--volume", "db", "--snapshot", "s2", "--library", lib, "--to", s2Restored).ok();
    assertImagesEqual(s2Export, s2Restored);
    JsonNode verify = Cli.run("verify", "--library", lib, "--json").ok().json();
    assertTrue(verify.get("ok").asBoolean(), verify::toString);

    // the documented rebuild of a compressed archive: tar, zstd -d, dd
    Path x = Files.createDirectories(tmp.resolve("x"));
    String file = String.valueOf(zstd.get("fileNumber").asInt());
    String listing = shell("tape cat '" + lib + "' SHD001 " + file + " | tar -t");
    assertTrue(listing.contains("data/0000000000000000.zst\n") && listing.contains("data/0000000000600000\n"),
        listing);
    shell("tape cat '" + lib + "' SHD001 " + file + " | (cd '" + x + "' && tar -x)");
    JsonNode manifest = new ObjectMapper().readTree(x.resolve("manifest.json").toFile());
    assertEquals("shade-image-3", manifest.get("format").asText(), "CRC-32C checksums");
    assertEquals("zstd", manifest.get("compression").asText());
    assertEquals(3, manifest.get("compressionLevel").asInt());
    bash("cd '" + x + "' && " + REBUILD);
    assertImagesEqual(s1Export, x.resolve("image.img"));
    BackupCommandTest.assertEmergencyChecksums(x, manifest);
  }

  @Test
  void compressWithFilesFormat_orABadLevel_isAUsageError() {
    Path lib = tmp.resolve("vtl");
    String src = "nbd+unix:///db@s1?socket=" + tmp.resolve("none.sock");
    Cli.Result files = Cli.run("backup", "run", "--source", src, "--library", lib, "--format", "files", "--compress",
        "zstd");
    assertEquals(2, files.code(), files::toString);
    assertTrue(files.err().contains("--compress zstd goes only with --format image"), files::toString);
    for (String bad : List.of("zstd:0", "zstd:20", "zstd:x", "lz4")) {
      Cli.Result r = Cli.run("backup", "run", "--source", src, "--library", lib, "--compress", bad);
      assertEquals(2, r.code(), r::toString);
      assertTrue(r.err().contains("--compress"), r::toString);
    }
    Cli.Result md5 = Cli.run("backup", "run", "--source", src, "--library", lib, "--checksum", "md5");
    assertEquals(2, md5.code(), md5::toString);
    assertTrue(md5.err().contains("checksum must be crc32c or sha256: md5"), md5::toString);
    Cli.Result filesSha = Cli.run("backup", "run", "--source", src, "--library", lib, "--format", "files",
        "--checksum", "sha256");
    assertEquals(2, filesSha.code(), filesSha::toString);
    assertTrue(filesSha.err().contains("--checksum sha256 goes only with --format image"), filesSha::toString);
  }

  /** The rebuild of a compressed archive in docs/tape-format.md, where the archive was extracted. */
  static final String REBUILD = String.join("\n",
      "find data -name '*.zst' -exec zstd -q -d --rm {} +",
      "size=$(sed -n 's/^  \"size\" : \\([0-9]*\\).*/\\1/p' manifest.json)",
      "truncate -s \"$size\" image.img",
      "for f in data/*; do",
      "  dd if=\"$f\" of=image.img bs=1M seek=$((16#${f#data/})) oflag=seek_bytes conv=notrunc status=none",
      "done");


  private static void assertImagesEqual(Path expected, Path actual) throws Exception {
    assertEquals(Files.size(expected), Files.size(actual), actual::toString);
    assertEquals(-1L, Files.mismatch(expected, actual), () -> actual + " differs from " + expected);
  }

  /** Runs {@code shade ARGS} (a real JVM) in a bash pipeline with pipefail; returns its stdout. */
  private static String shell(String shadeArgsAndPipe) throws Exception {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    return bash("'" + java + "' -Xshare:auto -XX:TieredStopAtLevel=1 -cp \"$CP\" dev.shade.cli.Shade "
        + shadeArgsAndPipe);
  }

  private static String bash(String script) throws Exception {
    ProcessBuilder pb = new ProcessBuilder("bash", "-c", "set -eo pipefail; " + script);
    pb.environment().put("CP", System.getProperty("java.class.path"));
    Process p = pb.start();
    String out;
    String err;
    try (InputStream s = p.getInputStream(); InputStream e = p.getErrorStream()) {
      out = new String(s.readAllBytes(), StandardCharsets.UTF_8);
      err = new String(e.readAllBytes(), StandardCharsets.UTF_8);
    }
    assertTrue(p.waitFor(120, TimeUnit.SECONDS));
    assertEquals(0, p.exitValue(), script + ": " + out + err);
    return out;
  }
}
