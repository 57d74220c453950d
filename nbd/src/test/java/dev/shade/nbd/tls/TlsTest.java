package dev.shade.nbd.tls;

import static dev.shade.nbd.protocol.Nbd.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.shade.nbd.client.NbdClient;
import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.nbd.server.NbdServer;
import dev.shade.nbd.testing.RawNbd.OptionReply;
import dev.shade.nbd.testing.RawNbd;
import dev.shade.nbd.testing.TestCatalog;
import dev.shade.testing.Tools;
import dev.shade.testing.nbd.TestPki;
import dev.shade.testing.nbd.Uris;
import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.opentest4j.TestAbortedException;

/**
 * TLS with client certificates (FORCEDTLS): libnbd's nbdinfo and a raw client get in with a
 * certificate from the configured CA and in no other way; non-loopback listeners need TLS; PEM
 * keys load as PKCS#8 and PKCS#1.
 */
class TlsTest {
  private static final long SIZE = 8L << 20;

  @TempDir
  static Path pkiDir;
  private static TestPki pki;
  /** Why no PKI could be made, or null. */
  private static String noPki;

  @TempDir
  Path tmp;
  private TestCatalog catalog;
  private NbdServer server;
  private byte[] model;

  @BeforeAll
  static void makePki() throws Exception {
    try {
      pki = TestPki.create(pkiDir);
    } catch (TestAbortedException e) {
      noPki = e.getMessage(); // the tests that need certificates skip with this reason
    }
  }

  private static void requirePki() {
    assumeTrue(pki != null, noPki);
  }

  @BeforeEach
  void setUp() throws IOException {
    catalog = new TestCatalog("vol", SIZE);
    model = new byte[(int) SIZE];
    new Random(5).nextBytes(model);
    System.arraycopy(model, 0, catalog.disk(), 0, model.length);
    catalog.snapshot("s1");
  }

  @AfterEach
  void tearDown() throws IOException {
    if (server != null) {
      server.close();
    }
  }

