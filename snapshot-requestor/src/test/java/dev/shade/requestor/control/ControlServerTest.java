package dev.shade.requestor.control;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.testing.Tools;
import java.io.File;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The control socket against real clients on a real Unix socket: the QMP-style exchange, and
 * clients that send garbage, huge messages, nothing at all, too many connections, or are
 * another user; after each the server still answers a good client.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ControlServerTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;
  private ControlServer server;
  private final AtomicInteger calls = new AtomicInteger();
  /** The class path copied for user nobody, once per test. */
  private String nobodyClassPath;

  @BeforeEach
  void start() throws IOException {
    server = ControlServer.start(tmp.resolve("control.sock"), (command, args, session) -> {
      calls.incrementAndGet();
      switch (command) {
        case "echo":
          return args;
        case "progress":
          session.event("PROGRESS", Map.of("done", 1, "total", 2));
          return Map.of("ok", true);
        case "fail":
          throw new IOException("it failed\non two lines");
        case "bad":
          throw new IllegalArgumentException("bad argument: 7");
        default:
          throw new ControlException(ControlException.COMMAND_NOT_FOUND, "no such command: " + command);
      }
    }, Map.of("version", "test"), Duration.ofMillis(500), Duration.ofSeconds(30));
  }

  @AfterEach
  void stop() throws IOException {
    server.close();
  }

  @Test
  void exchange_greetingCapabilitiesCommandReply() throws IOException {
    try (ControlClient c = ControlClient.connect(server.socket(), Duration.ofSeconds(5), false)) {
      assertEquals("test", c.greeting().get("version").asText());
      JsonNode r = c.execute("echo", Map.of("a", 1, "b", "x"));
      assertEquals(1, r.get("a").asInt());
      assertEquals("x", r.get("b").asText());
      List<JsonNode> events = new ArrayList<>();
      assertTrue(c.execute("progress", null, events::add).get("ok").asBoolean());
      assertEquals(1, events.size(), "the command's own progress event arrives before its reply");
      assertEquals("PROGRESS", events.get(0).get("event").asText());
      assertTrue(events.get(0).get("timestamp").has("seconds"));
    }
  }

  @Test
  void errors_haveClassAndOneLineDescription() throws IOException {
    try (ControlClient c = ControlClient.connect(server.socket(), Duration.ofSeconds(5), false)) {
      ControlException e = assertThrows(ControlException.class, () -> c.execute("fail", null));
      assertEquals(ControlException.GENERIC, e.errorClass());
      assertEquals("it failed; on two lines", e.getMessage());
      e = assertThrows(ControlException.class, () -> c.execute("bad", null));
      assertEquals(ControlException.INVALID_ARGUMENT, e.errorClass());
      e = assertThrows(ControlException.class, () -> c.execute("nope", null));
      assertEquals(ControlException.COMMAND_NOT_FOUND, e.errorClass());
      assertEquals(3, c.execute("echo", Map.of("n", 3)).get("n").asInt(), "the connection stays usable");
    }
  }

  @Test
  void commandBeforeCapabilities_isRefused() throws IOException {
    try (Raw r = new Raw(server.socket())) {
      assertTrue(r.readJson().has("shade"));
      r.send("{\"execute\": \"echo\", \"id\": 1}\n");
      JsonNode reply = r.readJson();
      assertEquals(ControlException.NOT_NEGOTIATED, reply.get("error").get("class").asText(), reply::toString);
      assertEquals(1, reply.get("id").asInt());
      assertEquals(0, calls.get(), "the handler never ran");
    }
  }

  @Test
  void garbage_getsErrorsAndTheConnectionStays() throws IOException {
    try (Raw r = new Raw(server.socket())) {
      r.readJson();
      r.send("{\"execute\": \"capabilities\"}\n");
      assertTrue(r.readJson().has("return"));
      for (String bad : List.of("this is not json", "[1, 2, 3]", "{\"arguments\": {}}", "{\"execute\": 5}",
          "{\"execute\": \"echo\", \"arguments\": [1]}", "\u0000\u0001\u00ff{{{")) {
        r.send(bad + "\n");
        JsonNode reply = r.readJson();
        assertEquals(ControlException.INVALID_ARGUMENT, reply.path("error").path("class").asText(), bad + " -> " + reply);
      }
      r.send("{\"execute\": \"echo\", \"arguments\": {\"k\": 9}, \"id\": \"x\"}\n");
      JsonNode reply = r.readJson();
      assertEquals(9, reply.get("return").get("k").asInt(), reply::toString);
      assertEquals("x", reply.get("id").asText());
    }
  }

  @Test
  void hugeMessage_isRefusedAndClosedWhileOthersAreServed() throws IOException {
    try (Raw r = new Raw(server.socket())) {
      r.readJson();
      byte[] chunk = new byte[64 * 1024];
      java.util.Arrays.fill(chunk, (byte) 'a');
      JsonNode reply = null;
      try {
        for (int i = 0; i < 40; i++) { // 2.5 MiB without a newline
          r.ch.write(ByteBuffer.wrap(chunk));
        }
      } catch (IOException closedOnUs) {
        // the server may close while we are still sending
      }
      reply = r.readJson();
      assertEquals(ControlException.INVALID_ARGUMENT, reply.path("error").path("class").asText(), String.valueOf(reply));
      assertTrue(reply.path("error").path("desc").asText().contains("longer than"), reply::toString);
      assertNull(r.readLine(), "then the connection is closed");
    }
    assertGoodClientServed();
  }

  @Test
  void silentClient_isDisconnectedAfterTheHandshakeLimit() throws IOException {
    try (Raw r = new Raw(server.socket())) {
      r.readJson();
      long t0 = System.nanoTime();
      assertNull(r.readLine(), "disconnected without a word from it");
      long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
      assertTrue(ms >= 400 && ms < 10_000, "after about the 500 ms limit: " + ms);
    }
    assertGoodClientServed();
  }

  @Test
  void tooManyClients_areTurnedAway() throws IOException {
    server.close(); // one whose handshake limit does not free slots while the clients connect
    server = ControlServer.start(tmp.resolve("control.sock"), (c, a, s) -> Map.of("v", 42), Map.of(),
        Duration.ofSeconds(60), Duration.ofSeconds(60));
    List<Raw> held = new ArrayList<>();
    try {
      for (int i = 0; i < ControlServer.MAX_CLIENTS; i++) {
        Raw r = new Raw(server.socket());
        held.add(r);
        assertTrue(r.readJson().has("shade"));
      }
      try (Raw extra = new Raw(server.socket())) {
        JsonNode m = extra.readJson();
        assertEquals(ControlException.IN_USE, m.path("error").path("class").asText(), String.valueOf(m));
        assertNull(extra.readLine());
      }
    } finally {
      for (Raw r : held) {
        r.close();
      }
    }
    // the slots free up as the held clients go
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (server.clientCount() > 0 && System.nanoTime() < deadline) {
      Thread.onSpinWait();
    }
    assertGoodClientServed();
  }

  @Test
  void socket_isMode0600AndRemovedOnClose() throws IOException {
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(server.socket())));
    server.close();
    assertTrue(Files.notExists(server.socket()));
  }

  @Test
  void staleSocket_isReplacedButALiveOneIsNot() throws IOException {
    IOException e = assertThrows(IOException.class,
        () -> ControlServer.start(server.socket(), (c, a, s) -> null, Map.of(), Duration.ofSeconds(1), Duration.ofSeconds(1)));
    assertTrue(e.getMessage().contains("another server is listening on control socket"), e.getMessage());
    // a socket file nobody listens on, as a killed agent leaves it
    Path stale = tmp.resolve("stale.sock");
    try (var ch = java.nio.channels.ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
      ch.bind(UnixDomainSocketAddress.of(stale));
    }
    assertTrue(Files.exists(stale));
    try (ControlServer s2 = ControlServer.start(stale, (c, a, s) -> Map.of("second", true), Map.of(),
        Duration.ofSeconds(1), Duration.ofSeconds(1));
        ControlClient c = ControlClient.connect(stale, Duration.ofSeconds(5), false)) {
      assertTrue(c.execute("anything", null).get("second").asBoolean());
    }
  }

  @Test
  void events_goToClientsThatEnabledThem() throws IOException {
    try (ControlClient listening = ControlClient.connect(server.socket(), Duration.ofSeconds(5), true);
        ControlClient deaf = ControlClient.connect(server.socket(), Duration.ofSeconds(5), false)) {
      server.broadcast("SNAPSHOT_DELETED", Map.of("snapshot", "s1", "reason", "diff area full"));
      JsonNode e = listening.nextEvent();
      assertEquals("SNAPSHOT_DELETED", e.get("event").asText());
      assertEquals("s1", e.get("data").get("snapshot").asText());
      List<JsonNode> seen = new ArrayList<>();
      deaf.execute("echo", Map.of(), seen::add);
      assertTrue(seen.isEmpty(), "no events for a client that did not enable them: " + seen);
    }
  }

  /** Another user cannot reach the socket (mode 0600), nor talk to it even when the mode would let it (SO_PEERCRED). */
  @Test
  void otherUser_isRefused() throws Exception {
    Tools.requireRoot("to run a client as user nobody");
    String out = runAsNobody();
    assertTrue(out.contains("Permission denied") || out.contains("AccessDenied") || out.contains("EACCES"),
        "mode 0600 keeps user nobody out: " + out);
    Files.setPosixFilePermissions(server.socket(), PosixFilePermissions.fromString("rw-rw-rw-"));
    out = runAsNobody();
    assertTrue(out.contains("PermissionDenied"), "the agent refuses user nobody by its credentials: " + out);
    assertEquals(0, calls.get());
    assertGoodClientServed();
  }

  private String runAsNobody() throws Exception {
    String java = ProcessHandle.current().info().command().orElse("java");
    Path setpriv = Tools.require("setpriv", "util-linux");
    List<String> cmd = List.of(setpriv.toString(), "--reuid=65534", "--regid=65534", "--clear-groups", java,
        "-cp", readableClassPath(), PeerProbe.class.getName(), server.socket().toString());
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectInput(new File("/dev/null")).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(30, TimeUnit.SECONDS));
    return out;
  }

  /** This JVM's class path copied where user nobody can read it (the local Maven repository is root's). */
  private String readableClassPath() throws IOException {
    if (nobodyClassPath != null) {
      return nobodyClassPath;
    }
    Path cp = tmp.resolve("probe");
    List<String> out = new ArrayList<>();
    int n = 0;
    for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
      Path src = Path.of(entry);
      Path dst = cp.resolve(n++ + (Files.isDirectory(src) ? "" : ".jar"));
      if (Files.isDirectory(src)) {
        try (var walk = Files.walk(src)) {
          for (Path p : (Iterable<Path>) walk::iterator) {
            Path t = dst.resolve(src.relativize(p).toString());
            if (Files.isDirectory(p)) {
              Files.createDirectories(t);
            } else {
              Files.copy(p, t);
            }
          }
        }
      } else if (Files.isRegularFile(src)) {
        Files.copy(src, dst);
      } else {
        continue;
      }
      out.add(dst.toString());
    }
    try (var walk = Files.walk(tmp)) {
      for (Path p : (Iterable<Path>) walk::iterator) {
        if (!p.equals(server.socket())) {
          Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(Files.isDirectory(p) ? "rwxr-xr-x" : "rw-r--r--"));
        }
      }
    }
    nobodyClassPath = String.join(File.pathSeparator, out);
    return nobodyClassPath;
  }

  private void assertGoodClientServed() throws IOException {
    try (ControlClient c = ControlClient.connect(server.socket(), Duration.ofSeconds(5), false)) {
      assertEquals(42, c.execute("echo", Map.of("v", 42)).get("v").asInt());
    }
  }

  /** A client that speaks bytes, not the protocol. */
  static final class Raw implements AutoCloseable {
    final SocketChannel ch;
    private final MessageReader reader;

    Raw(Path socket) throws IOException {
      ch = SocketChannel.open(UnixDomainSocketAddress.of(socket));
      reader = new MessageReader(ch, 4 << 20);
    }

    void send(String s) throws IOException {
      ByteBuffer b = ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
      while (b.hasRemaining()) {
        ch.write(b);
      }
    }

    String readLine() throws IOException {
      try {
        return reader.next();
      } catch (IOException e) {
        return null; // reset by the server
      }
    }

    JsonNode readJson() throws IOException {
      String l = readLine();
      return l == null ? null : JSON.readTree(l);
    }

    @Override
    public void close() throws IOException {
      ch.close();
    }
  }
}
