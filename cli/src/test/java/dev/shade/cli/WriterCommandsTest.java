package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code shade snapshot create --writer}, {@code metadata} and {@code backup-complete}, with and without an agent. */
class WriterCommandsTest {
  @TempDir Path tmp;
  private final List<Process> started = new ArrayList<>();

  @AfterEach
  void stopAgents() {
    for (Process p : started) {
      p.destroyForcibly();
    }
  }

  private Path hooks(String body) throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("hooks"));
    Path hook = dir.resolve("10-app");
    Files.writeString(hook, "#!/bin/sh\necho \"$1\" >> '" + tmp.resolve("hooks.log") + "'\n" + body + "\n");
    Files.setPosixFilePermissions(hook, PosixFilePermissions.fromString("rwxr-xr-x"));
    return dir;
  }

  private List<String> phases() throws IOException {
    Path log = tmp.resolve("hooks.log");
    return Files.exists(log) ? Files.readAllLines(log) : List.of();
  }

  @Test
  void createWithAWriterLocally() throws Exception {
    Path h = hooks("true");
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    Cli.Result r = Cli.run("snapshot", "create", db, "--writer", "exec:" + h, "--name", "app1").ok();
    assertTrue(r.out().contains("writer exec:" + h + ": prepare"), r::toString);
    assertTrue(r.out().contains("Writers were frozen for"), r::toString);
    assertEquals(List.of("freeze", "thaw"), phases());

    JsonNode doc = Cli.run("snapshot", "create", db, "--writer", "exec:" + h, "--freeze-timeout", "2s", "--json").ok().json();
    assertEquals(2000, doc.path("freezeTimeoutMs").asLong());
    assertTrue(doc.path("freezeMs").asDouble() > 0, doc::toString);

    JsonNode meta = Cli.run("snapshot", "metadata", db, "app1", "--json").ok().json();
    assertEquals("exec:" + h, meta.path("writers").get(0).path("writer").asText());

    // an export carries the snapshot's attributes beside the image
    Path image = tmp.resolve("app1.img");
    JsonNode exported = Cli.run("snapshot", "export", db, "app1", image, "--json").ok().json();
    Path descriptor = Path.of(exported.path("descriptor").asText());
    assertEquals(tmp.resolve("app1.img.snapshot.json"), descriptor);
    JsonNode fromCopy = Cli.run("snapshot", "metadata", "--descriptor", descriptor, "--json").ok().json();
    assertEquals(meta.path("writers"), fromCopy.path("writers"));
    assertEquals("app1", fromCopy.path("snapshot").asText());
    Cli.Result both = Cli.run("snapshot", "metadata", db, "app1", "--descriptor", descriptor);
    assertEquals(2, both.code(), both::toString);
    Cli.Result bogus = Cli.run("snapshot", "metadata", "--descriptor", image);
    assertEquals(1, bogus.code(), bogus::toString);

    Cli.Result bc = Cli.run("snapshot", "backup-complete", db, "app1").ok();
    assertTrue(bc.out().contains("marked backed up"), bc::toString);
    assertEquals("backup-complete", phases().get(phases().size() - 1));
    JsonNode again = Cli.run("snapshot", "backup-complete", db, "app1", "--json").ok().json();
    assertTrue(again.path("previously").isTextual(), again::toString);
  }

  @Test
  void badWriterSpecsAndAVetoAreClearErrors() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    Cli.Result unknown = Cli.run("snapshot", "create", db, "--writer", "oracle:prod");
    assertEquals(2, unknown.code(), unknown::toString);
    assertTrue(unknown.err().contains("unknown writer kind 'oracle'"), unknown::toString);

    Cli.Result noWriter = Cli.run("snapshot", "create", db, "--freeze-timeout", "1s");
    assertEquals(2, noWriter.code(), noWriter::toString);
    assertTrue(noWriter.err().contains("--freeze-timeout needs --writer"), noWriter::toString);

    Path h = hooks("[ \"$1\" = freeze ] && { echo 'not now' >&2; exit 4; }; exit 0");
    Cli.Result veto = Cli.run("snapshot", "create", db, "--writer", "exec:" + h);
    assertEquals(1, veto.code(), veto::toString);
    assertTrue(veto.err().contains("exited with status 4") && veto.err().contains("not now"), veto::toString);
    assertEquals(List.of("freeze", "thaw", "abort"), phases());
    JsonNode list = Cli.run("snapshot", "list", db, "--json").ok().json();
    assertEquals(0, list.size(), list::toString);
  }

  @Test
  void throughAnAgentTheSameAndAKilledAgentsUnfinishedSnapshotIsGoneAfterARestart() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    Path control = tmp.resolve("control.sock");
    Path h = hooks("[ \"$1\" = thaw ] && [ -e '" + tmp.resolve("slow") + "' ] && sleep 3; exit 0");
    AgentProcess a = AgentProcess.start(tmp, List.of(db, "--control-socket", control, "--listen", "127.0.0.1:0"), control);
    started.add(a.process());
    JsonNode doc = Cli.run("snapshot", "create", db, "--writer", "exec:" + h, "--name", "viaAgent", "--json").ok().json();
    assertEquals("viaAgent", doc.path("snapshots").get(0).path("name").asText());
    assertTrue(doc.path("freezeMs").asDouble() > 0);

    // the agent dies after the commit, while the writers thaw: the snapshot was not made durable
    // yet (that waits for the thaw), or it was and is still marked pending; either way it is
    // gone once the agent is back
    Files.createFile(tmp.resolve("slow"));
    Thread t = new Thread(() -> Cli.run("snapshot", "create", db, "--writer", "exec:" + h, "--name", "torn"));
    t.start();
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (phases().stream().filter("thaw"::equals).count() < 2 && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    a.kill();
    t.join(60_000);
    AgentProcess b = AgentProcess.start(tmp, List.of(db, "--control-socket", control, "--listen", "127.0.0.1:0"), control);
    started.add(b.process());
    JsonNode list = Cli.run("snapshot", "list", db, "--json").ok().json();
    assertEquals(1, list.size(), list::toString);
    assertEquals("viaAgent", list.get(0).path("name").asText());
    assertTrue(!b.err().contains("discarded snapshot 'viaAgent'"), b::toString);
  }
}
