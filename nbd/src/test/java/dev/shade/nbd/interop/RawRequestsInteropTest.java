package dev.shade.nbd.interop;

import static dev.shade.nbd.interop.Served.read;
import static dev.shade.nbd.interop.Served.write;
import static dev.shade.nbd.protocol.Nbd.CMD_BLOCK_STATUS;
import static dev.shade.nbd.protocol.Nbd.CMD_FLAG_DF;
import static dev.shade.nbd.protocol.Nbd.CMD_FLAG_FUA;
import static dev.shade.nbd.protocol.Nbd.CMD_FLAG_NO_HOLE;
import static dev.shade.nbd.protocol.Nbd.CMD_FLAG_REQ_ONE;
import static dev.shade.nbd.protocol.Nbd.CMD_FLUSH;
import static dev.shade.nbd.protocol.Nbd.CMD_READ;
import static dev.shade.nbd.protocol.Nbd.CMD_TRIM;
import static dev.shade.nbd.protocol.Nbd.CMD_WRITE;
import static dev.shade.nbd.protocol.Nbd.CMD_WRITE_ZEROES;
import static dev.shade.nbd.protocol.Nbd.EINVAL;
import static dev.shade.nbd.protocol.Nbd.EIO;
import static dev.shade.nbd.protocol.Nbd.ENOSPC;
import static dev.shade.nbd.protocol.Nbd.EPERM;
import static dev.shade.nbd.protocol.Nbd.FLAG_CAN_MULTI_CONN;
import static dev.shade.nbd.protocol.Nbd.FLAG_HAS_FLAGS;
import static dev.shade.nbd.protocol.Nbd.FLAG_READ_ONLY;
import static dev.shade.nbd.protocol.Nbd.FLAG_SEND_DF;
import static dev.shade.nbd.protocol.Nbd.FLAG_SEND_FLUSH;
import static dev.shade.nbd.protocol.Nbd.FLAG_SEND_FUA;
import static dev.shade.nbd.protocol.Nbd.FLAG_SEND_TRIM;
import static dev.shade.nbd.protocol.Nbd.FLAG_SEND_WRITE_ZEROES;
import static dev.shade.nbd.protocol.Nbd.REP_ERR_UNKNOWN;
import static dev.shade.testing.Bytes.filled;
import static dev.shade.testing.Bytes.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.nbd.client.Extent;
import dev.shade.nbd.client.NbdClient;
import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.nbd.client.NbdErrorException;
import dev.shade.nbd.client.NbdHandshakeException;
import dev.shade.nbd.testing.RawNbd.Reply;
import dev.shade.nbd.testing.RawNbd;
import dev.shade.nbd.testing.TestCatalog;
import dev.shade.testing.nbd.Exec;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Requests real clients refuse to send, sent with {@link RawNbd}: writes to a read-only export
 * get EPERM, ranges past the end EINVAL, and neither disturbs that client or the others; and,
 * with {@link NbdClient}, handshake flags and BLOCK_STATUS details the tools do not show. Against a
 * {@link TestCatalog}: a disk {@code vol} and a frozen copy {@code vol@s1}.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class RawRequestsInteropTest {
  private static final long MIB = 1 << 20;
  private static final long SIZE = 16 * MIB;
  private static final int LEN = 4096;

  private TestCatalog catalog;
  /** The disk's live bytes. */
  private byte[] volume;
  private Served served;
  /** What the volume held at s1 in its first 4 KiB. */
  private byte[] head;
  /** What the volume held at s1 in its last 4 KiB. */
  private byte[] tail;

  @BeforeEach
  void serve() throws Exception {
    catalog = new TestCatalog("vol", SIZE);
    volume = catalog.disk();
    head = random(1, LEN);
    tail = random(2, LEN);
    write(volume, 0, head);
    write(volume, SIZE - LEN, tail);
    catalog.snapshot("s1");
    served = Served.start(catalog);
  }

  @AfterEach
  void close() throws Exception {
    if (served != null) {
      served.close();
    }
  }

  @ParameterizedTest(name = "structured replies: {0}")
  @ValueSource(booleans = {false, true})
  void write_snapshotExport_refusedWithEperm(boolean structured) throws Exception {
    try (RawNbd c = RawNbd.attach(served.address(), "vol@s1", structured)) {
      assertEquals(SIZE, c.attached().size(), "size of vol@s1");
      assertNotEquals(0, c.attached().flags() & FLAG_READ_ONLY, "vol@s1 is announced read-only");

      assertEquals(EPERM, c.call(0, CMD_WRITE, 0, LEN, filled(0xee, LEN)).error(), "WRITE to vol@s1");
      assertEquals(EPERM, c.call(0, CMD_WRITE_ZEROES, 0, LEN, null).error(), "WRITE_ZEROES to vol@s1");
      assertEquals(EPERM, c.call(0, CMD_TRIM, 0, LEN, null).error(), "TRIM of vol@s1");

      Reply r = c.call(0, CMD_READ, 0, LEN, null); // the same connection goes on
      assertEquals(0, r.error(), "READ of vol@s1 after the refused writes");
      assertArrayEquals(head, r.data(), "vol@s1 after the refused writes, read over NBD");
      c.disconnect();
    }
    assertArrayEquals(head, read(catalog.copy("s1"), 0, LEN), "s1 after the refused writes, read directly");
    assertArrayEquals(head, read(volume, 0, LEN), "the origin after the refused writes");
  }

  @ParameterizedTest(name = "structured replies: {0}")
  @ValueSource(booleans = {false, true})
  void read_pastEnd_refusedWithEinval(boolean structured) throws Exception {
    for (String export : new String[] {"vol", "vol@s1"}) {
      try (RawNbd c = RawNbd.attach(served.address(), export, structured)) {
        long[][] outside = {{SIZE - LEN, 2 * LEN}, {SIZE, 1}, {SIZE + MIB, LEN}, {Long.MIN_VALUE, LEN}, {-LEN, LEN}};
        for (long[] o : outside) {
          Reply r = c.call(0, CMD_READ, o[0], (int) o[1], null);
          String what = "READ of " + export + " at " + Long.toUnsignedString(o[0]) + " length " + o[1];
          assertEquals(EINVAL, r.error(), what);
          assertEquals(!structured, r.simple(), what + ": a structured reply exactly when negotiated");
          if (structured) {
            assertFalse(r.message().isEmpty(), what + ": the error chunk explains");
          }
        }
        Reply r = c.call(0, CMD_READ, SIZE - LEN, LEN, null); // the same connection goes on
        assertEquals(0, r.error(), "READ of the last 4 KiB of " + export);
        assertArrayEquals(tail, r.data(), "last 4 KiB of " + export);
        c.disconnect();
      }
    }
    try (RawNbd c = RawNbd.attach(served.address(), "vol", structured)) {
      // doc/proto.md: a server SHOULD answer ENOSPC to writes past the end, EINVAL to reads and trims
      assertEquals(ENOSPC, c.call(0, CMD_WRITE, SIZE - 1, 2, filled(0xee, 2)).error(), "WRITE across the end of vol");
      assertEquals(ENOSPC, c.call(0, CMD_WRITE_ZEROES, SIZE, 1, null).error(), "WRITE_ZEROES past the end of vol");
      assertEquals(EINVAL, c.call(0, CMD_TRIM, SIZE - LEN, 2 * LEN, null).error(), "TRIM across the end of vol");
      c.disconnect();
    }
    assertArrayEquals(tail, read(volume, SIZE - LEN, LEN), "the last 4 KiB of the origin after the refused requests");
  }

  @ParameterizedTest(name = "structured replies: {0}")
  @ValueSource(booleans = {false, true})
  void go_transmissionFlags_matchTheExport(boolean structured) throws Exception {
    int always = FLAG_HAS_FLAGS | FLAG_SEND_FLUSH | FLAG_CAN_MULTI_CONN;
    int df = structured ? FLAG_SEND_DF : 0; // the protocol: clear unless structured replies were negotiated
    try (NbdClient c = client("vol", structured)) {
      assertEquals(always | df | FLAG_SEND_FUA | FLAG_SEND_TRIM | FLAG_SEND_WRITE_ZEROES, c.info().flags(),
          "transmission flags of vol: 0x" + Integer.toHexString(c.info().flags()));
    }
    try (NbdClient c = client("vol@s1", structured)) {
      assertEquals(always | df | FLAG_READ_ONLY, c.info().flags(),
          "transmission flags of vol@s1: 0x" + Integer.toHexString(c.info().flags()));
    }
  }

  @Test
  void read_snapshotDeletedWhileAttached_failsWithEio() throws Exception {
    try (NbdClient c = client("vol@s1", true)) {
      assertArrayEquals(head, c.read(0, LEN), "vol@s1 before the delete");
      catalog.delete("s1");
      catalog.snapshot("s2");
      NbdErrorException r = assertThrows(NbdErrorException.class, () -> c.read(0, LEN), "READ of vol@s1 after s1 was dropped");
      assertEquals(EIO, r.errno(), "READ of vol@s1 after s1 was dropped: " + r.serverMessage());
      assertEquals(EIO, assertThrows(NbdErrorException.class, () -> c.read(SIZE - LEN, LEN)).errno(), "a second READ of the dropped vol@s1");
    }
    NbdHandshakeException e = assertThrows(NbdHandshakeException.class, () -> client("vol@s1", false), "attaching to the dropped vol@s1");
    assertEquals(REP_ERR_UNKNOWN, e.reply(), e.getMessage());
  }

  @Test
  void blockStatus_withoutMetaContext_refusedWithEinval() throws Exception {
    try (RawNbd c = RawNbd.attach(served.address(), "vol", true)) { // NbdClient sends none without a context
      assertEquals(EINVAL, c.call(0, CMD_BLOCK_STATUS, 0, LEN, null).error(), "BLOCK_STATUS with no meta context selected");
      assertArrayEquals(head, c.read(0, LEN), "READ after the refused BLOCK_STATUS");
      c.disconnect();
    }
  }

  @Test
  void blockStatus_reqOne_oneExtentPerContext() throws Exception {
    long at = MIB;
    int block = TestCatalog.BLOCK;
    write(volume, at, random(3, block)); // data in a hole, and a block changed since s1
    List<String> wanted = List.of("base:allocation", "shade:changed:s1");
    NbdClientConfig config = NbdClientConfig.builder(served.uri("vol")).metaContexts(wanted.toArray(new String[0])).build();
    try (NbdClient c = NbdClient.connect(config)) {
      assertEquals(Set.copyOf(wanted), Set.copyOf(c.metaContexts()), "meta contexts the server selected");
      Map<String, List<Long>> one = statusByContext(c, c.blockStatus(at, 4 * MIB, true));
      assertEquals(List.of((long) block, 0L), one.get("base:allocation"), "REQ_ONE base:allocation at " + at);
      assertEquals(List.of((long) block, 1L), one.get("shade:changed:s1"), "REQ_ONE shade:changed:s1 at " + at);

      Map<String, List<Long>> after = statusByContext(c, c.blockStatus(at + block, LEN, true));
      assertEquals(List.of((long) LEN, 3L), after.get("base:allocation"), "REQ_ONE base:allocation in a hole, capped at the request");
      assertEquals(List.of((long) LEN, 0L), after.get("shade:changed:s1"), "REQ_ONE shade:changed:s1, unchanged, capped at the request");

      Map<String, List<Long>> all = statusByContext(c, c.blockStatus(at - block, 3L * block, false));
      assertEquals(List.of((long) block, 0L, (long) block, 1L, (long) block, 0L), all.get("shade:changed:s1"),
          "shade:changed:s1 around the changed block");
    }
  }

  /** The descriptors (length, flags, ...) of a BLOCK_STATUS reply by context name. */
  private static Map<String, List<Long>> statusByContext(NbdClient c, Map<String, List<Extent>> reply) {
    Map<String, List<Long>> out = new HashMap<>();
    for (Map.Entry<String, List<Extent>> e : reply.entrySet()) {
      List<Long> d = new ArrayList<>();
      for (Extent x : e.getValue()) {
        d.add(x.length());
        d.add((long) x.flags());
      }
      out.put(e.getKey(), d);
    }
    assertEquals(Set.copyOf(c.metaContexts()), out.keySet(), "a chunk for every selected context");
    return out;
  }

  /** Sends one request on {@code c} without waiting; returns its cookie. */
  private static long send(RawNbd c, int type, long offset, long length, byte[] payload) throws IOException {
    long cookie = c.newCookie();
    c.request(0, type, cookie, offset, length, payload);
    return cookie;
  }

  /** A correct client on {@code export}. */
  private NbdClient client(String export, boolean structured) throws IOException {
    return NbdClient.connect(NbdClientConfig.builder(served.uri(export)).structuredReplies(structured).build());
  }

  @Test
  void flagsOnCommandsTheyDoNotApplyTo_refusedWithEinval() throws Exception {
    try (RawNbd c = RawNbd.attach(served.address(), "vol", true)) {
      assertEquals(EINVAL, c.call(CMD_FLAG_REQ_ONE, CMD_READ, 0, LEN, null).error(), "REQ_ONE on READ");
      assertEquals(EINVAL, c.call(CMD_FLAG_DF, CMD_FLUSH, 0, 0, null).error(), "DF on FLUSH");
      assertEquals(EINVAL, c.call(CMD_FLAG_NO_HOLE, CMD_WRITE, 0, LEN, filled(1, LEN)).error(), "NO_HOLE on WRITE");
      assertEquals(0, c.call(CMD_FLAG_DF, CMD_READ, 0, LEN, null).error(), "DF on READ with structured replies");
      assertEquals(0, c.call(CMD_FLAG_FUA, CMD_WRITE, 0, LEN, filled(1, LEN)).error(), "FUA on WRITE");
      c.disconnect();
    }
    try (RawNbd c = RawNbd.attach(served.address(), "vol", false)) {
      assertEquals(EINVAL, c.call(CMD_FLAG_DF, CMD_READ, 0, LEN, null).error(), "DF on READ without structured replies");
      assertEquals(0, c.call(0, CMD_READ, 0, LEN, null).error(), "the same connection goes on");
      c.disconnect();
    }
  }

  @Test
  void refusedRequests_otherClientsKeepBeingServed() throws Exception {
    try (NbdClient writer = client("vol", true);
        RawNbd refused = RawNbd.attach(served.address(), "vol@s1", false)) {
      // pipeline refused writes and good reads on one connection, good writes on the other
      Map<Long, String> expected = new HashMap<>();
      List<CompletableFuture<Void>> writes = new ArrayList<>();
      for (int i = 0; i < 32; i++) {
        expected.put(send(refused, CMD_WRITE, i * (long) LEN, LEN, filled(i, LEN)), "EPERM");
        expected.put(send(refused, CMD_READ, SIZE - LEN, LEN, null), "tail");
        expected.put(send(refused, CMD_READ, SIZE, LEN, null), "EINVAL");
        writes.add(writer.writeAsync(MIB + i * (long) LEN, ByteBuffer.wrap(random(100 + i, LEN)), false));
      }
      for (CompletableFuture<Void> w : writes) {
        w.get(20, TimeUnit.SECONDS); // WRITE to vol while another client is refused
      }
      int sent = expected.size();
      for (int i = 0; i < sent; i++) {
        Reply r = refused.next();
        String want = expected.remove(r.cookie());
        if (want.equals("tail")) {
          assertEquals(0, r.error(), "pipelined READ of vol@s1");
          assertArrayEquals(tail, r.data(), "pipelined READ of vol@s1");
        } else {
          assertEquals(want.equals("EPERM") ? EPERM : EINVAL, r.error(), "pipelined request expecting " + want);
        }
      }
      assertTrue(expected.isEmpty(), "every pipelined request was answered");

      // a client that breaks the protocol is dropped; the others go on
      try (RawNbd broken = RawNbd.attach(served.address(), "vol", false)) {
        broken.sendRaw(new byte[28]); // a request header with a bad magic
        assertEquals(0, broken.drainUntilClosed().length, "the server closes a connection with a bad request magic");
      }
      writer.flush(); // FLUSH of vol after another client was dropped
      for (int i = 0; i < 32; i++) {
        assertArrayEquals(random(100 + i, LEN), writer.read(MIB + i * (long) LEN, LEN), "READ back of vol at " + (MIB + i * LEN));
      }
      assertEquals(0, refused.call(0, CMD_READ, 0, LEN, null).error(), "READ of vol@s1 after another client was dropped");
      refused.disconnect();
    }
    for (int i = 0; i < 32; i++) {
      assertArrayEquals(random(100 + i, LEN), read(volume, MIB + i * (long) LEN, LEN), "origin at " + (MIB + i * LEN));
    }
    if (Exec.find("nbdinfo").isPresent()) {
      Exec.run(Duration.ofSeconds(20), "nbdinfo", served.uri("vol@s1")).assertSuccess();
    }
  }
}
