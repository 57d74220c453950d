package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.nativeio.FileHandle;
import dev.shade.provider.Volume;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class VolumeCommandTest {
  private static final int MIB = 1 << 20;

  @TempDir Path tmp;

  /** Asserts a failure: the exit code and one stderr line that names {@code what}, nothing on stdout. */
  static void assertFails(Cli.Result r, int code, String what) {
    assertEquals(code, r.code(), r::toString);
    assertEquals(1, r.errLines().size(), () -> "exactly one line on stderr: " + r);
    assertTrue(r.err().contains(what), () -> "stderr names '" + what + "': " + r);
    assertFalse(r.err().contains("\tat "), () -> "no stack trace: " + r);
  }

  @Test
  void create_jsonDescribesTheNewVolume() {
    Path dir = tmp.resolve("db");
    JsonNode info = Cli.run("volume", "create", dir, "--size", "4M", "--block-size", "16K",
        "--diff-max", "1M", "--json").ok().json();
    assertEquals("db", info.get("name").asText());
    assertEquals(dir.toAbsolutePath().toString(), info.get("directory").asText());
    assertEquals(4 * MIB, info.get("size").asLong());
    assertEquals(16384, info.get("blockSize").asInt());
    assertEquals(MIB, info.get("diffMax").asLong());
    assertEquals(0, info.get("diffUsedBytes").asLong());
    assertEquals(dir.resolve("origin.img").toAbsolutePath().toString(), info.get("origin").asText());
    assertEquals(dir.resolve("diff.area").toAbsolutePath().toString(), info.get("diffArea").asText());
    assertEquals(0, info.get("snapshots").size());
    assertTrue(Volume.isVolume(dir));
  }

  @Test
  void create_defaultsBlockSizeAndDiffMax() {
    JsonNode info = Cli.run("volume", "create", tmp.resolve("db"), "--size", "64M", "--json").ok().json();
    assertEquals(65536, info.get("blockSize").asInt());
    assertEquals(64L * MIB / 10, info.get("diffMax").asLong());
  }

  @Test
  void create_textNamesSizeAndLayout() {
    Cli.Result r = Cli.run("volume", "create", tmp.resolve("db"), "--size", "4M").ok();
    assertTrue(r.out().contains("Created volume 'db'"), r::toString);
    assertTrue(r.out().contains("4 MiB (4194304 bytes)"), r::toString);
    assertEquals("", r.err());
  }

  @Test
  void create_originWithoutSizeTakesTheOriginsSize() throws IOException {
    Path origin = TestVolumes.file(tmp, "data.img", TestVolumes.random(1, 3 * MIB));
    JsonNode info = Cli.run("volume", "create", tmp.resolve("db"), "--origin", origin, "--json").ok().json();
    assertEquals(3 * MIB, info.get("size").asLong());
    assertEquals(origin.toAbsolutePath().toString(), info.get("origin").asText());
    assertArrayEquals(Files.readAllBytes(origin), TestVolumes.image(tmp.resolve("db")));
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
    "--size|-5|must not be negative: -5",
    "--size|12Q|unknown unit 'Q'",
    "--size|0|volume size must be positive: 0",
    "--size|64MB|ambiguous unit",
    "--block-size|3000|block size must be a power of two",
    "--block-size|2M|block size must be a power of two",
    "--diff-max|-1|must not be negative",
    "--diff-max|1K|diff area limit must hold at least one block"
  })
  void create_badSizeIsUsageErrorAndCreatesNothing(String option, String value, String message) {
    Path dir = tmp.resolve("db");
    List<String> args = new java.util.ArrayList<>(List.of("volume", "create", dir.toString(), "--size", "4M"));
    if (option.equals("--size")) {
      args.set(4, value);
    } else {
      args.addAll(List.of(option, value));
    }
    Cli.Result r = Cli.run(args.toArray());
    assertFails(r, ExitCodes.USAGE, message);
    assertTrue(r.err().startsWith("shade volume create: "), r::toString);
    assertFalse(Files.exists(dir), "nothing created");
  }

  @Test
  void create_withoutSizeOrOriginIsUsageError() {
    assertFails(Cli.run("volume", "create", tmp.resolve("db")), ExitCodes.USAGE, "--size");
    assertFalse(Files.exists(tmp.resolve("db")));
  }

  @Test
  void create_missingOriginFailsAndCreatesNothing() {
    Cli.Result r = Cli.run("volume", "create", tmp.resolve("db"), "--origin", tmp.resolve("nope.img"));
    assertFails(r, ExitCodes.FAILURE, "origin does not exist");
    assertFalse(Files.exists(tmp.resolve("db")));
  }

  @Test
  void create_overExistingVolumeFailsAndChangesNothing() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    Cli.run("volume", "import", dir, TestVolumes.file(tmp, "a", TestVolumes.random(2, 8192))).ok();
    TestVolumes.State before = TestVolumes.state(dir);
    assertFails(Cli.run("volume", "create", dir, "--size", "2M"), ExitCodes.FAILURE, "already exists");
    assertEquals(before, TestVolumes.state(dir));
  }

  @Test
  void create_inNonEmptyDirectoryFailsAndKeepsItsFiles() throws IOException {
    Path dir = Files.createDirectory(tmp.resolve("db"));
    Path keep = TestVolumes.file(dir, "keep.txt", new byte[] {1, 2, 3});
    assertFails(Cli.run("volume", "create", dir, "--size", "1M"), ExitCodes.FAILURE, "not empty");
    assertEquals(List.of(keep), Files.list(dir).toList());
  }

  @Test
  void importThenExport_roundTripsAtOffset() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "4M");
    byte[] data = TestVolumes.random(3, MIB + 1234);
    Cli.Result r = Cli.run("volume", "import", dir, TestVolumes.file(tmp, "in.bin", data), "--offset", "1M").ok();
    assertTrue(r.out().contains("at offset 1048576"), r::toString);
    byte[] expected = TestVolumes.placed(data, MIB, 4 * MIB);
    assertArrayEquals(expected, TestVolumes.image(dir));

    Path out = tmp.resolve("out.img");
    Cli.run("volume", "export", dir, out).ok();
    assertArrayEquals(expected, Files.readAllBytes(out));
    assertEquals(List.of(out), Files.list(tmp).filter(p -> p.getFileName().toString().contains("out.img")).toList(),
        "no temporary file left beside the image");
  }

  @Test
  void export_skipsZeroPagesSoTheImageIsSparse() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "64M");
    Cli.run("volume", "import", dir, TestVolumes.file(tmp, "in.bin", TestVolumes.random(4, 4096)), "--offset", "32M").ok();
    Path out = tmp.resolve("out.img");
    Cli.run("volume", "export", dir, out).ok();
    assertEquals(64L * MIB, Files.size(out));
    try (FileHandle image = FileHandle.openReadOnly(out)) {
      // ext4, xfs and tmpfs report holes; the only data is the imported page
      assertEquals(32L * MIB, image.nextData(0), "a hole up to the data");
      long hole = image.nextHole(32L * MIB);
      assertTrue(hole > 32L * MIB && hole <= 33L * MIB, "a hole after the data, at " + hole);
      assertEquals(-1, image.nextData(hole), "no data after it");
    }
    assertArrayEquals(TestVolumes.image(dir), Files.readAllBytes(out));
  }

  @Test
  void import_fileLargerThanVolumeFailsAndChangesNothing() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    Cli.run("volume", "import", dir, TestVolumes.file(tmp, "a", TestVolumes.random(5, 64 * 1024))).ok();
    Cli.run("snapshot", "create", dir).ok();
    TestVolumes.State before = TestVolumes.state(dir);

    Path big = TestVolumes.file(tmp, "big.bin", TestVolumes.random(6, MIB + 1));
    assertFails(Cli.run("volume", "import", dir, big), ExitCodes.FAILURE, "does not fit in volume 'db'");
    assertEquals(before, TestVolumes.state(dir));
  }

  @Test
  void import_pastTheEndAtOffsetFailsAndChangesNothing() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    TestVolumes.State before = TestVolumes.state(dir);
    Path f = TestVolumes.file(tmp, "a", TestVolumes.random(7, 4096));
    assertFails(Cli.run("volume", "import", dir, f, "--offset", MIB - 4095), ExitCodes.FAILURE, "does not fit");
    assertFails(Cli.run("volume", "import", dir, f, "--offset", "2M"), ExitCodes.FAILURE, "does not fit");
    assertEquals(before, TestVolumes.state(dir));
  }

  @Test
  void import_negativeOffsetIsUsageError() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    TestVolumes.State before = TestVolumes.state(dir);
    Path f = TestVolumes.file(tmp, "a", TestVolumes.random(8, 4096));
    assertFails(Cli.run("volume", "import", dir, f, "--offset", "-4096"), ExitCodes.USAGE, "must not be negative");
    assertEquals(before, TestVolumes.state(dir));
  }

  @Test
  void import_missingFileFails() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    assertFails(Cli.run("volume", "import", dir, tmp.resolve("nope.bin")), ExitCodes.FAILURE,
        "no such file or directory: " + tmp.resolve("nope.bin"));
  }

  @Test
  void missingVolumeDirectory_failsForEveryCommand() throws IOException {
    Path missing = tmp.resolve("nope");
    Path f = TestVolumes.file(tmp, "a", new byte[4096]);
    String[][] commands = {
      {"volume", "info", missing.toString()},
      {"volume", "import", missing.toString(), f.toString()},
      {"volume", "export", missing.toString(), tmp.resolve("o.img").toString()},
      {"volume", "revert", missing.toString(), "s1", "--yes"},
      {"snapshot", "create", missing.toString()},
      {"snapshot", "list", missing.toString()},
      {"snapshot", "delete", missing.toString(), "s1"},
      {"snapshot", "export", missing.toString(), "s1", tmp.resolve("o.img").toString()},
      {"snapshot", "diff", missing.toString(), "s1"},
    };
    for (String[] args : commands) {
      assertFails(Cli.run((Object[]) args), ExitCodes.FAILURE, "volume directory does not exist: " + missing);
    }
    assertFalse(Files.exists(missing));
    assertFalse(Files.exists(tmp.resolve("o.img")));
  }

  @Test
  void info_onDirectoryThatIsNoVolumeFails() throws IOException {
    Path dir = Files.createDirectory(tmp.resolve("plain"));
    assertFails(Cli.run("volume", "info", dir), ExitCodes.FAILURE, "not a shade volume");
  }

  @Test
  void info_jsonListsSnapshotsAndDiffUse() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    Path data = TestVolumes.file(tmp, "x", TestVolumes.random(9, 8192));
    Cli.run("volume", "import", dir, data).ok();
    Cli.run("snapshot", "create", dir, "--name", "a").ok();
    Cli.run("volume", "import", dir, data).ok(); // two 4 KiB blocks copied for 'a
    JsonNode info = Cli.run("volume", "info", dir, "--json").ok().json();
    assertEquals(8192, info.get("diffUsedBytes").asLong(), info::toString);
    assertEquals("a", info.get("snapshots").get(0).get("name").asText());
    String text = Cli.run("volume", "info", dir).ok().out();
    assertTrue(text.contains("snapshots   1 (a)"), text);
  }

  @Test
  void export_refusesToReplaceAFileWithoutForce() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    Path out = TestVolumes.file(tmp, "out.img", new byte[] {42});
    assertFails(Cli.run("volume", "export", dir, out), ExitCodes.FAILURE, "pass --force");
    assertArrayEquals(new byte[] {42}, Files.readAllBytes(out));
    Cli.run("volume", "export", dir, out, "--force").ok();
    assertEquals(MIB, Files.size(out));
  }

  @Test
  void export_intoMissingDirectoryFails() throws IOException {
    Path dir = TestVolumes.create(tmp.resolve("db"), "1M");
    assertFails(Cli.run("volume", "export", dir, tmp.resolve("no/out.img")), ExitCodes.FAILURE, "does not exist");
  }
}
