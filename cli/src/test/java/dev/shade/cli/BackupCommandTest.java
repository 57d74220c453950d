package dev.shade.cli;

import static dev.shade.cli.AgentProcess.source;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.testing.Tools;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code shade backup run}, {@code shade restore} and {@code shade catalog list} end to end: a real
 * agent serving a volume over NBD (a Unix socket), a virtual tape library, GNU tar and dd.
 */
class BackupCommandTest {
  private static final int MiB = 1024 * 1024;
  @TempDir Path tmp;
  @RegisterExtension final Leftovers started = new Leftovers();

  @Test
  void fullIncrementalFallback_restoreEqualsExport_tarAndDdRebuild_damageIsNamed() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "32M");
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "a.bin", TestVolumes.random(1, 20 * MiB))).ok();
    Path lib = tmp.resolve("vtl");
    Cli.run("tape", "library", "create", lib, "--slots", "2", "--capacity", "256M").ok();
    AgentProcess agent = started.agent(tmp, db);
    Path nbd = tmp.resolve("nbd.sock");

    // s1: a full, onto a cartridge labelled for the occasion
    Cli.run("snapshot", "create", db, "--name", "s1").ok();
    Path meta = tmp.resolve("s1.json");
    Files.writeString(meta, Cli.run("snapshot", "show", db, "s1", "--json").ok().out());
    JsonNode full = Cli.run("backup", "run", "--source", source(nbd, "s1"), "--library", lib, "--chunk-size", "1M",
        "--metadata", meta, "--json").ok().json();
    assertEquals("full", full.get("level").asText(), full::toString);
    assertEquals("SHD001", full.get("cartridge").asText());
    assertEquals("SHD001", full.get("labelled").asText());
    assertEquals(1, full.get("fileNumber").asInt());
    assertEquals(20, full.get("chunks").asInt(), "20 MiB of data in 1 MiB chunks; the hole is skipped");
    assertEquals(20L * MiB, full.get("bytesRead").asLong());
    Path s1Export = tmp.resolve("s1.export");
    Cli.run("snapshot", "export", db, "s1", s1Export).ok();
    Path s1Restored = tmp.resolve("s1.restored");
    Cli.run("restore", "--volume", "db", "--snapshot", "s1", "--library", lib, "--to", s1Restored).ok();
    assertImagesEqual(s1Export, s1Restored);

    // ~1% of the blocks changed (256 KiB of 32 MiB, in one chunk): an incremental of one chunk
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "b.bin", TestVolumes.random(2, 256 * 1024)),
        "--offset", "3M").ok();
    Cli.run("snapshot", "create", db, "--name", "s2").ok();
    Cli.Result incR = Cli.run("backup", "run", "--source", source(nbd, "s2"), "--library", lib, "--level",
        "incremental").ok();
    assertTrue(incR.out().contains("as an incremental since s1"), incR::toString);
    JsonNode jobs = Cli.run("catalog", "list", lib, "--json").ok().json().get("jobs");
    assertEquals(2, jobs.size());
    JsonNode inc = jobs.get(1);
    assertEquals("incremental", inc.get("level").asText());
    assertEquals(full.get("snapshotId").asLong(), inc.get("baseSnapshotId").asLong());
    assertEquals(1L * MiB, inc.get("bytes").asLong(), "only the changed chunk is archived");
    long incArchive = inc.get("archive").get("bytes").asLong();
    assertTrue(incArchive <= 1536 * 1024, "incremental archive of " + incArchive + " bytes");
    assertTrue(jobs.get(0).get("archive").get("bytes").asLong() >= 20L * MiB);
    Path s2Export = tmp.resolve("s2.export");
    Cli.run("snapshot", "export", db, "s2", s2Export).ok();
    Path s2Restored = tmp.resolve("s2.restored");
    JsonNode res = Cli.run("restore", "--volume", full.get("volumeUuid").asText(), "--snapshot",
        "id=" + inc.get("snapshotId").asLong(), "--library", lib, "--to", s2Restored, "--json").ok().json();
    assertEquals(2, res.get("chain").size());
    assertEquals(20, res.get("chunks").asInt(), "each chunk written once");
    assertImagesEqual(s2Export, s2Restored);

    // GNU tar lists the archive; the documented tar + dd procedure rebuilds s1's image
    String listing = shell("tape cat '" + lib + "' SHD001 1 | tar -t");
    List<String> members = listing.lines().toList();
    assertEquals("shade-image.json", members.get(0));
    assertEquals("data/0000000000000000", members.get(1));
    assertEquals("data/0000000001300000", members.get(20));
    assertEquals("manifest.json", members.get(21));
    assertEquals(22, members.size());
    Path x = Files.createDirectories(tmp.resolve("x"));
    shell("tape cat '" + lib + "' SHD001 1 | (cd '" + x + "' && tar -x)");
    bash("cd '" + x + "' && " + REBUILD);
    assertImagesEqual(s1Export, x.resolve("image.img"));
    String manifest = Files.readString(x.resolve("manifest.json"));
    assertTrue(manifest.contains("\"writerMetadata\""), manifest);
    assertEmergencyChecksums(x, new com.fasterxml.jackson.databind.ObjectMapper().readTree(manifest));
    assertEquals("image", Cli.run("tape", "list", lib, "--json").ok().json().get("cartridges").get(0)
        .get("files").get(1).get("kind").asText());

    // the base of the last backup (s2) is gone on the production host: auto falls back to a full, saying so
    Cli.run("snapshot", "delete", db, "s1").ok();
    Cli.run("snapshot", "delete", db, "s2").ok();
    Cli.run("snapshot", "create", db, "--name", "s3").ok();
    Cli.Result s3 = Cli.run("backup", "run", "--source", source(nbd, "s3"), "--library", lib, "--level", "auto").ok();
    assertTrue(s3.err().contains("writing a full backup instead of an incremental")
        && s3.err().contains("no longer exists on the production host"), s3::toString);
    assertTrue(s3.out().contains("as a full"), s3::toString);
    Cli.Result list = Cli.run("catalog", "list", lib).ok();
    assertTrue(list.out().contains("db@s3") && list.out().contains("no longer exists"), list::toString);

    // flipped bytes in the cartridge file: restore fails naming the cartridge, the archive and the chunk
    agent.stop();
    Path cart = lib.resolve("slot-0001.tape");
    byte[] image = Files.readAllBytes(s1Export);
    // in chunk 7, with the cartridge's own record CRC made to match: the chunk's own checksum (CRC-32C) catches it
    byte[] tape = Files.readAllBytes(cart);
    int at = indexOf(tape, Arrays.copyOfRange(image, 7 * MiB + 512 * 1024, 7 * MiB + 512 * 1024 + 64));
    tape[at + 10] ^= 0x20;
    fixRecordCrc(tape, at);
    Files.write(cart, tape);
    Path bad = tmp.resolve("bad.img");
    Cli.Result damaged = Cli.run("restore", "--volume", "db", "--snapshot", "s1", "--library", lib, "--to", bad);
    assertEquals(ExitCodes.FAILURE, damaged.code(), damaged::toString);
    assertTrue(damaged.err().contains("cartridge SHD001, tape file 1") && damaged.err().contains("data/0000000000700000")
        && damaged.err().contains("CRC-32C"), damaged::toString);
    assertFalse(Files.exists(bad), "a failed restore leaves no file");
    // in chunk 5, as it is: the cartridge's record CRC catches it, and the chunk being read is named
    tape = Files.readAllBytes(cart);
    at = indexOf(tape, Arrays.copyOfRange(image, 5 * MiB + 512 * 1024, 5 * MiB + 512 * 1024 + 64));
    tape[at + 10] ^= 0x20;
    Files.write(cart, tape);
    damaged = Cli.run("restore", "--volume", "db", "--snapshot", "s1", "--library", lib, "--to", bad);
    assertEquals(ExitCodes.FAILURE, damaged.code(), damaged::toString);
    assertTrue(damaged.err().contains("cartridge SHD001, tape file 1") && damaged.err().contains("data/0000000000500000"),
        damaged::toString);
    assertFalse(Files.exists(bad), "a failed restore leaves no file");
  }

  /** Recomputes the CRC-32C of the virtual cartridge frame holding byte {@code at} (docs/tapes.md). */
  private static void fixRecordCrc(byte[] tape, int at) {
    java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(tape);
    int pos = 64;
    while (pos < tape.length) {
      int len = b.getInt(pos + 4);
      if (at >= pos + 16 && at < pos + 16 + len) {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(tape, pos + 16, len);
        b.putInt(pos + 8, (int) crc.getValue());
        java.util.zip.CRC32C h = new java.util.zip.CRC32C();
        h.update(tape, pos, 12);
        b.putInt(pos + 12, (int) h.getValue());
        return;
      }
      pos += 16 + len;
    }
    throw new AssertionError("no frame holds byte " + at);
  }

  /**
   * The emergency check of docs/tape-format.md in {@code x}, where an archive was extracted (and its
   * {@code .zst} members decompressed): {@code rhash --crc32c} prints each chunk's CRC-32C as
   * {@code manifest} lists it.
   */
  static void assertEmergencyChecksums(Path x, JsonNode manifest) throws Exception {
    Tools.require("rhash", "rhash");
    assertEquals("crc32c", manifest.get("checksum").asText());
    java.util.Map<String, String> listed = new java.util.TreeMap<>();
    manifest.get("chunks").forEach(c -> listed.put(c.get("member").asText().replace(".zst", ""),
        c.get("crc32c").asText()));
    java.util.Map<String, String> printed = new java.util.TreeMap<>();
    bash("cd '" + x + "' && rhash --crc32c data/*").lines().map(l -> l.trim().split("\\s+"))
        .forEach(f -> printed.put(f[1], f[0]));
    assertEquals(listed, printed);
  }

  /** The rebuild of docs/tape-format.md, in the directory where the archive was extracted. */
  static final String REBUILD = String.join("\n",
      "size=$(sed -n 's/^  \"size\" : \\([0-9]*\\).*/\\1/p' manifest.json)",
      "truncate -s \"$size\" image.img",
      "for f in data/*; do",
      "  dd if=\"$f\" of=image.img bs=1M seek=$((16#${f#data/})) oflag=seek_bytes conv=notrunc status=none",
      "done");


  private static void assertImagesEqual(Path expected, Path actual) throws Exception {
    assertEquals(Files.size(expected), Files.size(actual), actual::toString);
    assertEquals(-1L, Files.mismatch(expected, actual), () -> actual + " differs from " + expected);
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
    throw new AssertionError("pattern not on the tape");
  }

  /** Runs {@code shade ARGS} (a real JVM) in a bash pipeline with pipefail; returns its stdout. */
  private static String shell(String shadeArgsAndPipe) throws Exception {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    return bash("'" + java + "' -Xshare:auto -XX:TieredStopAtLevel=1 -cp \"$CP\" dev.shade.cli.Shade "
        + shadeArgsAndPipe);
  }

  static String bash(String script) throws Exception {
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
