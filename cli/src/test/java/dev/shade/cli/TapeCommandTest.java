package dev.shade.cli;

import static dev.shade.cli.VolumeCommandTest.assertFails;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.offhost.tape.TapeDrive;
import dev.shade.offhost.tape.TapeOutputStream;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class TapeCommandTest {
  @TempDir Path tmp;

  private Path library(int slots) {
    Path lib = tmp.resolve("vtl");
    Cli.run("tape", "library", "create", lib, "--slots", slots, "--capacity", "16M", "--block-size", "64K").ok();
    return lib;
  }

  /** Writes a tar with {@code names} (each member holds its name) as the next file of the cartridge in slot 1. */
  private static void appendTar(Path lib, List<String> names) throws IOException {
    try (VirtualTapeLibrary l = VirtualTapeLibrary.open(lib)) {
      TapeDrive d = l.load(1);
      d.seekEndOfData();
      try (TapeOutputStream out = new TapeOutputStream(d);
          TarArchiveOutputStream tar = new TarArchiveOutputStream(out, d.blockSize(), "UTF-8")) {
        for (String name : names) {
          byte[] body = name.getBytes(StandardCharsets.UTF_8);
          TarArchiveEntry e = new TarArchiveEntry(name);
          e.setSize(body.length);
          tar.putArchiveEntry(e);
          tar.write(body);
          tar.closeArchiveEntry();
        }
      }
      l.unload(0);
    }
  }

  @Test
  void libraryCreate_textAndJson() {
    Cli.Result r = Cli.run("tape", "library", "create", tmp.resolve("a"), "--slots", 3, "--capacity", "16M").ok();
    assertTrue(r.out().contains("3 slots of blank 16 MiB cartridges, 1 drive, 256 KiB blocks, early warning 2 MiB"),
        r::toString);
    JsonNode doc = Cli.run("tape", "library", "create", tmp.resolve("b"), "--slots", 2, "--capacity", "64M",
        "--drives", 2, "--early-warning", "1M", "--json").ok().json();
    assertEquals(2, doc.get("slots").asInt());
    assertEquals(64L << 20, doc.get("capacity").asLong());
    assertEquals(1L << 20, doc.get("earlyWarningZone").asLong());
    assertEquals((1L << 20) - 262144, doc.get("trailerBytes").asLong());
    assertEquals(262144, doc.get("blockSize").asInt());
    assertEquals(2, doc.get("drives").size());
    assertTrue(doc.get("drives").get(1).get("slot").isNull());
    assertEquals(2, doc.get("blank").asInt());
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
    "--capacity|100K|capacity must be at least",
    "--capacity|-1|must not be negative",
    "--slots|0|slots must be 1 to 9999",
    "--drives|17|drives must be 1 to 16",
    "--block-size|100|block size must be 512 bytes to 16 MiB",
  })
  void libraryCreate_badShapeIsAUsageErrorAndLeavesNothing(String option, String value, String message) {
    Path dir = tmp.resolve("bad");
    List<Object> args = new java.util.ArrayList<>(List.of("tape", "library", "create", dir, "--slots", 2,
        "--capacity", "16M"));
    int at = args.indexOf(option);
    if (at >= 0) {
      args.set(at + 1, value);
    } else {
      args.add(option);
      args.add(value);
    }
    assertFails(Cli.run(args.toArray()), ExitCodes.USAGE, message);
    assertTrue(Files.notExists(dir));
  }

  @Test
  void libraryCreate_existingLibraryFails() {
    Path lib = library(1);
    assertFails(Cli.run("tape", "library", "create", lib, "--slots", 1, "--capacity", "16M"), ExitCodes.FAILURE,
        "a tape library already exists in " + lib);
    assertFails(Cli.run("tape", "library", "create", tmp.resolve("x"), "--capacity", "16M"), ExitCodes.USAGE,
        "--slots");
  }

  @Test
  void labelListStatus_jsonShapes() {
    Path lib = library(3);
    JsonNode labelled = Cli.run("tape", "label", lib, "2", "--label", "SHD002", "--pool", "nightly", "--json").ok().json();
    assertEquals("SHD002", labelled.get("labelled").get(0).get("label").asText());
    assertEquals(1, labelled.get("labelled").get(0).get("sequence").asInt());
    Cli.Result all = Cli.run("tape", "label", lib, "--all-blank", "--label", "SHD", "--pool", "nightly").ok();
    assertTrue(all.out().contains("Labelled slot 1 'SHD001' (pool nightly, sequence 2).")
        && all.out().contains("Labelled slot 3 'SHD003' (pool nightly, sequence 3)."), all::toString);
    assertTrue(Cli.run("tape", "label", lib, "--all-blank", "--label", "SHD", "--pool", "nightly").ok().out()
        .contains("No blank cartridges"));

    JsonNode list = Cli.run("tape", "list", lib, "--json").ok().json();
    assertEquals(lib.toAbsolutePath().toString(), list.get("library").asText());
    assertEquals(3, list.get("cartridges").size());
    JsonNode c = list.get("cartridges").get(1);
    assertEquals(2, c.get("slot").asInt());
    assertEquals("SHD002", c.get("label").asText());
    assertEquals("nightly", c.get("pool").asText());
    assertTrue(c.get("drive").isNull());
    JsonNode f = c.get("files").get(0);
    assertEquals(0, f.get("fileNumber").asInt());
    assertEquals("label", f.get("kind").asText());
    assertEquals(65536, f.get("bytes").asLong());

    Cli.Result load = Cli.run("tape", "load", lib, "3").ok();
    assertTrue(load.out().contains("Loaded slot 3 (cartridge SHD003 (pool nightly)) into drive 0."), load::toString);
    JsonNode status = Cli.run("tape", "status", lib, "--json").ok().json();
    assertEquals(3, status.get("drives").get(0).get("slot").asInt());
    assertEquals("SHD003", status.get("drives").get(0).get("label").asText());
    assertEquals(3, status.get("labelled").asInt());
    assertTrue(Cli.run("tape", "status", lib).ok().out().contains("drive 0   slot 3, SHD003 (pool nightly)"));
    assertEquals(0, Cli.run("tape", "list", lib, "--json").ok().json().get("cartridges").get(2).get("drive").asInt());
    assertFails(Cli.run("tape", "load", lib, "1"), ExitCodes.FAILURE, "drive 0 holds the cartridge of slot 3");
    assertTrue(Cli.run("tape", "unload", lib).ok().out().contains("Unloaded drive 0: slot 3"));
    assertFails(Cli.run("tape", "unload", lib), ExitCodes.FAILURE, "drive 0 is empty");
    assertTrue(Cli.run("tape", "list", lib).ok().out().contains("file 0    label"));
  }

  @Test
  void label_errors() {
    Path lib = library(2);
    Cli.run("tape", "label", lib, "1", "--label", "A1", "--pool", "p").ok();
    assertFails(Cli.run("tape", "label", lib, "1", "--label", "A2", "--pool", "p"), ExitCodes.FAILURE,
        "already labelled 'A1'");
    assertFails(Cli.run("tape", "label", lib, "2", "--label", "A1", "--pool", "p"), ExitCodes.FAILURE,
        "label 'A1' is already on the cartridge of slot 1");
    assertFails(Cli.run("tape", "label", lib, "2", "--label", "a b", "--pool", "p"), ExitCodes.USAGE,
        "label must be 1 to 32 of");
    assertFails(Cli.run("tape", "label", lib, "9", "--label", "A9", "--pool", "p"), ExitCodes.USAGE,
        "slot must be 1 to 2: 9");
    assertFails(Cli.run("tape", "label", lib, "2", "--all-blank", "--label", "A", "--pool", "p"), ExitCodes.USAGE,
        "mutually exclusive");
    Cli.run("tape", "label", lib, "1", "--label", "A2", "--pool", "p", "--force").ok();
  }

  @Test
  void missingOrWrongLibrary_failsNamingThePath() throws IOException {
    assertFails(Cli.run("tape", "list", tmp.resolve("none")), ExitCodes.FAILURE,
        "tape library directory does not exist: " + tmp.resolve("none"));
    Files.createDirectories(tmp.resolve("empty"));
    assertFails(Cli.run("tape", "status", tmp.resolve("empty")), ExitCodes.FAILURE, "not a tape library");
  }

  @Test
  void libraryInUse_failsClearly() throws IOException {
    Path lib = library(1);
    try (VirtualTapeLibrary held = VirtualTapeLibrary.open(lib)) {
      assertFails(Cli.run("tape", "list", lib), ExitCodes.FAILURE, "tape library is in use by another process");
    }
  }

  @Test
  void cat_writesTheTapeFileToStdout() throws Exception {
    Path lib = library(1);
    Cli.run("tape", "label", lib, "1", "--label", "SHD001", "--pool", "nightly").ok();
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    Cli.Result r = Cli.run(new Shade().binaryOut(captured), "tape", "cat", lib, "SHD001", "0");
    r.ok();
    assertEquals("", r.out());
    assertEquals(65536, captured.size());
    String json = run(captured.toByteArray(), "tar", "-xO");
    assertTrue(json.contains("\"label\" : \"SHD001\"") && json.contains("\"pool\" : \"nightly\""), json);
  }

  @Test
  void cat_errors() {
    Path lib = library(1);
    Cli.run("tape", "label", lib, "1", "--label", "SHD001", "--pool", "p").ok();
    assertFails(Cli.run("tape", "cat", lib, "NOPE", "0"), ExitCodes.FAILURE, "no cartridge labelled 'NOPE'");
    assertFails(Cli.run("tape", "cat", lib, "SHD001", "1"), ExitCodes.FAILURE, "has 1 file (0 to 0), so there is no file 1");
    assertFails(Cli.run("tape", "cat", lib, "SHD001", "x"), ExitCodes.USAGE, "file number must be a whole number");
    assertFails(Cli.run("tape", "cat", lib, "SHD001"), ExitCodes.USAGE, "expected LIB LABEL FILENO");
  }

  @Test
  void device_thatIsNoTapeFailsNamingIt() throws IOException {
    Path file = Files.write(tmp.resolve("not-a-tape"), new byte[512]);
    assertFails(Cli.run("tape", "status", "--device", file), ExitCodes.FAILURE, "MTSETBLK 0");
    assertFails(Cli.run("tape", "status", "--device", file), ExitCodes.FAILURE, file.toString());
    assertFails(Cli.run("tape", "status", "--device", tmp.resolve("nst9")), ExitCodes.FAILURE, "nst9");
  }

  @Test
  void help_teachesWithExamples() {
    Cli.Result r = Cli.run("tape", "--help").ok();
    assertTrue(r.out().contains("shade tape cat /srv/vtl SHD001 0 | tar -xO"), r::toString);
    assertTrue(Cli.run("tape", "label", "--help").ok().out().contains("--all-blank"));
    assertFails(Cli.run("tape"), ExitCodes.USAGE, "choose one of library, status, list, load, unload, label, cat");
  }

  /** {@code shade tape cat | tar -t} in a shell, with shade a real JVM: what an operator runs. */
  @Test
  void catPipedIntoTar_listsTheArchive() throws Exception {
    Path lib = library(1);
    Cli.run("tape", "label", lib, "1", "--label", "SHD001", "--pool", "p").ok();
    appendTar(lib, List.of("shade-archive.json", "data/volume.img", "data/meta/backup_label"));
    assertEquals("shade-archive.json\ndata/volume.img\ndata/meta/backup_label\n", shell(lib, "tape cat '" + lib
        + "' SHD001 1 | tar -t"));
    assertEquals("archive", Cli.run("tape", "list", lib, "--json").ok().json().get("cartridges").get(0)
        .get("files").get(1).get("kind").asText());
  }

  @Test
  void catIntoAReaderThatStopsEarly_endsQuietly() throws Exception {
    Path lib = library(1);
    Cli.run("tape", "label", lib, "1", "--label", "SHD001", "--pool", "p").ok();
    try (VirtualTapeLibrary l = VirtualTapeLibrary.open(lib)) {
      TapeDrive d = l.load(1);
      d.seekEndOfData();
      for (int i = 0; i < 64; i++) { // 4 MiB, far more than a pipe holds
        d.write(java.nio.ByteBuffer.allocate(d.blockSize()));
      }
      d.writeFilemarks(1);
    }
    assertEquals("512", shell(lib, "tape cat '" + lib + "' SHD001 1 | head -c 512 | wc -c").strip());
  }

  /** Runs {@code shade ARGS} (a real JVM) in a bash pipeline with pipefail; returns its stdout, asserting exit 0. */
  private static String shell(Path lib, String shadeArgsAndPipe) throws Exception {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String cmd = "set -o pipefail; '" + java + "' -Xshare:auto -XX:TieredStopAtLevel=1 -cp \"$CP\" dev.shade.cli.Shade "
        + shadeArgsAndPipe;
    ProcessBuilder pb = new ProcessBuilder("bash", "-c", cmd);
    pb.environment().put("CP", System.getProperty("java.class.path"));
    Process p = pb.start();
    String out;
    String err;
    try (InputStream s = p.getInputStream(); InputStream e = p.getErrorStream()) {
      out = new String(s.readAllBytes(), StandardCharsets.UTF_8);
      err = new String(e.readAllBytes(), StandardCharsets.UTF_8);
    }
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, p.exitValue(), cmd + ": " + out + err);
    assertEquals("", err, "nothing on stderr");
    return out;
  }

  /** Runs {@code cmd} with {@code input} on stdin; returns stdout. */
  static String run(byte[] input, String... cmd) throws Exception {
    Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    // fed from another thread: tar may stop reading at the end-of-archive blocks, before the padding
    Thread feeder = new Thread(() -> {
      try (OutputStream in = p.getOutputStream()) {
        in.write(input);
      } catch (IOException e) {
        // broken pipe: tar has what it needs
      }
    });
    feeder.start();
    String out;
    try (InputStream s = p.getInputStream()) {
      out = new String(s.readAllBytes(), StandardCharsets.UTF_8);
    }
    assertTrue(p.waitFor(30, TimeUnit.SECONDS));
    feeder.join();
    assertEquals(0, p.exitValue(), String.join(" ", cmd) + ": " + out);
    return out;
  }
}
