package dev.shade.nbd.robustness;

import static dev.shade.nbd.protocol.Nbd.*;
import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.shade.nbd.client.NbdClient;
import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.nbd.protocol.Nbd;
import dev.shade.nbd.server.NbdServer;
import dev.shade.nbd.testing.RawNbd.Attached;
import dev.shade.nbd.testing.RawNbd.OptionReply;
import dev.shade.nbd.testing.RawNbd.Reply;
import dev.shade.nbd.testing.RawNbd;
import dev.shade.nbd.testing.TestCatalog;
import dev.shade.testing.nbd.Uris;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A seeded fuzzer that sends malformed handshakes and requests to a live server and checks that
 * each one is refused as the protocol says, without changing data or harming other clients.
 */
class GarbageInputTest {
  /*
   * Each case opens a raw loopback connection and sends one kind of garbage, shaped by a Random
   * seeded from -Dshade.fuzz.seed (cases per test: -Dshade.fuzz.cases). The answer is checked
   * against doc/proto.md: the exact error where the protocol fixes it (REP_ERR_UNSUP for an
   * unknown option, REP_ERR_INVALID for lying lengths, REP_ERR_UNKNOWN for an unknown export,
   * EINVAL out of range, EPERM for writes to a snapshot), or a closed connection where the byte
   * stream can no longer be trusted (bad magic, a payload too large to skip, truncation). Where
   * the protocol allows several answers (ENOSPC or EINVAL past the end, EOVERFLOW or EINVAL for
   * an oversized read) the test allows them too.
   *
   * After every case a fresh well-behaved client attaches and reads and compares data, and the
   * server's connection count must drop back to 0. The test keeps a model of the origin and of the
   * snapshot; only deliberately valid writes change it. At the end (and every 500 cases) the
   * SHA-256 of both, read straight from the TestCatalog, must equal the model's. No server thread
   * may log an error or die.
   *
   * Clients attached with EXPORT_NAME never agreed block sizes, so the server owes them no 32 MiB
   * limit: their READs over 32 MiB inside the export succeed, and their oversized WRITEs are
   * received in 4 MiB pieces (the 64 KiB at most that this test sends before half-closing never
   * completes one, so nothing is written).
   */
  private static final long SIZE = 48L << 20;
  private static final int BLOCK = 64 << 10;
  private static final String VOLUME = "vol";
  private static final String SNAPSHOT = "base";
  private static final String SNAPSHOT_EXPORT = VOLUME + "@" + SNAPSHOT;
  private static final long SEED = Long.getLong("shade.fuzz.seed", 0x5ade_0bad_f00dL);
  private static final int CASES = Integer.getInteger("shade.fuzz.cases", 2000);
  private static final Set<Integer> KNOWN_OPTIONS = Set.of(OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_INFO, OPT_GO,
      OPT_STRUCTURED_REPLY, OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT);
  private static final int KNOWN_CMD_FLAGS = CMD_FLAG_FUA | CMD_FLAG_NO_HOLE | CMD_FLAG_DF | CMD_FLAG_REQ_ONE | CMD_FLAG_FAST_ZERO;
  private static final String[] UNKNOWN_NAMES = {"nope", "vol@nosuch", "vol@", "@", "@base", "vol@@base", "VOL", "vol ", " vol",
      "vol@base ", "vol/../vol", "vol\u0000", "vol@s1", "vol@base@base", "\u0432\u043e\u043b", "vol@BASE"};

  private TestCatalog catalog;
  private NbdServer server;
  private ServerLog log;
  private InetSocketAddress address;
  /** What the origin must hold: the initial data plus every deliberately valid write. */
  private byte[] origin;
  /** What the snapshot must hold, whatever happens. */
  private byte[] snapshot;
  /** Deliberately valid writes applied so far. */
  private int validWrites;

