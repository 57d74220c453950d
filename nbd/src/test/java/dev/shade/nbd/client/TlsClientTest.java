package dev.shade.nbd.client;

import static org.junit.jupiter.api.Assertions.*;

import dev.shade.testing.nbd.Exec;
import dev.shade.testing.nbd.NbdServerProcess;
import dev.shade.testing.nbd.TestPki;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS against nbdkit ({@code --tls=require --tls-verify-peer}, Unix socket and TCP) and qemu-nbd
 * ({@code tls-creds-x509} with {@code verify-peer=on}, TCP): accepted with a client certificate
 * from the trusted CA, refused without one, with one from another CA, and when the client does
 * not trust the server's CA.
 */
class TlsClientTest {
  @TempDir static Path pkiDir;
  @TempDir Path dir;
  static TestPki pki;

  @BeforeAll
  static void pki() throws Exception {
    pki = TestPki.create(pkiDir);
  }

  private NbdServerProcess nbdkit(boolean tcp) throws Exception {
    String[] args = {"--tls=require", "--tls-certificates=" + pki.serverDir, "--tls-verify-peer", "memory", "4M"};
    return tcp ? NbdServerProcess.nbdkitTcp(dir, args) : NbdServerProcess.nbdkit(dir, args);
  }

  private static void roundTrip(NbdClient c) throws Exception {
    byte[] d = new byte[70000];
    new java.util.Random(5).nextBytes(d);
    c.write(12345, d);
    assertArrayEquals(d, c.read(12345, d.length));
  }

  @Test
  void nbdkitUnix_tlsCertificatesDir_works() throws Exception {
    try (NbdServerProcess s = nbdkit(false); NbdClient c = NbdClient.connect(s.uri("", true, pki.clientDir))) {
      roundTrip(c);
    }
  }

  @Test
  void nbdkitTcp_explicitFiles_pkcs1Key_works() throws Exception {
    try (NbdServerProcess s = nbdkit(true)) {
      NbdClientConfig cfg = NbdClientConfig.builder(s.uri("", true, null))
          .tlsCa(pki.clientPkcs1Dir.resolve("ca-cert.pem"))
          .tlsClientCertificate(pki.clientPkcs1Dir.resolve("client-cert.pem"), pki.clientPkcs1Dir.resolve("client-key.pem"))
          .metaContexts(dev.shade.nbd.protocol.Nbd.CONTEXT_ALLOCATION)
          .build();
      try (NbdClient c = NbdClient.connect(cfg)) {
        roundTrip(c);
        assertFalse(c.extents(dev.shade.nbd.protocol.Nbd.CONTEXT_ALLOCATION, 0, 4 << 20).isEmpty());
      }
      // many requests in flight through TLS, with a copy
      Path file = dir.resolve("tls-copy.img");
      ExportCopier.Result r = ExportCopier.builder(cfg).connections(2).build().copyTo(file);
      assertEquals(4 << 20, r.bytesTotal());
    }
  }

  @Test
  void nbdkit_plaintext_isToldTlsIsRequired() throws Exception {
    try (NbdServerProcess s = nbdkit(false)) {
      NbdHandshakeException e = assertThrows(NbdHandshakeException.class, () -> NbdClient.connect(s.uri("")));
      assertTrue(e.tlsRequired(), e.getMessage());
      assertTrue(e.getMessage().contains("nbds"), e.getMessage());
    }
  }

  @Test
  void nbdkit_withoutClientCertificate_isRefused() throws Exception {
    try (NbdServerProcess s = nbdkit(false)) {
      NbdHandshakeException e = assertThrows(NbdHandshakeException.class, () -> NbdClient.connect(s.uri("", true, pki.noCertDir)));
      assertTrue(e.getMessage().contains("certificate"), e.getMessage());
    }
  }

  @Test
  void nbdkit_clientCertificateOfAnotherCa_isRefused() throws Exception {
    try (NbdServerProcess s = nbdkit(false)) {
      NbdHandshakeException e = assertThrows(NbdHandshakeException.class, () -> NbdClient.connect(s.uri("", true, pki.otherCaDir)));
      assertTrue(e.getMessage().contains("certificate"), e.getMessage());
    }
  }

  @Test
  void nbdkit_serverNotSignedByTrustedCa_isRefusedByClient() throws Exception {
    try (NbdServerProcess s = nbdkit(true)) {
      NbdHandshakeException e = assertThrows(NbdHandshakeException.class, () -> NbdClient.connect(s.uri("", true, pki.wrongServerCaDir)));
      assertTrue(e.getMessage().contains("TLS"), e.getMessage());
    }
  }

  @Test
  void nbdkit_list_overTls() throws Exception {
    try (NbdServerProcess s = nbdkit(false)) {
      List<ListedExport> l = NbdClient.list(NbdClientConfig.builder(s.uri("", true, pki.clientDir)).build());
      assertFalse(l.isEmpty());
    }
  }

  private NbdServerProcess qemu(Path image) throws Exception {
    return NbdServerProcess.qemuNbdTcp(dir, "--object", "tls-creds-x509,id=tls0,dir=" + pki.serverDir + ",endpoint=server,verify-peer=on",
        "--tls-creds", "tls0", "-x", "snap", "-f", "raw", image.toString());
  }

  @Test
  void qemuNbd_tls_acceptsTrustedClientOnly() throws Exception {
    Exec.assumeTools("qemu-nbd");
    Path image = dir.resolve("disk.raw");
    try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(image.toFile(), "rw")) {
      f.setLength(4 << 20);
    }
    try (NbdServerProcess s = qemu(image)) {
      try (NbdClient c = NbdClient.connect(s.uri("snap", true, pki.clientDir))) {
        roundTrip(c);
      }
      assertThrows(NbdHandshakeException.class, () -> NbdClient.connect(s.uri("snap", true, pki.noCertDir)));
      assertThrows(NbdHandshakeException.class, () -> NbdClient.connect(s.uri("snap", true, pki.otherCaDir)));
      NbdHandshakeException plain = assertThrows(NbdHandshakeException.class, () -> NbdClient.connect(s.uri("snap")));
      assertTrue(plain.tlsRequired(), plain.getMessage());
    }
  }
}
