package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.offhost.tape.EarlyWarningException;
import dev.shade.offhost.tape.TapeDrive;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code shade verify} and {@code shade catalog drills} without root: a real agent serving a
 * volume over NBD (a Unix socket), a backup to a virtual library, verify passing and then naming
 * a flipped byte; a drill of a volume that has no backup fails at its first step and is recorded.
 * (Drills that restore, attach and mount need root: DrillIT.)
 */
class VerifyCommandTest {
  private static final int MiB = 1024 * 1024;
  @TempDir Path tmp;
  private AgentProcess agent;

  @AfterEach
  void stopAgent() throws Exception {
    if (agent != null && agent.process().isAlive()) {
      agent.process().destroyForcibly();
      agent.process().waitFor(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void verify_passes_thenNamesAFlippedByte_andTheHistoryShowsBoth_andADrillWithoutBackupFailsAtFind()
      throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "16M");
    byte[] data = TestVolumes.random(3, 6 * MiB);
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "a.bin", data)).ok();
    Path lib = tmp.resolve("vtl");
    Cli.run("tape", "library", "create", lib, "--slots", "1", "--capacity", "64M").ok();
    Path control = tmp.resolve("control.sock");
    Path nbd = tmp.resolve("nbd.sock");
    agent = AgentProcess.start(tmp, List.of(db, "--control-socket", control, "--socket", nbd), control);
    Cli.run("snapshot", "create", db, "--name", "s1").ok();
    Cli.run("backup", "run", "--source", "nbd+unix:///db@s1?socket=" + nbd, "--library", lib, "--chunk-size", "1M")
        .ok();
    agent.stop();

    Cli.Result ok = Cli.run("verify", "--library", lib);
    assertEquals(0, ok.code(), ok::toString);
    assertTrue(ok.out().contains("ok     SHD001:1  job 1  6 MiB") && ok.out().contains("all passed"), ok::toString);

    Path cart = lib.resolve("slot-0001.tape");
    byte[] tape = Files.readAllBytes(cart);
    int at = indexOf(tape, Arrays.copyOfRange(data, 4 * MiB + 300_000, 4 * MiB + 300_064));
    tape[at + 1] ^= 0x40;
    Files.write(cart, tape);
    Cli.Result bad = Cli.run("verify", "--library", lib, "--job", "1", "--json");
    assertEquals(ExitCodes.FAILURE, bad.code(), bad::toString);
    JsonNode doc = bad.json();
    assertEquals(false, doc.get("ok").asBoolean());
    JsonNode a = doc.get("archives").get(0);
    assertEquals("SHD001", a.get("cartridge").asText());
    assertEquals(1, a.get("fileNumber").asInt());
    assertEquals("data/0000000000400000", a.get("chunk").asText(), a::toString);
    assertTrue(bad.err().contains("cartridge SHD001, tape file 1") && bad.err().contains("data/0000000000400000"),
        bad::toString);

    Cli.Result none = Cli.run("drill", "db", "--library", lib.resolve("nowhere"));
    assertEquals(ExitCodes.FAILURE, none.code(), none::toString);
    Cli.Result other = Cli.run("drill", "other", "--library", lib, "--scratch", tmp.resolve("scratch"), "--json");
    assertEquals(ExitCodes.FAILURE, other.code(), other::toString);
    assertEquals("find", other.json().get("failedStep").asText());
    assertTrue(other.err().contains("failed at step find: the catalog of") && other.err().contains("volume other"),
        other::toString);
    assertEquals(ExitCodes.USAGE, Cli.run("drill", "db", "--library", lib, "--writer", "mysql:x").code());

    JsonNode history = Cli.run("catalog", "drills", lib, "--json").ok().json();
    assertEquals(1, history.get("drills").size());
    assertEquals(2, history.get("verifications").size());
    assertEquals(List.of("ok", "failed"), List.of(history.get("verifications").get(0).get("outcome").asText(),
        history.get("verifications").get(1).get("outcome").asText()));
    assertEquals(2, Cli.run("catalog", "drills", lib, "db", "--json").ok().json().get("verifications").size());
    assertEquals(0, Cli.run("catalog", "drills", lib, "db", "--json").ok().json().get("drills").size());
    Cli.Result text = Cli.run("catalog", "drills", lib).ok();
    assertTrue(text.out().contains("other") && text.out().contains("find") && text.out().contains("Verifications:")
        && text.out().contains("FAILED SHD001:1"), text::toString);
    JsonNode list = Cli.run("catalog", "list", lib, "--drills", "--json").ok().json();
    assertEquals(1, list.get("jobs").size());
    assertEquals(1, list.get("drills").size());
    assertEquals(2, list.get("verifications").size());
    assertTrue(Cli.run("catalog", "list", lib, "--json").ok().json().path("drills").isMissingNode());
    assertEquals(2, history.get("verifications").get(1).get("id").asLong());

    // the byte flipped back, and the library full (its one cartridge past its early warning): the verify
    // stands, exit 0, and says its record could not go on tape
    byte[] again = Files.readAllBytes(cart);
    again[at + 1] ^= 0x40;
    Files.write(cart, again);
    try (VirtualTapeLibrary l = VirtualTapeLibrary.open(lib)) {
      TapeDrive d = l.load(0, 1);
      d.seekEndOfData();
      try {
        while (true) {
          d.write(ByteBuffer.allocate(l.config().blockSize()));
        }
      } catch (EarlyWarningException e) {
        d.writeFilemarks(1);
      }
      l.unload(0);
    }
    Cli.Result full = Cli.run("verify", "--library", lib, "--json");
    assertEquals(ExitCodes.OK, full.code(), full::toString);
    JsonNode records = full.json().get("records");
    assertEquals(0, records.get("written").size(), records::toString);
    assertTrue(records.get("notWritten").get(0).asText().contains("none is blank"), records::toString);
    assertTrue(full.err().contains("shade verify: warning: the records of 1 verification (pool default) could not go"
        + " on tape"), full::toString);
    Cli.Result text2 = Cli.run("verify", "--library", lib);
    assertEquals(ExitCodes.OK, text2.code(), text2::toString);
    assertTrue(text2.out().contains("all passed")
        && text2.err().contains("warning: the records of 2 verifications (pool default) could not go on tape"),
        text2::toString);
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
}
