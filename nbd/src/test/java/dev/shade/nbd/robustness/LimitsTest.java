package dev.shade.nbd.robustness;

import static dev.shade.nbd.protocol.Nbd.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.shade.nbd.client.NbdClient;
import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.nbd.server.NbdServer;
import dev.shade.nbd.testing.RawNbd.Reply;
import dev.shade.nbd.testing.RawNbd;
import dev.shade.nbd.testing.TestCatalog;
import dev.shade.testing.nbd.Uris;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The server's limits and concurrency: handshake and idle timeouts, the connection limit, many
 * clients with many requests in flight, and replies out of order matched by cookie.
 */
class LimitsTest {
  private static final long SIZE = 32L << 20;
  /** Bytes per 4 KiB block stamp: every block of the disk holds distinct data. */
  private static final int STAMP = 4096;

  private TestCatalog catalog;
  private NbdServer server;
  private ServerLog log;
  /** What the origin must hold. */
  private byte[] model;

  @BeforeEach
  void setUp() throws IOException {
    catalog = new TestCatalog("vol", SIZE);
    model = new byte[(int) SIZE];
    ByteBuffer b = ByteBuffer.wrap(model);
    for (int block = 0; block < SIZE / STAMP; block++) {
      for (int i = 0; i < STAMP / 8; i++) {
        b.putLong(((long) block << 32) | i);
      }
    }
    System.arraycopy(model, 0, catalog.disk(), 0, model.length);
    log = ServerLog.capture();
  }

  @AfterEach
  void tearDown() throws IOException {
    try {
      if (server != null) {
        server.close();
      }
    } finally {
      log.close();
    }
  }