  @BeforeEach
  void setUp() throws IOException {
    catalog = new TestCatalog(VOLUME, SIZE);
    Random init = new Random(SEED);
    origin = new byte[(int) SIZE];
    for (long b = 0; b < SIZE / BLOCK; b++) {
      if (init.nextInt(3) == 0) {
        byte[] d = new byte[BLOCK];
        init.nextBytes(d);
        System.arraycopy(d, 0, catalog.disk(), (int) (b * BLOCK), BLOCK);
        System.arraycopy(d, 0, origin, (int) (b * BLOCK), BLOCK);
      }
    }
    catalog.snapshot(SNAPSHOT);
    snapshot = origin.clone();
    for (int i = 0; i < 40; i++) {
      byte[] d = new byte[1 + init.nextInt(3 * BLOCK)];
      init.nextBytes(d);
      int at = init.nextInt((int) SIZE - d.length);
      System.arraycopy(d, 0, catalog.disk(), at, d.length);
      System.arraycopy(d, 0, origin, at, d.length);
    }
    log = ServerLog.capture();
    server = NbdServer.start(catalog, new NbdServer.Config()
        .listen(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))
        .handshakeTimeout(Duration.ofSeconds(5)));
    address = server.tcpAddress();
  }

  @AfterEach
  void tearDown() throws IOException {
    try {
      if (server != null) {
        server.close();
      }
    } finally {
      if (log != null) {
        log.close();
      }
    }
  }

  @Test
  void handshakeGarbage_isRefusedAndChangesNothing() throws Exception {
    fuzz(SEED ^ 0x4a4a, this::handshakeCase);
  }

  @Test
  void transmissionGarbage_getsErrorRepliesAndChangesNothing() throws Exception {
    fuzz(SEED ^ 0x7e7e, this::transmissionCase);
  }

  // ------------------------------------------------------------------ the loop

  /** One fuzz case: sends garbage with {@code r}, notes what it did in {@code t}. */
  private interface Case {
    void run(Random r, StringBuilder t) throws Exception;
  }

  private void fuzz(long seed, Case c) throws Exception {
    Random master = new Random(seed);
    for (int i = 0; i < CASES; i++) {
      long caseSeed = master.nextLong();
      Random r = new Random(caseSeed);
      StringBuilder t = new StringBuilder();
      try {
        c.run(r, t);
        t.append("; health check");
        healthCheck(r, t);
        awaitNoConnections();
        if (i % 500 == 499) {
          assertContents();
        }
      } catch (Exception | AssertionError e) {
        throw new AssertionError("case " + i + " of seed 0x" + Long.toHexString(SEED) + " (case seed 0x" + Long.toHexString(caseSeed)
            + "): " + t + "\n  -> " + e + "\n  server log tail:\n" + log.tail(), e);
      }
      assertEquals(List.of(), log.errors(), "errors logged by the server after case " + i + ": " + t);
    }
    assertContents();
    assertEquals(List.of(), log.errors(), "errors logged by the server");
  }

  /** A fresh client attaches to a random export and reads correct data. */
  private void healthCheck(Random r, StringBuilder t) throws IOException {
    boolean snap = r.nextBoolean();
    NbdClientConfig config = NbdClientConfig.builder(Uris.tcp(address, snap ? SNAPSHOT_EXPORT : VOLUME))
        .structuredReplies(r.nextBoolean()).build();
    try (NbdClient c = NbdClient.connect(config)) {
      syncRead(c::read, snap, r, t);
    }
  }

  private void awaitNoConnections() throws InterruptedException {
    long deadline = System.nanoTime() + RawNbd.TIMEOUT.toNanos();
    while (server.connectionCount() != 0) {
      if (System.nanoTime() > deadline) {
        fail("the server still counts " + server.connectionCount() + " connections " + RawNbd.TIMEOUT.toSeconds()
            + " s after every client left");
      }
      Thread.sleep(1);
    }
  }

  /** Origin and snapshot, read straight from the catalog, hash to the model's SHA-256. */
  private void assertContents() {
    assertEquals(sha256(origin), sha256(catalog.disk()), "origin contents after " + validWrites + " valid writes");
    assertEquals(sha256(snapshot), sha256(catalog.copy(SNAPSHOT)), "snapshot contents");
  }

  private static String sha256(byte[] b) {
    return HexFormat.of().formatHex(digest().digest(b));
  }

  private static MessageDigest digest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  // ------------------------------------------------------------------ handshake cases

  private enum HandshakeGarbage {
    GARBAGE_FLAGS, UNKNOWN_CLIENT_FLAGS, BAD_OPTION_MAGIC, UNKNOWN_OPTION, OVERSIZED_OPTION, LYING_INFO_GO, LYING_META_CONTEXT,
    BAD_OPTION_DATA, UNKNOWN_INFO_REQUESTS, UNKNOWN_EXPORT_NAME, ABORT, TRUNCATED_OPTION
  }

  private void handshakeCase(Random r, StringBuilder t) throws IOException {
    HandshakeGarbage kind = HandshakeGarbage.values()[r.nextInt(HandshakeGarbage.values().length)];
    t.append(kind);
    try (RawNbd c = RawNbd.connect(address)) {
      switch (kind) {
        case GARBAGE_FLAGS: {
          c.greeting();
          byte[] junk = random(r, 1 + r.nextInt(64));
          boolean known = junk.length >= 4 && (ByteBuffer.wrap(junk).getInt() & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) == 0;
          t.append(": ").append(junk.length).append(" random bytes instead of the client flags");
          c.sendRaw(junk);
          if (known || junk.length < 4) {
            c.halfClose(); // the server may wait for more; the end of the stream must end it
          }
          expectClosed(c, "garbage client flags");
          break;
        }
        case UNKNOWN_CLIENT_FLAGS: {
          c.greeting();
          int flags = r.nextInt(4) | (1 << (2 + r.nextInt(30))) | (r.nextBoolean() ? r.nextInt() & ~3 : 0);
          t.append(": client flags 0x").append(Integer.toHexString(flags));
          c.sendRaw(ByteBuffer.allocate(4).putInt(flags).array());
          expectClosed(c, "unknown client flags (the protocol says the server MUST close)");
          break;
        }
        case BAD_OPTION_MAGIC: {
          c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
          validOptions(c, r, t);
          long[] magics = {IHAVEOPT ^ (1L << r.nextInt(64)), r.nextLong(), NBDMAGIC, OPTION_REPLY_MAGIC, 0, -1,
              Long.reverseBytes(IHAVEOPT)};
          long magic = magics[r.nextInt(magics.length)];
          if (magic == IHAVEOPT) {
            magic = ~IHAVEOPT;
          }
          byte[] data = random(r, r.nextInt(32));
          int option = r.nextInt(12);
          t.append("; option ").append(option).append(" with magic 0x").append(Long.toHexString(magic));
          c.sendRaw(RawNbd.option(magic, option, data.length, data));
          expectClosed(c, "bad option magic");
          break;
        }
        case UNKNOWN_OPTION: {
          c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
          for (int i = r.nextInt(3); i >= 0; i--) {
            int option = unknownOption(r);
            byte[] data = random(r, r.nextInt(10) == 0 ? r.nextInt(MAX_OPTION + 1) : r.nextInt(300));
            t.append("; unknown option ").append(Integer.toUnsignedString(option)).append(" with ").append(data.length).append(" bytes");
            c.sendOption(option, data);
            expectOne(c, option, Set.of(REP_ERR_UNSUP), "unknown option");
          }
          finishWithGo(c, r, t);
          break;
        }
        case OVERSIZED_OPTION: {
          c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
          validOptions(c, r, t);
          long[] lengths = {MAX_OPTION + 1L, MAX_OPTION + 1L + r.nextInt(1 << 24), 0x7fff_ffffL, 0x8000_0000L, 0xffff_ffffL,
              0x8000_0000L + (r.nextInt() & 0x7fff_ffffL)};
          long length = lengths[r.nextInt(lengths.length)];
          int option = r.nextBoolean() ? unknownOption(r) : List.copyOf(KNOWN_OPTIONS).get(r.nextInt(KNOWN_OPTIONS.size()));
          byte[] some = random(r, r.nextInt(4096));
          t.append("; option ").append(option).append(" declaring ").append(length).append(" bytes, sending ").append(some.length);
          c.sendRaw(RawNbd.option(IHAVEOPT, option, length, some));
          // the server cannot skip what it will not read: it may answer with an error, then must close
          for (OptionReply rep : RawNbd.parseOptionReplies(c.drainUntilClosed())) {
            assertTrue(rep.isError() && rep.option() == option, "oversized option answered with " + rep);
          }
          break;
        }
        case LYING_INFO_GO:
          c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
          lyingInfoOrGo(c, r, t);
          finishWithGo(c, r, t);
          break;
        case LYING_META_CONTEXT:
          c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
          lyingMetaContext(c, r, t);
          finishWithGo(c, r, t);
          break;
        case BAD_OPTION_DATA:
          c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
          for (int i = r.nextInt(3); i >= 0; i--) {
            badOptionData(c, r, t);
          }
          finishWithGo(c, r, t);
          break;
        case UNKNOWN_INFO_REQUESTS: {
          // the protocol says the server MUST ignore information requests it does not know
          c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
          boolean snap = r.nextBoolean();
          String export = snap ? SNAPSHOT_EXPORT : VOLUME;
          int[] infos = new int[1 + r.nextInt(6)];
          for (int i = 0; i < infos.length; i++) {
            infos[i] = r.nextBoolean() ? r.nextInt(6) : r.nextInt(0x10000);
          }
          int option = r.nextBoolean() ? OPT_INFO : OPT_GO;
          t.append("; option ").append(option).append(" for ").append(export).append(" with info requests ").append(Arrays.toString(infos));
          Attached a = RawNbd.attached("INFO/GO", c.negotiate(option, RawNbd.infoRequest(export, infos)));
          checkAttached(a, snap, c.structured());
          if (option == OPT_GO) {
            syncRead(c, snap, r, t);
            c.disconnect();
          } else {
            finishWithGo(c, r, t);
          }
          break;
        }
        case UNKNOWN_EXPORT_NAME: {
          boolean noZeroes = r.nextBoolean();
          c.handshake(FLAG_C_FIXED_NEWSTYLE | (noZeroes ? FLAG_C_NO_ZEROES : 0));
          validOptions(c, r, t);
          byte[] name = unknownName(r);
          t.append("; EXPORT_NAME '").append(new String(name, UTF_8)).append("'");
          c.sendOption(OPT_EXPORT_NAME, name);
          expectClosed(c, "EXPORT_NAME of an unknown export (the protocol says the server MUST terminate the session)");
          break;
        }
        case ABORT: {
          c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
          validOptions(c, r, t);
          byte[] data = r.nextBoolean() ? new byte[0] : random(r, 1 + r.nextInt(100));
          t.append("; ABORT with ").append(data.length).append(" bytes");
          c.sendOption(OPT_ABORT, data);
          List<OptionReply> replies = RawNbd.parseOptionReplies(c.drainUntilClosed());
          assertTrue(replies.size() <= 1, "ABORT answered with " + replies);
          for (OptionReply rep : replies) {
            assertEquals(OPT_ABORT, rep.option(), "reply to ABORT: " + rep);
            assertTrue(rep.type() == REP_ACK || rep.type() == REP_ERR_INVALID, "reply to ABORT: " + rep);
          }
          break;
        }
        case TRUNCATED_OPTION: {
          c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
          validOptions(c, r, t);
          byte[] data = RawNbd.infoRequest(VOLUME);
          byte[] whole = RawNbd.option(IHAVEOPT, OPT_GO, data.length, data);
          if (r.nextBoolean()) {
            byte[] some = random(r, r.nextInt(1000));
            long declared = some.length + 1 + r.nextInt(MAX_OPTION - some.length);
            whole = RawNbd.option(IHAVEOPT, r.nextBoolean() ? unknownOption(r) : OPT_LIST, declared, some);
          }
          int cut = r.nextInt(Math.min(whole.length, 16 + r.nextInt(1000)));
          t.append("; ").append(cut).append(" of ").append(whole.length).append(" bytes of an option, then ");
          c.sendRaw(Arrays.copyOf(whole, cut));
          endAbruptly(c, r, t);
          break;
        }
        default:
          throw new AssertionError(kind);
      }
    }
  }

  /** Zero to two well-formed options before the garbage, so it lands mid-negotiation. */
  private void validOptions(RawNbd c, Random r, StringBuilder t) throws IOException {
    for (int i = r.nextInt(3); i > 0; i--) {
      switch (r.nextInt(3)) {
        case 0:
          t.append("; STRUCTURED_REPLY");
          c.structuredReplies();
          break;
        case 1: {
          t.append("; LIST");
          List<OptionReply> list = c.negotiate(OPT_LIST, new byte[0]);
          assertEquals(REP_ACK, list.get(list.size() - 1).type(), "LIST: " + list);
          assertEquals(3, list.size(), "LIST: the origin and one snapshot, then ACK: " + list);
          break;
        }
        default: {
          t.append("; INFO");
          checkAttached(RawNbd.attached("INFO", c.negotiate(OPT_INFO, RawNbd.infoRequest(VOLUME))), false, c.structured());
        }
      }
    }
  }

  private static int unknownOption(Random r) {
    int[] some = {0, 4, 11, 12, 13, 0x7fffffff, 0x80000000, -1};
    int o = r.nextBoolean() ? some[r.nextInt(some.length)] : r.nextInt();
    return KNOWN_OPTIONS.contains(o) ? 4 : o;
  }

  private static byte[] unknownName(Random r) {
    if (r.nextInt(3) == 0) {
      return random(r, 4 + r.nextInt(40));
    }
    return UNKNOWN_NAMES[r.nextInt(UNKNOWN_NAMES.length)].getBytes(UTF_8);
  }

  /** INFO or GO whose inner lengths lie, or that name an unknown or overlong export. */
  private void lyingInfoOrGo(RawNbd c, Random r, StringBuilder t) throws IOException {
    if (r.nextBoolean()) {
      validOptions(c, r, t);
    }
    int option = r.nextBoolean() ? OPT_INFO : OPT_GO;
    byte[] name = (r.nextBoolean() ? VOLUME : SNAPSHOT_EXPORT).getBytes(UTF_8);
    int requests = r.nextInt(4);
    int lie = r.nextInt(6);
    ByteArrayOutputStream data = new ByteArrayOutputStream();
    Set<Integer> allowed;
    String what;
    switch (lie) {
      case 0: // shorter than the fixed fields
        data.writeBytes(random(r, r.nextInt(6)));
        allowed = Set.of(REP_ERR_INVALID);
        what = data.size() + " bytes, less than a name length and a request count";
        break;
      case 1: { // the name length runs past the data
        long rest = name.length + 2L * requests;
        long[] lies = {rest + 1, rest + 1 + r.nextInt(100_000), 0xffff_ffffL, 0x8000_0000L, 0x7fff_ffffL};
        long nameLen = lies[r.nextInt(lies.length)];
        data.writeBytes(ByteBuffer.allocate(4).putInt((int) nameLen).array());
        data.writeBytes(name);
        data.writeBytes(counted(requests, requests, r));
        allowed = Set.of(REP_ERR_INVALID);
        what = "name length " + nameLen + " with " + rest + " bytes after it";
        break;
      }
      case 2: { // the request count disagrees with the data (or a stray byte follows)
        int count = requests;
        while (count == requests) {
          count = r.nextBoolean() ? r.nextInt(8) : r.nextInt(0x10000);
        }
        boolean stray = r.nextInt(4) == 0;
        if (stray) {
          count = requests;
        }
        data.writeBytes(ByteBuffer.allocate(4).putInt(name.length).array());
        data.writeBytes(name);
        data.writeBytes(counted(count, requests, r));
        if (stray) {
          data.write(r.nextInt(256));
        }
        allowed = Set.of(REP_ERR_INVALID);
        what = stray ? "a stray byte after " + requests + " requests" : "request count " + count + " with " + requests + " requests";
        break;
      }
      case 3: // consistent, unknown export
      case 4: {
        name = unknownName(r);
        data.writeBytes(ByteBuffer.allocate(4).putInt(name.length).array());
        data.writeBytes(name);
        data.writeBytes(counted(requests, requests, r));
        allowed = Set.of(REP_ERR_UNKNOWN);
        what = "unknown export '" + new String(name, UTF_8) + "'";
        break;
      }
      default: { // consistent, but the name is longer than the protocol's 4096 bytes
        name = new byte[MAX_STRING + 1 + r.nextInt(4000)];
        Arrays.fill(name, (byte) 'v');
        data.writeBytes(ByteBuffer.allocate(4).putInt(name.length).array());
        data.writeBytes(name);
        data.writeBytes(counted(requests, requests, r));
        allowed = Set.of(REP_ERR_INVALID, REP_ERR_TOO_BIG, REP_ERR_UNKNOWN);
        what = "an export name of " + name.length + " bytes";
      }
    }
    t.append("; option ").append(option).append(" with ").append(what);
    c.sendOption(option, data.toByteArray());
    expectOne(c, option, allowed, what);
  }

  /** A request count then {@code n} information requests. */
  private static byte[] counted(int count, int n, Random r) {
    ByteBuffer b = ByteBuffer.allocate(2 + 2 * n).putShort((short) count);
    for (int i = 0; i < n; i++) {
      b.putShort((short) r.nextInt(4));
    }
    return b.array();
  }

  /** LIST/SET_META_CONTEXT whose inner lengths lie, or that name an unknown export. */
  private void lyingMetaContext(RawNbd c, Random r, StringBuilder t) throws IOException {
    boolean structured = r.nextInt(5) != 0;
    if (structured) {
      t.append("; STRUCTURED_REPLY");
      c.structuredReplies();
    }
    int option = r.nextBoolean() ? OPT_LIST_META_CONTEXT : OPT_SET_META_CONTEXT;
    String[] pool = {CONTEXT_ALLOCATION, "base:", CONTEXT_CHANGED + SNAPSHOT, "shade:", "x-nothing:here", ""};
    List<byte[]> queries = new ArrayList<>();
    for (int i = r.nextInt(4); i > 0; i--) {
      queries.add((r.nextInt(4) == 0 ? new String(random(r, r.nextInt(20)), UTF_8) : pool[r.nextInt(pool.length)]).getBytes(UTF_8));
    }
    byte[] name = (r.nextBoolean() ? VOLUME : SNAPSHOT_EXPORT).getBytes(UTF_8);
    int lie = r.nextInt(8);
    if ((lie == 3 || lie == 4) && queries.isEmpty()) {
      queries.add(CONTEXT_ALLOCATION.getBytes(UTF_8));
    }
    int queryBytes = 0;
    for (byte[] q : queries) {
      queryBytes += 4 + q.length;
    }
    Set<Integer> allowed = Set.of(REP_ERR_INVALID);
    String what;
    ByteBuffer b = ByteBuffer.allocate(8 + name.length + queryBytes + 8 + MAX_STRING + 4000);
    switch (lie) {
      case 0: // shorter than the fixed fields
        b.put(random(r, r.nextInt(8)));
        what = b.position() + " bytes, less than a name length and a query count";
        break;
      case 1: { // the name length runs past the data
        long most = name.length + (long) queryBytes; // a longer name leaves no room for the query count
        long[] lies = {most + 1, most + 1 + r.nextInt(100_000), 0xffff_ffffL, 0x8000_0000L};
        long nameLen = lies[r.nextInt(lies.length)];
        b.putInt((int) nameLen).put(name).putInt(queries.size());
        queries(b, queries, -1, 0);
        what = "name length " + nameLen + " with " + (most + 4) + " bytes after it";
        break;
      }
      case 2: { // more queries announced than sent
        int count = queries.size() + 1 + (r.nextBoolean() ? r.nextInt(10) : r.nextInt(Integer.MAX_VALUE - 20));
        b.putInt(name.length).put(name).putInt(count);
        queries(b, queries, -1, 0);
        what = "query count " + count + " with " + queries.size() + " queries";
        break;
      }
      case 3: { // fewer queries announced than sent
        int count = r.nextInt(queries.size());
        b.putInt(name.length).put(name).putInt(count);
        queries(b, queries, -1, 0);
        what = "query count " + count + " with " + queries.size() + " queries";
        break;
      }
      case 4: { // a query length runs past the data
        int which = r.nextInt(queries.size());
        b.putInt(name.length).put(name).putInt(queries.size());
        int extra = 1 + r.nextInt(r.nextBoolean() ? 16 : 1 << 30);
        queries(b, queries.subList(0, which + 1), which, extra);
        what = "query " + which + " claiming " + extra + " more bytes than sent";
        break;
      }
      case 5: // trailing bytes
        b.putInt(name.length).put(name).putInt(queries.size());
        queries(b, queries, -1, 0);
        b.put(random(r, 1 + r.nextInt(3)));
        what = "trailing bytes after " + queries.size() + " queries";
        break;
      case 6: // consistent, unknown export
        name = unknownName(r);
        b.putInt(name.length).put(name).putInt(queries.size());
        queries(b, queries, -1, 0);
        allowed = structured ? Set.of(REP_ERR_UNKNOWN) : Set.of(REP_ERR_INVALID, REP_ERR_UNKNOWN);
        what = "unknown export '" + new String(name, UTF_8) + "'";
        break;
      default: { // consistent, a query that selects nothing: success with no contexts
        byte[] q = ("x-" + Long.toHexString(r.nextLong()) + ":nothing").getBytes(UTF_8);
        b.putInt(name.length).put(name).putInt(1).putInt(q.length).put(q);
        allowed = structured ? Set.of(REP_ACK) : Set.of(REP_ERR_INVALID, REP_ACK);
        what = "a query that matches nothing";
      }
    }
    byte[] data = Arrays.copyOf(b.array(), b.position());
    t.append("; option ").append(option).append(" with ").append(what);
    c.sendOption(option, data);
    expectOne(c, option, allowed, what);
    if (option == OPT_SET_META_CONTEXT) {
      c.contexts().clear();
    }
  }

  private static void queries(ByteBuffer b, List<byte[]> queries, int lying, int extra) {
    for (int i = 0; i < queries.size(); i++) {
      byte[] q = queries.get(i);
      b.putInt(i == lying ? q.length + extra : q.length).put(q);
    }
  }

  /** Options with data they must not carry, or STARTTLS on a server without TLS. */
  private void badOptionData(RawNbd c, Random r, StringBuilder t) throws IOException {
    byte[] data = random(r, 1 + r.nextInt(r.nextInt(10) == 0 ? MAX_OPTION : 64));
    switch (r.nextInt(3)) {
      case 0:
        t.append("; LIST with ").append(data.length).append(" bytes");
        c.sendOption(OPT_LIST, data);
        expectOne(c, OPT_LIST, Set.of(REP_ERR_INVALID), "LIST with data");
        break;
      case 1:
        t.append("; STRUCTURED_REPLY with ").append(data.length).append(" bytes");
        c.sendOption(OPT_STRUCTURED_REPLY, data);
        expectOne(c, OPT_STRUCTURED_REPLY, Set.of(REP_ERR_INVALID), "STRUCTURED_REPLY with data");
        break;
      default:
        if (r.nextBoolean()) {
          data = new byte[0];
        }
        t.append("; STARTTLS with ").append(data.length).append(" bytes on a server without TLS");
        c.sendOption(OPT_STARTTLS, data);
        // NOTLS mode: ERR_POLICY or ERR_UNSUP, or ERR_INVALID for the data; never ACK or TLS_REQD
        expectOne(c, OPT_STARTTLS, data.length == 0 ? Set.of(REP_ERR_UNSUP, REP_ERR_POLICY)
            : Set.of(REP_ERR_UNSUP, REP_ERR_POLICY, REP_ERR_INVALID), "STARTTLS without TLS");
    }
  }

  /** Reads exactly one (final) reply to {@code option}, of an allowed type. */
  private static void expectOne(RawNbd c, int option, Set<Integer> allowed, String what) throws IOException {
    List<OptionReply> replies = c.optionReplies(option);
    assertEquals(1, replies.size(), what + ": replies " + replies);
    assertTrue(allowed.contains(replies.get(0).type()), what + ": got " + replies.get(0) + ", expected one of "
        + allowed.stream().map(Nbd::replyName).toList());
  }

  /** After garbage that must not have upset it, the connection still attaches and reads. */
  private void finishWithGo(RawNbd c, Random r, StringBuilder t) throws IOException {
    boolean snap = r.nextBoolean();
    String export = snap ? SNAPSHOT_EXPORT : VOLUME;
    t.append("; GO ").append(export);
    checkAttached(c.go(export), snap, c.structured());
    syncRead(c, snap, r, t);
    if (r.nextBoolean()) {
      c.disconnect();
    } else {
      t.append("; reset");
      c.abort();
    }
  }

  private static void checkAttached(Attached a, boolean snap, boolean structured) {
    assertEquals(SIZE, a.size(), "export size");
    assertEquals(snap, a.readOnly(), "read-only flag of " + (snap ? "the snapshot" : "the origin"));
    if (!structured) {
      assertEquals(0, a.flags() & FLAG_SEND_DF,
          "transmission flags 0x" + Integer.toHexString(a.flags()) + " offer DF without structured replies (the protocol says MUST leave it clear)");
    }
  }

  /** Reads a random range (sometimes the very end) and compares it with the model. */
  private void syncRead(RawNbd c, boolean snap, Random r, StringBuilder t) throws IOException {
    syncRead(c::read, snap, r, t);
  }

  /** Reads {@code length} bytes at {@code offset} over some connection. */
  private interface Reader {
    byte[] read(long offset, int length) throws IOException;
  }

  private void syncRead(Reader c, boolean snap, Random r, StringBuilder t) throws IOException {
    int len = 1 + r.nextInt(256 << 10);
    long offset = r.nextInt(4) == 0 ? SIZE - len : r.nextInt((int) SIZE - len);
    byte[] got = c.read(offset, len);
    assertArrayEquals(Arrays.copyOfRange(snap ? snapshot : origin, (int) offset, (int) offset + len), got,
        "data read from " + (snap ? "the snapshot" : "the origin") + " at " + offset + "+" + len);
  }

  private static void expectClosed(RawNbd c, String what) throws IOException {
    byte[] got = c.drainUntilClosed();
    assertEquals(0, got.length, what + ": the server sent " + got.length + " bytes instead of closing");
  }

  /** Ends with a FIN (then the server must close without a word) or with a reset. */
  private static void endAbruptly(RawNbd c, Random r, StringBuilder t) throws IOException {
    if (r.nextBoolean()) {
      t.append("end of stream");
      c.halfClose();
      expectClosed(c, "truncated input");
    } else {
      t.append("reset");
      c.abort();
    }
  }

  // ------------------------------------------------------------------ transmission cases

  private enum RequestGarbage {
    UNKNOWN_COMMAND, UNKNOWN_FLAGS, OUT_OF_RANGE, OVERFLOW, TOO_LONG_READ, ZERO_LENGTH, STATUS_WITHOUT_CONTEXT, FLUSH_FIELDS,
    WRITE_TO_SNAPSHOT, INAPPLICABLE_FLAGS, FAST_ZERO, VALID_READ, VALID_STATUS
  }

  private enum Ending {
    DISC, BAD_MAGIC, TOO_LONG_WRITE, TRUNCATED_HEADER, TRUNCATED_WRITE, RESET_IN_FLIGHT, RESET
  }

  /** A request sent and the answers the protocol allows. */
  private record Expect(String what, int command, long offset, long length, int flags, Set<Integer> errors) {}

  private void transmissionCase(Random r, StringBuilder t) throws IOException {
    boolean snap = r.nextInt(3) == 0;
    String export = snap ? SNAPSHOT_EXPORT : VOLUME;
    boolean structured = r.nextBoolean();
    List<String> contexts = new ArrayList<>();
    if (structured && r.nextBoolean()) {
      contexts.add(CONTEXT_ALLOCATION);
      if (r.nextBoolean()) {
        contexts.add(CONTEXT_CHANGED + SNAPSHOT);
      }
    }
    boolean exportName = r.nextInt(8) == 0;
    boolean noZeroes = !exportName || r.nextBoolean();
    t.append(exportName ? "EXPORT_NAME " : "GO ").append(export).append(structured ? ", structured" : ", simple")
        .append(contexts.isEmpty() ? "" : ", contexts " + contexts);
    try (RawNbd c = RawNbd.connect(address)) {
      c.handshake(FLAG_C_FIXED_NEWSTYLE | (noZeroes ? FLAG_C_NO_ZEROES : 0));
      if (structured) {
        c.structuredReplies();
        if (!contexts.isEmpty()) {
          assertEquals(contexts, List.copyOf(c.setMetaContext(export, contexts.toArray(new String[0])).values()), "contexts chosen");
        }
      }
      checkAttached(exportName ? c.exportName(export, noZeroes) : c.go(export), snap, structured);

      Map<Long, Expect> sent = new LinkedHashMap<>();
      for (int i = r.nextInt(5); i >= 0; i--) {
        long cookie = r.nextLong();
        while (sent.containsKey(cookie)) {
          cookie = r.nextLong();
        }
        Expect e = garbage(c, r, cookie, snap, structured, !contexts.isEmpty(), exportName);
        t.append("; ").append(e.what());
        sent.put(cookie, e);
      }
      for (int i = 0; i < sent.size(); i++) {
        Reply rep = c.next();
        Expect e = sent.get(rep.cookie());
        check(e, rep, snap, c);
      }
      if (!snap && r.nextInt(3) == 0) {
        validWrite(c, r, t);
      }
      syncRead(c, snap, r, t);
      ending(c, r, t, snap);
    }
  }

  /** Sends one bad (or, now and then, valid) request and says what may come back. */
  private Expect garbage(RawNbd c, Random r, long cookie, boolean snap, boolean structured, boolean contexts,
      boolean unlimited) throws IOException {
    RequestGarbage kind = RequestGarbage.values()[r.nextInt(RequestGarbage.values().length)];
    if (kind == RequestGarbage.STATUS_WITHOUT_CONTEXT && contexts || kind == RequestGarbage.VALID_STATUS && !contexts
        || kind == RequestGarbage.WRITE_TO_SNAPSHOT && !snap || kind == RequestGarbage.FAST_ZERO && snap) {
      kind = RequestGarbage.VALID_READ;
    }
    int[] rangeCommands = {CMD_READ, CMD_WRITE, CMD_TRIM, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS};
    int cmd;
    int flags = 0;
    long offset;
    long length;
    Set<Integer> errors;
    switch (kind) {
      case UNKNOWN_COMMAND: {
        cmd = r.nextInt(4) == 0 ? CMD_CACHE : 8 + r.nextInt(0x10000 - 8);
        offset = r.nextInt((int) SIZE);
        length = r.nextInt(1 << 20);
        errors = cmd == CMD_CACHE ? Set.of(EINVAL, ENOTSUP) : Set.of(EINVAL);
        break;
      }
      case UNKNOWN_FLAGS: {
        int[] commands = {CMD_READ, CMD_WRITE, CMD_FLUSH, CMD_TRIM, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS};
        cmd = commands[r.nextInt(commands.length)];
        flags = (r.nextInt() & KNOWN_CMD_FLAGS & ~CMD_FLAG_FAST_ZERO) | (1 << (5 + r.nextInt(11)));
        length = cmd == CMD_FLUSH ? 0 : 1 + r.nextInt(64 << 10);
        offset = cmd == CMD_FLUSH ? 0 : r.nextInt((int) (SIZE - length));
        errors = set(EINVAL, snap && isWrite(cmd) ? EPERM : EINVAL);
        break;
      }
      case OUT_OF_RANGE: {
        cmd = rangeCommands[r.nextInt(rangeCommands.length)];
        boolean huge = cmd != CMD_WRITE && cmd != CMD_READ && r.nextInt(4) == 0;
        length = huge ? MAX_PAYLOAD + 1 + (r.nextInt() & 0x7fff_ffffL) : 1 + r.nextInt(128 << 10);
        switch (r.nextInt(4)) {
          case 0:
            offset = SIZE + (r.nextBoolean() ? 0 : r.nextInt(1 << 30));
            break;
          case 1:
            offset = SIZE - r.nextInt((int) Math.min(length, 1 << 20)); // starts inside (or at the end), ends past it
            break;
          case 2:
            offset = r.nextLong() | Long.MIN_VALUE; // beyond 2^63
            break;
          default:
            offset = r.nextBoolean() ? Long.MAX_VALUE - r.nextInt(1000) : -1L;
        }
        errors = rangeErrors(cmd, snap);
        break;
      }
      case OVERFLOW: {
        cmd = rangeCommands[r.nextInt(rangeCommands.length)];
        length = 2 + r.nextInt(64 << 10);
        offset = -(1 + r.nextInt((int) length - 1)); // offset + length wraps past 2^64 to a small number
        errors = rangeErrors(cmd, snap);
        break;
      }
      case TOO_LONG_READ: {
        cmd = CMD_READ;
        length = MAX_PAYLOAD + 1 + (r.nextBoolean() ? r.nextInt(1 << 20) : r.nextInt() & 0x7fff_ffffL);
        offset = r.nextBoolean() ? 0 : r.nextInt((int) SIZE);
        if (unlimited) { // EXPORT_NAME: no limit was agreed, so only the end of the export bounds a READ
          errors = offset + length <= SIZE ? Set.of(0) : Set.of(EINVAL);
        } else {
          errors = Set.of(EINVAL, EOVERFLOW);
        }
        break;
      }
      case ZERO_LENGTH: {
        int[] commands = {CMD_READ, CMD_WRITE, CMD_TRIM, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS};
        cmd = commands[r.nextInt(commands.length)];
        length = 0;
        offset = r.nextInt(4) == 0 ? SIZE : r.nextInt((int) SIZE);
        if (cmd == CMD_BLOCK_STATUS) {
          errors = contexts ? Set.of(EINVAL, 0) : Set.of(EINVAL);
        } else {
          errors = snap && isWrite(cmd) ? Set.of(EPERM, EINVAL, 0) : Set.of(EINVAL, 0);
        }
        break;
      }
      case STATUS_WITHOUT_CONTEXT: {
        cmd = CMD_BLOCK_STATUS;
        length = 1 + r.nextInt((int) SIZE);
        offset = r.nextInt((int) (SIZE - length + 1));
        flags = r.nextBoolean() ? CMD_FLAG_REQ_ONE : 0;
        errors = Set.of(EINVAL);
        break;
      }
      case FLUSH_FIELDS: {
        cmd = CMD_FLUSH;
        offset = r.nextLong();
        length = r.nextInt() & 0xffff_ffffL;
        errors = Set.of(0, EINVAL);
        break;
      }
      case WRITE_TO_SNAPSHOT: {
        int[] commands = {CMD_WRITE, CMD_TRIM, CMD_WRITE_ZEROES};
        cmd = commands[r.nextInt(commands.length)];
        length = 1 + r.nextInt(128 << 10);
        offset = r.nextInt((int) (SIZE - length + 1));
        flags = r.nextBoolean() ? CMD_FLAG_FUA : 0;
        errors = Set.of(EPERM);
        break;
      }
      case INAPPLICABLE_FLAGS: {
        // known flags on commands they do not apply to: EINVAL, or ignored
        cmd = r.nextBoolean() ? CMD_READ : CMD_FLUSH;
        flags = cmd == CMD_READ ? (r.nextBoolean() ? CMD_FLAG_REQ_ONE : CMD_FLAG_NO_HOLE) | (r.nextBoolean() ? CMD_FLAG_FAST_ZERO : 0)
            : CMD_FLAG_DF | CMD_FLAG_REQ_ONE;
        if (cmd == CMD_READ && !structured && r.nextBoolean()) {
          flags |= CMD_FLAG_DF; // DF without structured replies: not offered, so not allowed
        }
        length = cmd == CMD_FLUSH ? 0 : 1 + r.nextInt(128 << 10);
        offset = cmd == CMD_FLUSH ? 0 : r.nextInt((int) (SIZE - length + 1));
        errors = Set.of(0, EINVAL);
        break;
      }
      case FAST_ZERO: {
        // FAST_ZERO was not offered (no SEND_FAST_ZERO), so the zeroing must not happen
        cmd = CMD_WRITE_ZEROES;
        flags = CMD_FLAG_FAST_ZERO | (r.nextBoolean() ? CMD_FLAG_NO_HOLE : 0);
        length = 1 + r.nextInt(1 << 20);
        offset = r.nextInt((int) (SIZE - length + 1));
        errors = Set.of(EINVAL, ENOTSUP);
        break;
      }
      case VALID_STATUS: {
        cmd = CMD_BLOCK_STATUS;
        length = 1 + (r.nextBoolean() ? r.nextInt(1 << 20) : r.nextInt((int) SIZE));
        offset = r.nextInt((int) (SIZE - length + 1));
        flags = r.nextBoolean() ? CMD_FLAG_REQ_ONE : 0;
        errors = Set.of(0);
        break;
      }
      default: {
        cmd = CMD_READ;
        length = 1 + r.nextInt(256 << 10);
        offset = r.nextInt((int) (SIZE - length + 1));
        flags = structured && r.nextBoolean() ? CMD_FLAG_DF : 0;
        errors = Set.of(0);
      }
    }
    byte[] payload = cmd == CMD_WRITE ? random(r, (int) length) : null;
    c.request(flags, cmd, cookie, offset, length, payload);
    String what = kind + " " + commandName(cmd) + (flags == 0 ? "" : " flags 0x" + Integer.toHexString(flags)) + " at "
        + Long.toUnsignedString(offset) + "+" + length;
    return new Expect(what, cmd, offset, length, flags, errors);
  }

  private static boolean isWrite(int cmd) {
    return cmd == CMD_WRITE || cmd == CMD_TRIM || cmd == CMD_WRITE_ZEROES;
  }

  /** Past the end: EINVAL; ENOSPC too for writes (doc/proto.md prefers it); EPERM on a read-only export. */
  private static Set<Integer> rangeErrors(int cmd, boolean readOnly) {
    Set<Integer> s = new TreeSet<>(Set.of(EINVAL));
    if (cmd == CMD_WRITE || cmd == CMD_WRITE_ZEROES) {
      s.add(ENOSPC);
    }
    if (readOnly && isWrite(cmd)) {
      s.add(EPERM);
    }
    return s;
  }

  private static Set<Integer> set(int... codes) {
    Set<Integer> s = new TreeSet<>();
    for (int c : codes) {
      s.add(c);
    }
    return s;
  }

  private void check(Expect e, Reply rep, boolean snap, RawNbd c) {
    assertTrue(e != null, "reply for a cookie never sent: " + rep);
    assertEquals(e.command(), rep.command(), "command of " + rep);
    assertTrue(e.errors().contains(rep.error()), e.what() + ": got " + rep + ", expected one of " + e.errors());
    if (rep.error() != 0) {
      return;
    }
    byte[] model = snap ? snapshot : origin;
    if (e.command() == CMD_READ) {
      assertArrayEquals(Arrays.copyOfRange(model, (int) e.offset(), (int) (e.offset() + e.length())), rep.data(), e.what() + ": data");
    } else if (e.command() == CMD_BLOCK_STATUS && e.length() > 0) {
      checkExtents(e, rep, snap, c);
    }
  }

  /**
   * Block status answers are consistent with the data: every extent inside the request, none
   * empty, one with REQ_ONE; base:allocation's ZERO only over zeroes; shade:changed's
   * "unchanged" only where the export equals the snapshot.
   */
  private void checkExtents(Expect e, Reply rep, boolean snap, RawNbd c) {
    byte[] model = snap ? snapshot : origin;
    for (Map.Entry<Integer, List<long[]>> x : rep.extents().entrySet()) {
      String context = c.contexts().get(x.getKey());
      List<long[]> d = x.getValue();
      if ((e.flags() & CMD_FLAG_REQ_ONE) != 0) {
        assertEquals(1, d.size(), e.what() + ": " + context + " descriptors with REQ_ONE");
      }
      long pos = e.offset();
      for (long[] ext : d) {
        long end = pos + ext[0];
        assertTrue(end <= e.offset() + e.length(), e.what() + ": " + context + " extents run past the request to " + end);
        if (context.equals(CONTEXT_ALLOCATION) && (ext[1] & STATE_ZERO) != 0) {
          assertTrue(Arrays.equals(model, (int) pos, (int) end, new byte[(int) (end - pos)], 0, (int) (end - pos)), e.what() + ": " + context + " says [" + pos + ", " + end + ") reads as zeroes");
        }
        if (context.startsWith(CONTEXT_CHANGED) && (ext[1] & STATE_CHANGED) == 0) {
          assertTrue(Arrays.equals(model, (int) pos, (int) end, snapshot, (int) pos, (int) end),
              e.what() + ": " + context + " says [" + pos + ", " + end + ") is unchanged since " + SNAPSHOT);
        }
        pos = end;
      }
    }
  }

  /** A deliberately valid WRITE or WRITE_ZEROES on the origin; the model follows it. */
  private void validWrite(RawNbd c, Random r, StringBuilder t) throws IOException {
    long cookie = c.newCookie();
    boolean zeroes = r.nextInt(3) == 0;
    int len = 1 + r.nextInt(zeroes ? 1 << 20 : 128 << 10);
    int offset = r.nextInt((int) SIZE - len + 1);
    int flags = r.nextBoolean() ? CMD_FLAG_FUA : 0;
    byte[] data = zeroes ? new byte[len] : random(r, len);
    t.append("; valid ").append(zeroes ? "WRITE_ZEROES" : "WRITE").append(" at ").append(offset).append("+").append(len);
    c.request(flags, zeroes ? CMD_WRITE_ZEROES : CMD_WRITE, cookie, offset, len, zeroes ? null : data);
    Reply rep = c.await(cookie);
    assertEquals(0, rep.error(), "valid write: " + rep);
    System.arraycopy(data, 0, origin, offset, len);
    validWrites++;
  }

  private void ending(RawNbd c, Random r, StringBuilder t, boolean snap) throws IOException {
    Ending end = Ending.values()[r.nextInt(Ending.values().length)];
    t.append("; ").append(end);
    long cookie = r.nextLong();
    switch (end) {
      case DISC:
        c.disconnect();
        break;
      case BAD_MAGIC: {
        int[] magics = {REQUEST_MAGIC ^ (1 << r.nextInt(32)), r.nextInt(), SIMPLE_REPLY_MAGIC, STRUCTURED_REPLY_MAGIC,
            Integer.reverseBytes(REQUEST_MAGIC), 0};
        int magic = magics[r.nextInt(magics.length)];
        if (magic == REQUEST_MAGIC) {
          magic = ~REQUEST_MAGIC;
        }
        t.append(" 0x").append(Integer.toHexString(magic));
        c.sendRaw(RawNbd.header(magic, 0, r.nextBoolean() ? CMD_READ : CMD_WRITE, cookie, 0, 512));
        if (r.nextBoolean()) {
          c.sendRaw(random(r, 512));
        }
        expectClosed(c, "bad request magic");
        break;
      }
      case TOO_LONG_WRITE: {
        long length = MAX_PAYLOAD + 1 + (r.nextBoolean() ? r.nextInt(4096) : r.nextInt() & 0x7fff_ffffL);
        t.append(" of ").append(length).append(" bytes");
        c.sendRaw(RawNbd.header(REQUEST_MAGIC, 0, CMD_WRITE, cookie, 0, length));
        c.sendRaw(random(r, r.nextInt(64 << 10)));
        c.halfClose();
        // the server cannot skip 32 MiB and more: it may answer EINVAL, and must then close
        assertOnlyErrorFor(c.drainUntilClosed(), cookie, c.structured());
        break;
      }
      case TRUNCATED_HEADER: {
        byte[] h = RawNbd.header(REQUEST_MAGIC, 0, r.nextBoolean() ? CMD_READ : CMD_WRITE, cookie, 0, 4096);
        int cut = 1 + r.nextInt(REQUEST_HEADER - 1);
        t.append(" after ").append(cut).append(" bytes, then ");
        c.sendRaw(Arrays.copyOf(h, cut));
        endAbruptly(c, r, t);
        break;
      }
      case TRUNCATED_WRITE: {
        int length = 1 + r.nextInt(1 << 20);
        int offset = r.nextInt((int) SIZE - length + 1);
        int sent = r.nextInt(length);
        t.append(" at ").append(offset).append("+").append(length).append(" after ").append(sent).append(" bytes, then ");
        c.sendRaw(RawNbd.header(REQUEST_MAGIC, 0, CMD_WRITE, cookie, offset, length));
        c.sendRaw(random(r, sent));
        endAbruptly(c, r, t);
        break;
      }
      case RESET_IN_FLIGHT: {
        int n = 1 + r.nextInt(8);
        t.append(" with ").append(n).append(" reads in flight");
        for (int i = 0; i < n; i++) {
          int length = 1 + r.nextInt(1 << 20);
          c.request(0, CMD_READ, c.newCookie(), r.nextInt((int) SIZE - length + 1), length, null);
        }
        c.abort();
        break;
      }
      default:
        c.abort();
    }
  }

  /** What came before the close is nothing, or one error reply to {@code cookie}. */
  private static void assertOnlyErrorFor(byte[] got, long cookie, boolean structured) {
    if (got.length == 0) {
      return;
    }
    ByteBuffer b = ByteBuffer.wrap(got);
    int magic = b.getInt();
    if (magic == SIMPLE_REPLY_MAGIC) {
      assertTrue(b.getInt() != 0 && b.getLong() == cookie && !b.hasRemaining(), "oversized WRITE answered with " + got.length + " bytes");
    } else {
      assertTrue(structured && magic == STRUCTURED_REPLY_MAGIC, "oversized WRITE answered with magic 0x" + Integer.toHexString(magic));
      b.getShort();
      int type = Short.toUnsignedInt(b.getShort());
      assertTrue((type & 0x8000) != 0 && b.getLong() == cookie, "oversized WRITE answered with chunk type " + type);
    }
  }

  private static byte[] random(Random r, int n) {
    byte[] b = new byte[n];
    r.nextBytes(b);
    return b;
  }
}
