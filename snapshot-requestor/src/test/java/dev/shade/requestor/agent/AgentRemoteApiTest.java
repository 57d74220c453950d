package dev.shade.requestor.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.nbd.tls.Pem;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.requestor.control.ControlClient;
import dev.shade.requestor.control.ControlServer;
import dev.shade.testing.nbd.TestPki;
import java.io.BufferedReader;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent's remote API on a real TLS listener: certificates made with openssl, clients with a
 * good certificate, none, or one of another CA; the read-only commands and backup-complete
 * answer, everything else is PermissionDenied; without TLS only loopback is allowed.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AgentRemoteApiTest {
  private static final int SIZE = 1 << 20;
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path pkiDir;
  static TestPki pki;
  @TempDir Path tmp;

  @BeforeAll
  static void makePki() throws Exception {
    pki = TestPki.create(pkiDir);
  }

  private Agent start(Path dir) throws IOException {
    try (Volume v = Volume.create(dir, VolumeConfig.of(SIZE).withBlockSize(4096).withDiffMax(4L * SIZE))) {
      v.write(0, ByteBuffer.wrap(new byte[] {1, 2, 3}));
      v.createSnapshot("s1");
      v.write(65536, ByteBuffer.wrap(new byte[] {4}));
      v.createSnapshot("s2");
    }
    AgentConfig config = new AgentConfig(tmp.resolve("control.sock"), List.of(dir), null).withRemote(
        new AgentConfig.Remote(new InetSocketAddress("127.0.0.1", 0), pki.serverCert, pki.serverKeyPkcs8, pki.caCert));
    return Agent.start(config);
  }

  @Test
  void remote_readOnlyCommands_answerOverTlsWithAClientCertificate() throws Exception {
    try (Agent agent = start(tmp.resolve("db"));
        Remote r = Remote.connect(agent.remoteAddress(), pki.clientDir)) {
      assertTrue(r.greeting.get("shade").has("version"), r.greeting::toString);
      assertEquals("db", r.execute("query-volumes", Map.of()).get("return").get(0).get("name").asText());
      assertEquals(SIZE, r.execute("volume-info", Map.of("volume", "db")).get("return").get("size").asLong());
      JsonNode list = r.execute("snapshot-list", Map.of("volume", "db")).get("return");
      assertEquals(2, list.get("snapshots").size(), list::toString);
      long id = list.get("snapshots").get(0).get("id").asLong();
      JsonNode show = r.execute("snapshot-show", Map.of("volume", "db", "snapshot", "id=" + id)).get("return");
      assertEquals("s1", show.get("name").asText(), show::toString);
      JsonNode diff = r.execute("snapshot-diff", Map.of("volume", "db", "from", "s1", "to", "s2")).get("return");
      assertEquals(4096, diff.get("changedBytes").asLong(), diff::toString);
      JsonNode done = r.execute("snapshot-backup-complete", Map.of("volume", "db", "snapshot", "s1")).get("return");
      assertEquals(0, done.get("writers").size(), done::toString);
      assertTrue(r.execute("query-version", Map.of()).has("return"));
    }
  }

  @Test
  void remote_writeAndLocalCommands_arePermissionDenied() throws Exception {
    try (Agent agent = start(tmp.resolve("db"));
        Remote r = Remote.connect(agent.remoteAddress(), pki.clientDir)) {
      for (String command : List.of("snapshot-create", "snapshot-delete", "snapshot-export", "snapshot-set-attributes",
          "volume-revert", "volume-rollback", "volume-import", "volume-export", "volume-attach", "volume-detach",
          "agent-stop", "query-commands", "schedule-show", "no-such-command")) {
        JsonNode reply = r.execute(command, Map.of("volume", "db", "volumes", List.of("db"), "name", "evil",
            "snapshot", "s1", "directory", tmp.toString()));
        assertEquals("PermissionDenied", reply.path("error").path("class").asText(), () -> command + ": " + reply);
        assertTrue(reply.get("error").get("desc").asText().contains("not open to remote clients"), reply::toString);
      }
      assertEquals(2, r.execute("snapshot-list", Map.of("volume", "db")).get("return").get("snapshots").size(),
          "nothing was created or deleted");
      assertEquals(1, agent.volumes().size(), "nothing detached");
    }
    // the local control socket still runs them
    try (Agent agent = start(tmp.resolve("db2"));
        ControlClient local = ControlClient.connect(agent.controlSocket(), Duration.ofSeconds(5), false)) {
      ObjectNode args = JSON.createObjectNode().put("name", "local");
      args.putArray("volumes").add("db2");
      assertEquals(1, local.execute("snapshot-create", args).get("snapshots").size());
    }
  }

  @Test
  void remote_clientWithoutCertificateOrSignedByAnotherCa_isRefused() throws Exception {
    try (Agent agent = start(tmp.resolve("db"))) {
      for (Path dir : List.of(pki.noCertDir, pki.otherCaDir)) {
        assertThrows(IOException.class, () -> {
          try (Remote r = Remote.connect(agent.remoteAddress(), dir)) {
            r.execute("query-volumes", Map.of());
          }
        }, () -> "client of " + dir);
      }
      try (Remote r = Remote.connect(agent.remoteAddress(), pki.clientDir)) {
        assertTrue(r.execute("query-volumes", Map.of()).has("return"), "a good client still gets in");
      }
    }
  }

  @Test
  void remote_backupComplete_runsTheSnapshotsExecHook() throws Exception {
    Path hooks = tmp.resolve("hooks");
    Files.createDirectories(hooks);
    Path seen = tmp.resolve("released");
    Path hook = hooks.resolve("10-release");
    Files.writeString(hook, "#!/bin/sh\n[ \"$1\" = backup-complete ] && echo \"$1\" >> '" + seen + "'\nexit 0\n");
    Files.setPosixFilePermissions(hook, PosixFilePermissions.fromString("rwx------"));
    try (Agent agent = start(tmp.resolve("db"));
        ControlClient local = ControlClient.connect(agent.controlSocket(), Duration.ofSeconds(5), false);
        Remote r = Remote.connect(agent.remoteAddress(), pki.clientDir)) {
      ObjectNode args = JSON.createObjectNode().put("name", "app");
      args.putArray("volumes").add("db");
      args.putArray("writers").add("exec:" + hooks);
      long id = local.execute("snapshot-create", args).get("snapshots").get(0).get("id").asLong();
      assertFalse(Files.exists(seen), "not released before backup-complete");
      JsonNode done = r.execute("snapshot-backup-complete", Map.of("volume", "db", "snapshot", "id=" + id));
      assertTrue(done.has("return"), done::toString);
      assertEquals(true, done.get("return").get("writers").get(0).get("ok").asBoolean(), done::toString);
      assertEquals("backup-complete\n", Files.readString(seen));
    }
  }

  @Test
  void remote_withoutTlsOnAnAddressOtherThanLoopback_isRefusedAtStart() throws Exception {
    assertThrows(IllegalArgumentException.class, () -> new AgentConfig.Remote(new InetSocketAddress("0.0.0.0", 0),
        null, null, null));
    Path cfg = tmp.resolve("agent.json");
    Files.writeString(cfg, "{\"control\": \"c.sock\", \"remote\": {\"listen\": \"0.0.0.0:10810\"}}");
    IOException e = assertThrows(IOException.class, () -> AgentConfig.load(cfg));
    assertTrue(e.getMessage().contains("needs TLS"), e.getMessage());
    IllegalArgumentException direct = assertThrows(IllegalArgumentException.class, () -> ControlServer.startTcp(
        new InetSocketAddress("0.0.0.0", 0), null, (c, a, s) -> null, Map.of(), Duration.ofSeconds(1), Duration.ofSeconds(1)));
    assertTrue(direct.getMessage().contains("not a loopback address"), direct.getMessage());
    Files.writeString(cfg, "{\"control\": \"c.sock\", \"remote\": {\"listen\": \"127.0.0.1:10810\", \"tls\": "
        + "{\"cert\": \"s.pem\", \"key\": \"s.key\", \"ca\": \"ca.pem\"}}}");
    AgentConfig.Remote remote = AgentConfig.load(cfg).remote();
    assertEquals(tmp.resolve("s.pem"), remote.tlsCert());
    assertEquals(10810, remote.listen().getPort());
  }

  /** A bare client of the remote API: TLS with the files of a TestPki directory, one JSON line each way. */
  private static final class Remote implements Closeable {
    private final SSLSocket socket;
    private final BufferedReader in;
    private final OutputStream out;
    final JsonNode greeting;

    private Remote(SSLSocket socket) throws IOException {
      this.socket = socket;
      this.in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
      this.out = socket.getOutputStream();
      String hello = in.readLine();
      if (hello == null) {
        throw new IOException("closed before the greeting");
      }
      this.greeting = JSON.readTree(hello);
      JsonNode caps = execute("capabilities", Map.of());
      if (!caps.has("return")) {
        throw new IOException("capabilities: " + caps);
      }
    }

    static Remote connect(InetSocketAddress at, Path pkiDir) throws IOException {
      Path cert = pkiDir.resolve("client-cert.pem");
      SSLContext ctx = Pem.clientContext(pkiDir.resolve("ca-cert.pem"), Files.exists(cert) ? cert : null,
          Files.exists(cert) ? pkiDir.resolve("client-key.pem") : null);
      Socket plain = new Socket();
      plain.connect(at, 5000);
      plain.setSoTimeout(10_000);
      SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(plain, "localhost", at.getPort(), true);
      try {
        s.startHandshake();
        return new Remote(s);
      } catch (IOException e) {
        s.close();
        throw e;
      }
    }

    /** The whole reply message. */
    JsonNode execute(String command, Map<String, ?> args) throws IOException {
      ObjectNode m = JSON.createObjectNode().put("execute", command);
      m.set("arguments", JSON.valueToTree(args));
      out.write((JSON.writeValueAsString(m) + "\n").getBytes(StandardCharsets.UTF_8));
      out.flush();
      String line = in.readLine();
      if (line == null) {
        throw new IOException("the agent closed the connection");
      }
      return JSON.readTree(line);
    }

    @Override
    public void close() throws IOException {
      socket.close();
    }
  }
}
