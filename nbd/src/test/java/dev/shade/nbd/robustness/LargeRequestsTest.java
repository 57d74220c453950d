package dev.shade.nbd.robustness;

import static dev.shade.nbd.protocol.Nbd.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.nbd.server.NbdServer;
import dev.shade.nbd.testing.RawNbd.Reply;
import dev.shade.nbd.testing.RawNbd;
import dev.shade.nbd.testing.TestCatalog;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * READ and WRITE over 32 MiB: served in pieces to clients that never agreed block sizes
 * (EXPORT_NAME, or GO without NBD_INFO_BLOCK_SIZE), to whom the protocol owes an effectively
 * unlimited maximum; refused as before for clients that were told 32 MiB.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class LargeRequestsTest {
  private static final long MIB = 1 << 20;
  private static final long SIZE = 96 * MIB;
  /** 42 MiB and a few bytes: more than the 32 MiB limit, not a multiple of the 4 MiB piece. */
  private static final int BIG = (int) (42 * MIB + 12345);
  /** Unaligned, so pieces straddle blocks and the pool's size classes. */
  private static final long AT = 3 * MIB + 777;

  private TestCatalog catalog;
  private NbdServer server;
  private InetSocketAddress address;
  private ServerLog log;

  /** How the client attaches. */
  enum Attach {
    /** NBD_OPT_EXPORT_NAME, simple replies: no block sizes can be agreed. */
    EXPORT_NAME,
    /** NBD_OPT_GO without NBD_INFO_BLOCK_SIZE, simple replies. */
    GO_SIMPLE,
    /** NBD_OPT_GO without NBD_INFO_BLOCK_SIZE, structured replies: data in several chunks. */
    GO_STRUCTURED
  }

  @BeforeEach
  void setUp() throws IOException {
    catalog = new TestCatalog("vol", SIZE);
    new Random(1).nextBytes(catalog.disk());
    catalog.snapshot("s1");
    log = ServerLog.capture();
    server = NbdServer.start(catalog, new NbdServer.Config().listen(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)));
    address = server.tcpAddress();
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

  private RawNbd attach(Attach how, String export) throws IOException {
    RawNbd c = RawNbd.connect(address);
    c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
    switch (how) {
      case EXPORT_NAME:
        c.exportName(export, true);
        break;
      case GO_STRUCTURED:
        c.structuredReplies();
        RawNbd.attached("GO " + export, c.negotiate(OPT_GO, RawNbd.infoRequest(export)));
        break;
      default:
        RawNbd.attached("GO " + export, c.negotiate(OPT_GO, RawNbd.infoRequest(export)));
    }
    return c;
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(Attach.class)
  void unagreedClient_42MiBWriteAndRead_byteForByte(Attach how) throws Exception {
    byte[] data = new byte[BIG];
    new Random(2).nextBytes(data);
    byte[] before = catalog.disk().clone();
    try (RawNbd c = attach(how, "vol")) {
      long w = c.newCookie();
      c.request(CMD_FLAG_FUA, CMD_WRITE, w, AT, data.length, data);
      assertEquals(0, c.await(w).error(), how + ": 42 MiB WRITE");
      byte[] expected = before.clone();
      System.arraycopy(data, 0, expected, (int) AT, data.length);
      assertEquals(-1, Arrays.mismatch(expected, catalog.disk()), how + ": first offset where the disk differs after the WRITE");

      byte[] back = c.read(AT, BIG);
      assertEquals(-1, Arrays.mismatch(data, back), how + ": first offset where the 42 MiB READ differs from what was written");
      byte[] whole = c.read(0, (int) SIZE); // the whole export, 96 MiB in one request
      assertEquals(-1, Arrays.mismatch(expected, whole), how + ": first offset where a READ of the whole export differs");
      // small requests still go on, pipelined behind a large one
      long big = c.newCookie();
      c.request(0, CMD_READ, big, 0, BIG, null);
      long small = c.newCookie();
      c.request(0, CMD_READ, small, SIZE - 4096, 4096, null);
      Reply rs = c.await(small);
      Reply rb = c.await(big);
      assertArrayEquals(Arrays.copyOfRange(expected, (int) SIZE - 4096, (int) SIZE), rs.data(), how + ": small READ behind a large one");
      assertEquals(-1, Arrays.mismatch(Arrays.copyOf(expected, BIG), rb.data()), how + ": pipelined 42 MiB READ");
      c.disconnect();
    }
    assertEquals(List.of(), log.errors(), "errors logged by the server");
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(Attach.class)
  void unagreedClient_refusedLargeRequests_keepTheStreamInStep(Attach how) throws Exception {
    byte[] data = new byte[BIG];
    new Random(3).nextBytes(data);
    try (RawNbd ro = attach(how, "vol@s1")) {
      long w = ro.newCookie();
      ro.request(0, CMD_WRITE, w, 0, data.length, data); // read-only: the payload is consumed, then EPERM
      assertEquals(EPERM, ro.await(w).error(), how + ": 42 MiB WRITE to a read-only export");
      long past = ro.newCookie();
      ro.request(0, CMD_READ, past, SIZE - MIB, BIG, null);
      assertEquals(EINVAL, ro.await(past).error(), how + ": 42 MiB READ past the end");
      assertArrayEquals(Arrays.copyOfRange(catalog.copy("s1"), 0, 4096), ro.read(0, 4096), how + ": the connection goes on");
      ro.disconnect();
    }
    try (RawNbd rw = attach(how, "vol")) {
      long w = rw.newCookie();
      rw.request(0, CMD_WRITE, w, SIZE - MIB, data.length, data); // past the end: consumed, then ENOSPC
      assertEquals(ENOSPC, rw.await(w).error(), how + ": 42 MiB WRITE past the end");
      assertArrayEquals(Arrays.copyOfRange(catalog.copy("s1"), 0, 4096), rw.read(0, 4096), how + ": nothing was written");
      rw.disconnect();
    }
    assertEquals(List.of(), log.errors(), "errors logged by the server");
  }

  @Test
  void structuredDfRead_42MiB_oneChunk() throws Exception {
    try (RawNbd c = attach(Attach.GO_STRUCTURED, "vol")) {
      long r = c.newCookie();
      c.request(CMD_FLAG_DF, CMD_READ, r, AT, BIG, null);
      Reply rep = c.await(r);
      assertEquals(0, rep.error(), rep.toString());
      assertArrayEquals(Arrays.copyOfRange(catalog.disk(), (int) AT, (int) AT + BIG), rep.data(), "42 MiB READ with DF");
      c.disconnect();
    }
  }

  @ParameterizedTest(name = "structured={0}")
  @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
  void agreedClient_largeReadEinval_largeWriteCloses(boolean structured) throws Exception {
    try (RawNbd c = RawNbd.attach(address, "vol", structured)) { // GO with NBD_INFO_BLOCK_SIZE
      long r = c.newCookie();
      c.request(0, CMD_READ, r, 0, BIG, null);
      assertEquals(EINVAL, c.await(r).error(), "42 MiB READ from a client told the 32 MiB maximum");
      assertArrayEquals(Arrays.copyOf(catalog.disk(), 4096), c.read(0, 4096), "the connection goes on");
      c.sendRaw(RawNbd.header(REQUEST_MAGIC, 0, CMD_WRITE, c.newCookie(), 0, BIG));
      c.sendRaw(new byte[64 << 10]);
      c.halfClose();
      assertEquals(0, c.drainUntilClosed().length, "a WRITE over the agreed maximum closes the connection without a reply");
    }
    assertTrue(Arrays.equals(catalog.disk(), catalog.copy("s1")), "nothing was written");
  }
}