  private InetSocketAddress start(Path serverKey, Duration handshakeTimeout) throws IOException {
    requirePki();
    server = NbdServer.start(catalog, new NbdServer.Config()
        .listen(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))
        .tls(pki.serverCert, serverKey, pki.caCert)
        .handshakeTimeout(handshakeTimeout));
    return server.tcpAddress();
  }

  private InetSocketAddress start() throws IOException {
    requirePki();
    return start(pki.serverKeyPkcs8, Duration.ofSeconds(5));
  }

  private static String uri(InetSocketAddress a, String export, Path certificates) {
    return "nbds://127.0.0.1:" + a.getPort() + "/" + export + "?tls-certificates=" + certificates;
  }

  private void awaitNoConnections() throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (server.connectionCount() != 0) {
      if (System.nanoTime() > deadline) {
        fail("the server still counts " + server.connectionCount() + " connections");
      }
      Thread.sleep(10);
    }
  }

  // ------------------------------------------------------------------ libnbd

  @ParameterizedTest(name = "server key {0}")
  @ValueSource(strings = {"PKCS#8", "PKCS#1"})
  void nbdinfo_withClientCertificate_connectsOverTls(String keyFormat) throws Exception {
    requireNbdinfo();
    requirePki();
    InetSocketAddress a = start(keyFormat.equals("PKCS#1") ? pki.serverKeyPkcs1 : pki.serverKeyPkcs8, Duration.ofSeconds(5));
    Result size = run("nbdinfo", "--size", uri(a, "vol", pki.clientDir));
    assertEquals(0, size.exit, "nbdinfo --size with a client certificate (" + pki.tool + "): " + size);
    assertEquals(String.valueOf(SIZE), size.out.trim(), "size shown by nbdinfo");
    Result json = run("nbdinfo", "--json", uri(a, "vol@s1", pki.clientDir));
    assertEquals(0, json.exit, "nbdinfo --json of the snapshot: " + json);
    assertTrue(Pattern.compile("\"TLS\":\\s*true").matcher(json.out).find(), "nbdinfo says TLS was used: " + json.out);
    assertTrue(Pattern.compile("\"export-size\":\\s*" + SIZE).matcher(json.out).find(), "snapshot size: " + json.out);
    assertTrue(Pattern.compile("\"is_read_only\":\\s*true").matcher(json.out).find(), "snapshot is read-only: " + json.out);
    awaitNoConnections();
  }

  @Test
  void nbdinfo_withoutClientCertificate_isRefused() throws Exception {
    requireNbdinfo();
    InetSocketAddress a = start();
    Result r = run("nbdinfo", "--size", uri(a, "vol", pki.noCertDir));
    assertNotEquals(0, r.exit, "nbdinfo without a client certificate got in: " + r);
    assertEquals("", r.out.trim(), "nbdinfo without a client certificate printed a size");
    assertTrue(r.err.contains("TLS"), "nbdinfo without a client certificate fails in TLS, not before: " + r);
    stillServes(a);
  }

  @Test
  void nbdinfo_withClientCertificateFromAnotherCa_isRefused() throws Exception {
    requireNbdinfo();
    InetSocketAddress a = start();
    Result r = run("nbdinfo", "--size", uri(a, "vol", pki.otherCaDir));
    assertNotEquals(0, r.exit, "nbdinfo with a certificate from another CA got in: " + r);
    assertEquals("", r.out.trim(), "nbdinfo with a certificate from another CA printed a size");
    assertTrue(r.err.contains("TLS"), "nbdinfo with a certificate from another CA fails in TLS, not before: " + r);
    stillServes(a);
  }

  @Test
  void nbdinfo_plaintext_isRefused() throws Exception {
    requireNbdinfo();
    InetSocketAddress a = start();
    Result r = run("nbdinfo", "--size", "nbd://127.0.0.1:" + a.getPort() + "/vol");
    assertNotEquals(0, r.exit, "plaintext nbdinfo got in: " + r);
    assertTrue(r.err.contains("TLS"), "nbdinfo's error names TLS: " + r);
    stillServes(a);
  }

  /** The refusal did not upset the server: connections drop to 0 and a good client gets in. */
  private void stillServes(InetSocketAddress a) throws Exception {
    awaitNoConnections();
    Result ok = run("nbdinfo", "--size", uri(a, "vol", pki.clientDir));
    assertEquals(0, ok.exit, "a good client after the refusal: " + ok);
    awaitNoConnections();
  }

  // ------------------------------------------------------------------ raw client

  @Test
  void rawClient_withClientCertificate_readsAndWritesOverTls() throws Exception {
    InetSocketAddress a = start();
    SSLContext ctx = Pem.serverContext(pki.clientDir.resolve("client-cert.pem"), pki.clientDir.resolve("client-key.pem"), pki.caCert);
    byte[] data = new byte[(3 << 20) + 12345];
    new Random(9).nextBytes(data);
    long at = 777_777;
    try (RawNbd c = tlsClient(a, ctx)) { // what no correct client sends
      List<OptionReply> again = c.negotiate(OPT_STARTTLS, new byte[0]);
      assertEquals(REP_ERR_INVALID, again.get(0).type(), "STARTTLS once TLS is up (the protocol says MUST be ERR_INVALID): " + again);
      c.go("vol");
      c.disconnect();
    }
    try (NbdClient c = NbdClient.connect(NbdClientConfig.builder(Uris.tls(a, "vol", null)).sslContext(ctx).build())) {
      c.write(at, data);
      assertArrayEquals(data, c.read(at, data.length), "read back over TLS");
    }
    byte[] stored = Arrays.copyOfRange(catalog.disk(), (int) at, (int) at + data.length);
    assertArrayEquals(data, stored, "what the disk holds after the write over TLS");
    NbdClientConfig snapshot = NbdClientConfig.builder(Uris.tls(a, "vol@s1", pki.clientDir)).structuredReplies(false).build();
    try (NbdClient c = NbdClient.connect(snapshot)) {
      assertArrayEquals(Arrays.copyOfRange(model, (int) at, (int) at + data.length), c.read(at, data.length), "snapshot over TLS, simple replies");
    }
    awaitNoConnections();
  }

  private static RawNbd tlsClient(InetSocketAddress a, SSLContext ctx) throws IOException {
    RawNbd c = RawNbd.connect(a);
    try {
      c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
      List<OptionReply> ack = c.negotiate(OPT_STARTTLS, new byte[0]);
      assertEquals(REP_ACK, ack.get(0).type(), "STARTTLS: " + ack);
      c.startTls(ctx);
      return c;
    } catch (IOException | RuntimeException | AssertionError e) {
      c.close();
      throw e;
    }
  }

  @Test
  void rawClient_withoutOrWithForeignCertificate_neverGetsAnAnswer() throws Exception {
    InetSocketAddress a = start();
    SSLContext trustOnly = trustOnly(pki.caCert);
    SSLContext foreign = Pem.serverContext(pki.otherCaDir.resolve("client-cert.pem"), pki.otherCaDir.resolve("client-key.pem"), pki.caCert);
    for (SSLContext ctx : List.of(trustOnly, foreign)) {
      try (RawNbd c = RawNbd.connect(a)) {
        c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
        assertEquals(REP_ACK, c.negotiate(OPT_STARTTLS, new byte[0]).get(0).type());
        String who = ctx == trustOnly ? "a client without a certificate" : "a client with a certificate from another CA";
        try {
          c.startTls(ctx);
        } catch (IOException refusedInHandshake) {
          continue;
        }
        // with TLS 1.3 the client may finish its side of the handshake before the server rejects it
        c.sendRaw(RawNbd.option(IHAVEOPT, OPT_GO, RawNbd.infoRequest("vol").length, RawNbd.infoRequest("vol")));
        assertEquals(0, c.drainUntilClosed().length, "the server answered " + who);
      }
    }
    awaitNoConnections();
  }

  @Test
  void plaintextOptions_getTlsRequired_exportNameCloses() throws Exception {
    InetSocketAddress a = start();
    try (RawNbd c = RawNbd.connect(a)) {
      c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
      int[] options = {OPT_GO, OPT_INFO, OPT_LIST, OPT_STRUCTURED_REPLY, OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT, 42};
      byte[][] data = {RawNbd.infoRequest("vol"), RawNbd.infoRequest("vol"), new byte[0], new byte[0],
          RawNbd.metaContextRequest("vol"), RawNbd.metaContextRequest("vol", CONTEXT_ALLOCATION), new byte[3]};
      for (int i = 0; i < options.length; i++) {
        List<OptionReply> r = c.negotiate(options[i], data[i]);
        assertEquals(1, r.size(), "option " + options[i] + " before TLS: " + r);
        assertEquals(REP_ERR_TLS_REQD, r.get(0).type(), "option " + options[i] + " before TLS (FORCEDTLS: MUST be ERR_TLS_REQD): " + r);
      }
      c.sendOption(OPT_EXPORT_NAME, "vol".getBytes(StandardCharsets.UTF_8));
      assertEquals(0, c.drainUntilClosed().length, "EXPORT_NAME before TLS must end the session without an answer");
    }
    try (RawNbd c = RawNbd.connect(a)) {
      c.handshake(FLAG_C_FIXED_NEWSTYLE);
      List<OptionReply> r = c.negotiate(OPT_ABORT, new byte[0]);
      assertEquals(REP_ACK, r.get(0).type(), "ABORT before TLS: " + r);
      assertEquals(0, c.drainUntilClosed().length, "bytes after ABORT");
    }
    awaitNoConnections();
  }

  @Test
  void starttls_silentClient_isClosedByTheHandshakeTimeout() throws Exception {
    requirePki();
    InetSocketAddress a = start(pki.serverKeyPkcs8, Duration.ofSeconds(1));
    try (RawNbd c = RawNbd.connect(a)) {
      long t0 = System.nanoTime();
      c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
      assertEquals(REP_ACK, c.negotiate(OPT_STARTTLS, new byte[0]).get(0).type());
      // no ClientHello: the server waits inside the TLS handshake
      assertEquals(0, c.drainUntilClosed().length, "bytes to a client that never started TLS");
      long ms = (System.nanoTime() - t0) / 1_000_000;
      assertTrue(ms >= 900 && ms < 8000, "closed after " + ms + " ms with a 1 s handshake timeout");
    }
    awaitNoConnections();
  }

  @Test
  void starttls_garbageInsteadOfClientHello_isClosed() throws Exception {
    requirePki();
    InetSocketAddress a = start(pki.serverKeyPkcs8, Duration.ofSeconds(30));
    for (byte[] garbage : List.of("GET / HTTP/1.1\r\n\r\n".getBytes(StandardCharsets.US_ASCII),
        new byte[] {0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5}, RawNbd.header(REQUEST_MAGIC, 0, CMD_READ, 1, 0, 512))) {
      try (RawNbd c = RawNbd.connect(a)) {
        c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
        assertEquals(REP_ACK, c.negotiate(OPT_STARTTLS, new byte[0]).get(0).type());
        long t0 = System.nanoTime();
        c.sendRaw(garbage);
        byte[] got = c.drainUntilClosed(); // at most a TLS alert
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(got.length == 0 || got[0] == 0x15, "answer to garbage instead of a ClientHello is not a TLS alert: " + got.length + " bytes");
        assertTrue(ms < 5000, "closed " + ms + " ms after garbage instead of a ClientHello");
      }
    }
    awaitNoConnections();
  }

  @Test
  void starttls_withBytesSentBehindItBeforeTheReply_isClosedAtOnce() throws Exception {
    // Bytes a client sends after STARTTLS but before the server's reply must not be taken as
    // if they had come through TLS (the plaintext injection of CVE-2011-0411). They would
    // sit in the server's read-ahead, unseen by the TLS layer, which would then wait for the
    // whole 30 s handshake timeout: the server closes at once instead.
    requirePki();
    InetSocketAddress a = start(pki.serverKeyPkcs8, Duration.ofSeconds(30));
    try (RawNbd c = RawNbd.connect(a)) {
      c.handshake(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
      byte[] clientHelloStart = {0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5};
      ByteBuffer b = ByteBuffer.allocate(16 + clientHelloStart.length);
      b.putLong(IHAVEOPT).putInt(OPT_STARTTLS).putInt(0).put(clientHelloStart);
      long t0 = System.nanoTime();
      c.sendRaw(b.array());
      byte[] got = c.drainUntilClosed();
      long ms = (System.nanoTime() - t0) / 1_000_000;
      assertTrue(ms < 5000, "closed " + ms + " ms after STARTTLS with bytes behind it");
      assertTrue(got.length <= 20, "at most the STARTTLS reply before closing, got " + got.length + " bytes");
    }
    awaitNoConnections();
  }

  private static SSLContext trustOnly(Path ca) throws IOException, GeneralSecurityException {
    KeyStore ts = KeyStore.getInstance("PKCS12");
    ts.load(null, null);
    ts.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(Files.readAllBytes(ca))));
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(ts);
    SSLContext ctx = SSLContext.getInstance("TLS");
    ctx.init(null, tmf.getTrustManagers(), null);
    return ctx;
  }

  // ------------------------------------------------------------------ configuration

  @Test
  void start_nonLoopbackWithoutTls_isRefused() {
    // never connected to: the server must refuse before binding
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NbdServer.start(catalog,
        new NbdServer.Config().listen(new InetSocketAddress("0.0.0.0", 0))));
    assertTrue(e.getMessage().contains("0.0.0.0") && e.getMessage().contains("TLS"), "message names the address and TLS: " + e.getMessage());
  }

  @Test
  void start_incompleteTls_isRefused() {
    requirePki();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NbdServer.start(catalog,
        new NbdServer.Config().listen(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)).tls(pki.serverCert, pki.serverKeyPkcs8, null)));
    assertTrue(e.getMessage().contains("TLS"), e.getMessage());
  }

  @Test
  void pem_pkcs8AndPkcs1Keys_load() throws Exception {
    requirePki();
    assertTrue(Files.readString(pki.serverKeyPkcs8).contains("-----BEGIN PRIVATE KEY-----"), "PKCS#8 key file");
    assertTrue(Files.readString(pki.serverKeyPkcs1).contains("-----BEGIN RSA PRIVATE KEY-----"), "PKCS#1 key file");
    assertNotNull(Pem.serverContext(pki.serverCert, pki.serverKeyPkcs8, pki.caCert), "context from a PKCS#8 key");
    assertNotNull(Pem.serverContext(pki.serverCert, pki.serverKeyPkcs1, pki.caCert), "context from a PKCS#1 key");
  }

  @Test
  void pem_missingOrWrongFiles_nameTheFile() {
    requirePki();
    Path missing = tmp.resolve("nope.pem");
    IOException e = assertThrows(IOException.class, () -> Pem.serverContext(pki.serverCert, missing, pki.caCert));
    assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
    IOException noKey = assertThrows(IOException.class, () -> Pem.serverContext(pki.serverCert, pki.serverCert, pki.caCert));
    assertTrue(noKey.getMessage().contains(pki.serverCert.toString()), noKey.getMessage());
  }

  // ------------------------------------------------------------------ processes

  /** What a finished program printed. */
  private record Result(int exit, String out, String err) {
    @Override
    public String toString() {
      return "exit " + exit + ", stdout [" + out.trim() + "], stderr [" + err.trim() + "]";
    }
  }

  private static void requireNbdinfo() {
    Tools.require("nbdinfo", "libnbd-bin");
  }

  private Result run(String... cmd) throws IOException, InterruptedException {
    Path out = Files.createTempFile(tmp, "out", ".txt");
    Path err = Files.createTempFile(tmp, "err", ".txt");
    Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile())
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
    if (!p.waitFor(30, TimeUnit.SECONDS)) {
      p.destroyForcibly().waitFor();
      fail(String.join(" ", cmd) + " did not finish within 30 s");
    }
    return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
  }
}
