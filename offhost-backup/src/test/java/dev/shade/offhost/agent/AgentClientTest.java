package dev.shade.offhost.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.nbd.tls.Pem;
import dev.shade.offhost.backup.SnapshotIdentity;
import dev.shade.testing.nbd.TestPki;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLServerSocket;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The backup server's agent client against a scripted agent (the production side's code is not
 * a dependency here; cli's tests run it against the real one): greeting, capabilities, replies,
 * error classes, events skipped, TLS with and without a client certificate, the Unix socket.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AgentClientTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final SnapshotIdentity ID = new SnapshotIdentity("db", "uuid-1", "nightly", 7,
      Instant.parse("2026-12-01T02:00:00Z"), 1 << 20);

  @TempDir static Path pkiDir;
  static TestPki pki;
  @TempDir Path tmp;

  @BeforeAll
  static void makePki() throws Exception {
    pki = TestPki.create(pkiDir);
  }

  @Test
  void endpoint_parsesAddressesUrisAndSockets() {
    Path ca = Path.of("/ca.pem");
    AgentEndpoint a = AgentEndpoint.parse("db1:10810", ca, null, null);
    assertEquals("db1", a.host());
    assertEquals(10810, a.port());
    assertTrue(a.tls());
    assertFalse(AgentEndpoint.parse("127.0.0.1:10810", null, null, null).tls());
    assertEquals("::1", AgentEndpoint.parse("[::1]:10810", ca, null, null).host());
    assertTrue(AgentEndpoint.parse("shades://10.0.0.1:10810", ca, null, null).tls());
    assertEquals(Path.of("/run/shade/control.sock"), AgentEndpoint.parse("/run/shade/control.sock", null, null, null).socket());
    assertEquals(Path.of("/run/s.sock"), AgentEndpoint.parse("unix:/run/s.sock", null, null, null).socket());
    assertEquals("agent shades://db1:10810", a.toString());
    for (String bad : List.of("db1", "db1:", "db1:99999", "shade://db1:1/x", "")) {
      assertThrows(IllegalArgumentException.class, () -> AgentEndpoint.parse(bad, null, null, null), bad);
    }
    assertThrows(IllegalArgumentException.class, () -> AgentEndpoint.parse("shades://db1:1", null, null, null));
    assertThrows(IllegalArgumentException.class, () -> AgentEndpoint.parse("db1:1", ca, Path.of("/c.pem"), null));
  }

  @Test
  void overTls_showsTheSnapshotAndReportsBackupComplete() throws Exception {
    try (ScriptedAgent agent = ScriptedAgent.tls()) {
      AgentEndpoint at = new AgentEndpoint("localhost", agent.port(), null, pki.caCert,
          pki.clientDir.resolve("client-cert.pem"), pki.clientDir.resolve("client-key.pem"));
      try (AgentClient c = AgentClient.connect(at, Duration.ofSeconds(10))) {
        assertEquals("test", c.greeting().get("version").asText());
        JsonNode show = AgentSnapshots.show(c, ID);
        assertEquals("nightly", show.get("name").asText());
        JsonNode wm = AgentSnapshots.writerMetadata(show);
        assertEquals("postgres:host=db1", wm.get(0).get("writer").asText(), wm::toString);
        BackupCompleteOutcome ok = AgentSnapshots.backupComplete(c, ID);
        assertTrue(ok.ok(), ok::toString);
        assertEquals(1, ok.writers().size());
        assertNull(ok.error());
        BackupCompleteOutcome failed = AgentSnapshots.backupComplete(c, ID);
        assertFalse(failed.ok());
        assertTrue(failed.error().contains("archive cleanup failed"), failed.error());
        AgentException denied = assertThrows(AgentException.class, () -> c.execute("snapshot-delete", null));
        assertEquals("PermissionDenied", denied.errorClass());
      }
      assertEquals("uuid-1", agent.lastArguments.path("volume").asText(), "asked by uuid");
      assertEquals("id=7", agent.lastArguments.path("snapshot").asText(), "and by id");
    }
  }

  @Test
  void overTls_withoutAClientCertificate_isRefusedByTheAgent() throws Exception {
    try (ScriptedAgent agent = ScriptedAgent.tls()) {
      AgentEndpoint at = new AgentEndpoint("localhost", agent.port(), null, pki.caCert, null, null);
      IOException e = assertThrows(IOException.class, () -> {
        try (AgentClient c = AgentClient.connect(at, Duration.ofSeconds(10))) {
          c.execute("query-version", null);
        }
      });
      assertTrue(e.getMessage().contains("agent shades://localhost:" + agent.port()), e.getMessage());
    }
  }

  @Test
  void overTls_anAgentWhoseCertificateDoesNotNameTheHost_isRefused() throws Exception {
    try (ScriptedAgent agent = ScriptedAgent.tls()) {
      // the certificate names localhost and 127.0.0.1; connect by another name of the host
      String other = InetAddress.getLocalHost().getHostName();
      AgentEndpoint at = new AgentEndpoint(other, agent.port(), null, pki.caCert,
          pki.clientDir.resolve("client-cert.pem"), pki.clientDir.resolve("client-key.pem"));
      if (!other.equals("localhost")) {
        assertThrows(IOException.class, () -> AgentClient.connect(at, Duration.ofSeconds(10)).close());
      }
    }
  }

  @Test
  void overTheUnixSocket_anAgentThatIsNotShade_isNamed() throws Exception {
    Path sock = tmp.resolve("c.sock");
    try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
      server.bind(UnixDomainSocketAddress.of(sock));
      Thread t = new Thread(() -> {
        try (SocketChannel ch = server.accept(); OutputStream out = Channels.newOutputStream(ch)) {
          out.write("{\"hello\": 1}\n".getBytes(StandardCharsets.UTF_8));
        } catch (IOException ignored) {
          // the client went
        }
      });
      t.start();
      IOException e = assertThrows(IOException.class,
          () -> AgentClient.connect(AgentEndpoint.parse(sock.toString(), null, null, null), Duration.ofSeconds(5)));
      assertTrue(e.getMessage().contains("did not greet as a shade agent"), e.getMessage());
      t.join(5000);
    }
  }

  /** An agent that follows a script: greets, negotiates, answers snapshot-show and backup-complete. */
  private static final class ScriptedAgent implements AutoCloseable {
    private final ServerSocket server;
    private final Thread thread;
    /** The arguments of the last snapshot-show. */
    volatile JsonNode lastArguments;

    private ScriptedAgent(ServerSocket server) {
      this.server = server;
      this.thread = new Thread(this::serve, "scripted-agent");
      thread.setDaemon(true);
      thread.start();
    }

    static ScriptedAgent tls() throws IOException {
      SSLServerSocket s = (SSLServerSocket) Pem.serverContext(pki.serverCert, pki.serverKeyPkcs8, pki.caCert)
          .getServerSocketFactory().createServerSocket();
      s.setNeedClientAuth(true);
      s.bind(new InetSocketAddress("127.0.0.1", 0));
      return new ScriptedAgent(s);
    }

    int port() {
      return server.getLocalPort();
    }

    private void serve() {
      while (!server.isClosed()) {
        try (Socket s = server.accept()) {
          session(s);
        } catch (IOException e) {
          // a refused handshake, or closed
        }
      }
    }

    private void session(Socket s) throws IOException {
      BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
      OutputStream out = s.getOutputStream();
      send(out, "{\"shade\": {\"version\": \"test\", \"capabilities\": [\"events\"], \"pid\": 1}}");
      int completes = 0;
      String line;
      while ((line = in.readLine()) != null) {
        JsonNode m = JSON.readTree(line);
        String cmd = m.get("execute").asText();
        JsonNode id = m.get("id");
        if (cmd.startsWith("snapshot-show")) {
          lastArguments = m.path("arguments");
        }
        ObjectNode reply = JSON.createObjectNode();
        switch (cmd) {
          case "capabilities" -> reply.putObject("return");
          case "snapshot-show" -> {
            send(out, "{\"event\": \"SNAPSHOT_CREATED\", \"data\": {}}"); // not asked for, but skipped
            ObjectNode r = reply.putObject("return").put("volume", "db").put("volumeUuid", "uuid-1")
                .put("name", "nightly").put("id", 7);
            r.putObject("attributes").put("shade.writers",
                "[{\"writer\": \"postgres:host=db1\", \"files\": {\"backup_label\": \"START WAL LOCATION\"}}]");
          }
          case "snapshot-backup-complete" -> {
            if (completes++ == 0) {
              ObjectNode r = reply.putObject("return");
              r.putArray("writers").addObject().put("writer", "postgres:host=db1").put("ok", true).put("ms", 3.1);
              r.putNull("previously");
            } else {
              reply.putObject("error").put("class", "GenericError")
                  .put("desc", "backup-complete of postgres:host=db1 failed: archive cleanup failed");
            }
          }
          default -> reply.putObject("error").put("class", "PermissionDenied").put("desc", "not open to remote clients");
        }
        if (id != null) {
          reply.set("id", id);
        }
        send(out, JSON.writeValueAsString(reply));
      }
    }

    private static void send(OutputStream out, String line) throws IOException {
      out.write((line + "\n").getBytes(StandardCharsets.UTF_8));
      out.flush();
    }

    @Override
    public void close() throws IOException {
      server.close();
    }
  }
}
