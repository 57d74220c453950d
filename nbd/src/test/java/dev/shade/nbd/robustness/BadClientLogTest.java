package dev.shade.nbd.robustness;

import static dev.shade.nbd.protocol.Nbd.FLAG_C_FIXED_NEWSTYLE;
import static dev.shade.nbd.protocol.Nbd.FLAG_C_NO_ZEROES;
import static dev.shade.nbd.protocol.Nbd.IHAVEOPT;
import static dev.shade.nbd.protocol.Nbd.OPT_EXPORT_NAME;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.shade.nbd.server.NbdServer;
import dev.shade.nbd.testing.TestCatalog;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A flood of bad connections leaves a readable log: the first fault of each kind from each peer
 * in full, the repeats counted in one line per kind and interval, with counts that add up.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class BadClientLogTest {
  /** Connections per kind of fault and peer. */
  private static final int PER = 340;
  /** The peers the flood comes from: two loopback addresses. */
  private static final String[] PEERS = {"127.0.0.1", "127.0.0.2"};
  private static final Pattern SUMMARY = Pattern.compile("(\\d+) more connections? closed for (.+) from (\\d+) peers? in the last (\\d+) s");

  /** A kind of bad client: what it sends after the greeting, and the kind the server names. */
  private enum Fault {
    UNKNOWN_FLAGS("unknown client flags", ByteBuffer.allocate(4).putInt(0x8000_0000).array()),
    BAD_OPTION_MAGIC("bad option magic", ByteBuffer.allocate(20).putInt(FLAG_C_FIXED_NEWSTYLE).putLong(0x1234_5678_9abc_def0L)
        .putInt(7).putInt(0).array()),
    UNKNOWN_EXPORT("EXPORT_NAME of an unknown export", ByteBuffer.allocate(24).putInt(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)
        .putLong(IHAVEOPT).putInt(OPT_EXPORT_NAME).putInt(4).put("nope".getBytes(StandardCharsets.US_ASCII)).array());

    final String kind;
    final byte[] bytes;

    Fault(String kind, byte[] bytes) {
      this.kind = kind;
      this.bytes = bytes;
    }
  }

  @Test
  void floodOfBadConnections_logsFirstOfEachKindAndCounts() throws Exception {
    Duration interval = Duration.ofMillis(300); // the flood spans several intervals
    int sent = 0;
    List<String> lines;
    long t0 = System.nanoTime();
    try (ServerLog log = ServerLog.capture()) {
      NbdServer server = NbdServer.start(new TestCatalog("vol", 1 << 20), new NbdServer.Config()
          .listen(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)).faultSummaryInterval(interval));
      try {
        for (int i = 0; i < PER; i++) {
          for (Fault f : Fault.values()) {
            for (String peer : PEERS) {
              bad(server.tcpAddress(), peer, f);
              sent++;
            }
          }
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (server.connectionCount() != 0) {
          assertTrue(System.nanoTime() < deadline, "connections left: " + server.connectionCount());
          Thread.sleep(5);
        }
      } finally {
        server.close(); // reports what is still counted
      }
      lines = log.lines();
    }
    long millis = (System.nanoTime() - t0) / 1_000_000L;
    Map<String, Long> logged = new HashMap<>();
    Map<String, Long> counted = new HashMap<>();
    List<String> faultLines = new ArrayList<>();
    int periodic = 0; // summaries of intervals that ended while the server ran (the stop reports the last one)
    for (String line : lines) {
      Matcher m = SUMMARY.matcher(line);
      if (m.find()) {
        faultLines.add(line);
        counted.merge(m.group(2), Long.parseLong(m.group(1)), Long::sum);
        assertTrue(Integer.parseInt(m.group(3)) <= PEERS.length, "peers in " + line);
        periodic += line.startsWith("[main]") ? 0 : 1;
        continue;
      }
      for (Fault f : Fault.values()) {
        if (line.contains(": " + f.kind) && line.contains("closing it") || line.contains(f.kind + " '")) {
          faultLines.add(line);
          logged.merge(f.kind, 1L, Long::sum);
        }
      }
    }
    assertEquals(3 * PER * PEERS.length, sent, "connections sent");
    System.out.println(sent + " bad connections in " + millis + " ms logged " + faultLines.size() + " lines:\n  "
        + String.join("\n  ", faultLines));
    long windows = millis / interval.toMillis() + 2;
    for (Fault f : Fault.values()) {
      long full = logged.getOrDefault(f.kind, 0L);
      assertTrue(full >= PEERS.length, f.kind + ": the first of each peer is logged in full; got " + full + " in:\n" + String.join("\n", faultLines));
      assertTrue(full <= PEERS.length * windows, f.kind + ": " + full + " full lines in " + millis + " ms");
      assertEquals((long) PER * PEERS.length, full + counted.getOrDefault(f.kind, 0L),
          f.kind + ": lines in full plus the summaries' counts:\n" + String.join("\n", faultLines));
    }
    assertTrue(faultLines.size() <= 3 * (PEERS.length + 1) * windows,
        faultLines.size() + " lines for " + sent + " bad connections in " + millis + " ms:\n" + String.join("\n", faultLines));
    if (millis > 3 * interval.toMillis()) {
      assertTrue(periodic > 0, "no summary was logged while the flood went on:\n" + String.join("\n", faultLines));
    }
  }

  /** One bad connection from {@code peer}: greeting, garbage, then the server closes. */
  private static void bad(InetSocketAddress server, String peer, Fault f) throws IOException {
    try (Socket s = new Socket()) {
      s.bind(new InetSocketAddress(peer, 0));
      s.connect(server, 5000);
      s.setSoTimeout(5000);
      DataInputStream in = new DataInputStream(s.getInputStream());
      in.readFully(new byte[18]); // greeting
      OutputStream out = s.getOutputStream();
      out.write(f.bytes);
      out.flush();
      try {
        while (in.read() >= 0) {
          // the server sends nothing more before it closes
        }
      } catch (EOFException e) {
        // closed
      } catch (java.net.SocketException e) {
        // reset: closed too
      } catch (java.net.SocketTimeoutException e) {
        fail("the server did not close a connection with " + f.kind + " from " + peer);
      }
    }
  }
}