  private InetSocketAddress start(NbdServer.Config config) throws IOException {
    server = NbdServer.start(catalog, config.listen(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)));
    return server.tcpAddress();
  }

  private void awaitConnections(int n) throws InterruptedException {
    long deadline = System.nanoTime() + RawNbd.TIMEOUT.toNanos();
    while (server.connectionCount() != n) {
      if (System.nanoTime() > deadline) {
        fail("the server counts " + server.connectionCount() + " connections, expected " + n);
      }
      Thread.sleep(5);
    }
  }

  /** A correct client on {@code vol}, with or without structured replies. */
  private static NbdClient client(InetSocketAddress a, boolean structured) throws IOException {
    return NbdClient.connect(NbdClientConfig.builder(Uris.tcp(a, "vol")).structuredReplies(structured).build());
  }

  private byte[] expected(long offset, int length) {
    return Arrays.copyOfRange(model, (int) offset, (int) offset + length);
  }

  // ------------------------------------------------------------------ timeouts

  @Test
  void handshakeTimeout_closesSilentClientsButNotAttachedOnes() throws Exception {
    InetSocketAddress a = start(new NbdServer.Config().handshakeTimeout(Duration.ofSeconds(1)).idleTimeout(Duration.ofMinutes(1)));
    long t0 = System.nanoTime();
    try (RawNbd silent = RawNbd.connect(a);
        RawNbd afterFlags = RawNbd.connect(a);
        RawNbd midOption = RawNbd.connect(a);
        NbdClient attached = client(a, true)) {
      silent.greeting(); // then nothing
      afterFlags.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
      afterFlags.structuredReplies(); // then nothing
      midOption.handshake(FLAG_C_FIXED_NEWSTYLE);
      midOption.sendRaw(Arrays.copyOf(RawNbd.option(IHAVEOPT, OPT_GO, 100, new byte[0]), 12)); // then nothing
      for (RawNbd c : List.of(silent, afterFlags, midOption)) {
        assertEquals(0, c.drainUntilClosed().length, c + ": bytes before the close");
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms >= 900, c + " closed after " + ms + " ms, before the 1 s handshake timeout");
        assertTrue(ms < 8000, c + " closed after " + ms + " ms, long after the 1 s handshake timeout");
      }
      Thread.sleep(Math.max(0, 2500 - (System.nanoTime() - t0) / 1_000_000));
      assertArrayEquals(expected(4096, 8192), attached.read(4096, 8192), "an attached client outlives the handshake timeout");
      awaitConnections(1);
      attached.close();
    }
    awaitConnections(0);
  }

  @Test
  void idleTimeout_closesIdleClientButNotBusyOne() throws Exception {
    InetSocketAddress a = start(new NbdServer.Config().idleTimeout(Duration.ofSeconds(1)));
    try (RawNbd idle = RawNbd.attach(a, "vol", false);
        NbdClient busy = client(a, true)) {
      long t0 = System.nanoTime();
      for (int i = 0; i < 10; i++) { // 3 s of a request every 300 ms
        assertArrayEquals(expected(i * 4096L, 4096), busy.read(i * 4096L, 4096), "busy client, read " + i);
        Thread.sleep(300);
      }
      assertEquals(0, idle.drainUntilClosed().length, "bytes to the idle client before the close");
      long ms = (System.nanoTime() - t0) / 1_000_000;
      assertTrue(ms < 8000, "idle client closed after " + ms + " ms with a 1 s idle timeout");
      assertArrayEquals(expected(0, 4096), busy.read(0, 4096), "the busy client is still served");
      busy.close();
    }
    awaitConnections(0);
  }

  // ------------------------------------------------------------------ connection limit

  @Test
  void maxConnections_refusesTheExtraOneAndServesTheOthers() throws Exception {
    InetSocketAddress a = start(new NbdServer.Config().maxConnections(3));
    List<NbdClient> clients = new ArrayList<>();
    RawNbd handshaking = null;
    try {
      clients.add(client(a, false));
      clients.add(client(a, true));
      handshaking = RawNbd.connect(a); // a client still negotiating counts too
      handshaking.greeting();
      awaitConnections(3);
      try (RawNbd extra = RawNbd.connect(a)) {
        assertEquals(0, extra.drainUntilClosed().length, "the fourth connection got a greeting over a limit of 3");
      }
      assertEquals(3, server.connectionCount(), "connections after the refusal");
      handshaking.clientFlags(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES); // continue where it stopped
      handshaking.go("vol");
      for (int i = 0; i < clients.size(); i++) {
        long offset = 1_000_000L * (i + 1);
        assertArrayEquals(expected(offset, 65536), clients.get(i).read(offset, 65536), "client " + i + " after the refusal");
      }
      assertArrayEquals(expected(3_000_000L, 65536), handshaking.read(3_000_000L, 65536), "client 2 after the refusal");
      clients.remove(0).close();
      awaitConnections(2);
      try (NbdClient late = client(a, false)) {
        assertArrayEquals(expected(12345, 777), late.read(12345, 777), "a client admitted once a place was free");
      }
      handshaking.disconnect();
    } finally {
      clients.forEach(NbdClient::close);
      if (handshaking != null) {
        handshaking.close();
      }
    }
    awaitConnections(0);
  }

  // ------------------------------------------------------------------ concurrency

  @Test
  void manyClients_requestsInFlight_allAnsweredCorrectly() throws Exception {
    InetSocketAddress a = start(new NbdServer.Config());
    int clients = 8;
    int region = 1 << 20;
    ExecutorService pool = Executors.newFixedThreadPool(clients);
    try {
      List<Future<Integer>> done = new ArrayList<>();
      for (int i = 0; i < clients; i++) {
        int id = i;
        done.add(pool.submit(() -> client(a, id, (long) id * 3 * region, region, 200)));
      }
      int writes = 0;
      for (Future<Integer> f : done) {
        writes += f.get(2, TimeUnit.MINUTES);
      }
      assertTrue(writes > 0, "no writes were made");
    } finally {
      pool.shutdownNow();
    }
    awaitConnections(0);
    byte[] all = catalog.disk();
    for (int off = 0; off < SIZE; off += 1 << 20) {
      assertArrayEquals(expected(off, 1 << 20), Arrays.copyOfRange(all, off, off + (1 << 20)), "disk contents at " + off);
    }
    assertEquals(List.of(), log.errors(), "errors logged by the server");
  }

  /** An operation in flight. */
  private record Op(int command, long offset, int length, byte[] expected) {}

  /**
   * One client: {@code count} random reads, writes and zeroings inside its own region, up to 16
   * in flight, never two overlapping ones in flight at once (so every answer is determined).
   * Returns the number of writes.
   */
  private int client(InetSocketAddress a, int id, long base, int region, int count) throws IOException {
    Random r = new Random(1000 + id);
    int writes = 0;
    try (RawNbd c = RawNbd.attach(a, "vol", id % 2 == 0)) {
      Map<Long, Op> inflight = new HashMap<>();
      int sent = 0;
      while (sent < count || !inflight.isEmpty()) {
        Op op = null;
        if (sent < count && inflight.size() < 16) {
          int len = 1 + r.nextInt(r.nextBoolean() ? 4096 : 64 << 10);
          long off = base + r.nextInt(region - len + 1);
          int kind = r.nextInt(10);
          int cmd = kind < 5 ? CMD_READ : kind < 9 ? CMD_WRITE : CMD_WRITE_ZEROES;
          op = new Op(cmd, off, len, null);
          for (Op o : inflight.values()) {
            if (off < o.offset() + o.length() && o.offset() < off + len) {
              op = null; // overlaps a request in flight: collect a reply first
              break;
            }
          }
        }
        if (op == null) {
          Reply rep = c.next();
          Op o = inflight.remove(rep.cookie());
          assertTrue(o != null, "client " + id + ": reply to a cookie not in flight: " + rep);
          assertEquals(0, rep.error(), "client " + id + ": " + rep);
          if (o.command() == CMD_READ) {
            assertArrayEquals(o.expected(), rep.data(), "client " + id + ": READ at " + o.offset() + "+" + o.length());
          }
          continue;
        }
        long cookie = r.nextLong();
        byte[] payload = null;
        byte[] expect = null;
        if (op.command() == CMD_READ) {
          expect = expected(op.offset(), op.length());
        } else {
          payload = new byte[op.length()];
          if (op.command() == CMD_WRITE) {
            r.nextBytes(payload);
          }
          System.arraycopy(payload, 0, model, (int) op.offset(), op.length()); // this client's region only
          writes++;
        }
        inflight.put(cookie, new Op(op.command(), op.offset(), op.length(), expect));
        c.request(r.nextInt(4) == 0 ? CMD_FLAG_FUA : 0, op.command(), cookie, op.offset(), op.length(),
            op.command() == CMD_WRITE ? payload : null);
        sent++;
      }
      c.disconnect();
    }
    return writes;
  }

  @ParameterizedTest(name = "structured={0}")
  @ValueSource(booleans = {false, true})
  void outOfOrderReplies_matchedByCookie(boolean structured) throws Exception {
    InetSocketAddress a = start(new NbdServer.Config());
    long[] odd = {0, -1, Long.MIN_VALUE, Long.MAX_VALUE, 0x8000_0000L, 0xffff_ffffL};
    boolean reordered = false;
    try (RawNbd c = RawNbd.attach(a, "vol", structured)) {
      Random r = new Random(structured ? 2 : 1);
      for (int round = 0; round < 20 && !reordered; round++) {
        List<Long> order = new ArrayList<>();
        Map<Long, long[]> ranges = new HashMap<>();
        long big = odd[round % odd.length];
        order.add(big);
        ranges.put(big, new long[] {0, 16 << 20}); // one slow reply first...
        c.request(0, CMD_READ, big, 0, 16 << 20, null);
        for (int i = 0; i < 48; i++) { // ...then many quick ones
          long cookie = r.nextLong();
          while (ranges.containsKey(cookie)) {
            cookie = r.nextLong();
          }
          long off = (long) r.nextInt((int) (SIZE / STAMP)) * STAMP + r.nextInt(100);
          ranges.put(cookie, new long[] {off, 100 + r.nextInt(3000)});
          order.add(cookie);
          c.request(0, CMD_READ, cookie, off, ranges.get(cookie)[1], null);
        }
        List<Long> arrived = new ArrayList<>();
        for (int i = 0; i < order.size(); i++) {
          Reply rep = c.next();
          long[] range = ranges.get(rep.cookie());
          assertTrue(range != null, "reply with a cookie never sent: " + rep);
          assertEquals(0, rep.error(), rep.toString());
          assertArrayEquals(expected(range[0], (int) range[1]), rep.data(), "data for cookie " + Long.toHexString(rep.cookie()));
          arrived.add(rep.cookie());
        }
        assertEquals(order.size(), arrived.stream().distinct().count(), "one reply per cookie");
        reordered = !arrived.equals(order);
      }
      c.disconnect();
    }
    assertTrue(reordered, "20 rounds of a 16 MiB read followed by 48 small ones were all answered in order:"
        + " the server does not execute requests concurrently");
    awaitConnections(0);
  }

  @ParameterizedTest(name = "structured={0}")
  @ValueSource(booleans = {false, true})
  void disconnect_withRequestsInFlight_answersThemAllFirst(boolean structured) throws Exception {
    InetSocketAddress a = start(new NbdServer.Config());
    Random r = new Random(3);
    Map<Long, long[]> reads = new HashMap<>();
    byte[] written = new byte[256 << 10];
    r.nextBytes(written);
    long writeAt = 20L << 20;
    try (RawNbd c = RawNbd.attach(a, "vol", structured)) {
      c.request(CMD_FLAG_FUA, CMD_WRITE, 999, writeAt, written.length, written);
      for (int i = 0; i < 40; i++) { // disjoint from the write
        long off = r.nextInt(16 << 20);
        int len = 1 + r.nextInt(512 << 10);
        reads.put((long) i, new long[] {off, len});
        c.request(0, CMD_READ, i, off, len, null);
      }
      c.request(0, CMD_DISC, 12345, 0, 0, null); // the protocol: the server MUST handle all outstanding requests first
      for (int i = 0; i < 41; i++) {
        Reply rep = c.next();
        assertEquals(0, rep.error(), rep.toString());
        long[] range = reads.get(rep.cookie());
        if (range != null) {
          assertArrayEquals(expected(range[0], (int) range[1]), rep.data(), "read " + rep.cookie() + " answered after DISC");
        }
      }
      assertEquals(0, c.drainUntilClosed().length, "bytes after the last reply");
    }
    byte[] stored = new byte[written.length];
    System.arraycopy(catalog.disk(), (int) writeAt, stored, 0, stored.length);
    assertArrayEquals(written, stored, "the write sent before DISC");
    awaitConnections(0);
  }

  @Test
  void stalledReader_doesNotStallOtherClients() throws Exception {
    InetSocketAddress a = start(new NbdServer.Config());
    try (RawNbd stalled = RawNbd.attach(a, "vol", false)) {
      for (int i = 0; i < 64; i++) { // 64 MiB of replies it never reads
        stalled.request(0, CMD_READ, i, 0, 1 << 20, null);
      }
      Thread.sleep(500);
      NbdClientConfig config = NbdClientConfig.builder(Uris.tcp(a, "vol")).replyTimeout(Duration.ofSeconds(5)).build();
      try (NbdClient other = NbdClient.connect(config)) {
        assertArrayEquals(expected(8192, 4096), other.read(8192, 4096), "another client while one does not read its replies");
      }
      stalled.abort();
    }
    awaitConnections(0);
  }

  @Test
  void stalledReader_isClosedAfterTheReplyTimeout() throws Exception {
    InetSocketAddress a = start(new NbdServer.Config().replyTimeout(Duration.ofSeconds(1)));
    try (RawNbd stalled = RawNbd.attach(a, "vol", false)) {
      for (int i = 0; i < 64; i++) { // far more than the socket buffers hold
        stalled.request(0, CMD_READ, i, 0, 1 << 20, null);
      }
      awaitConnections(0); // closed by the server, not by this client
      stalled.abort();
    }
  }
}
