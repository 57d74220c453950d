package dev.shade.nbd.tls;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A throwaway PKI made with {@code openssl} (or GnuTLS {@code certtool}): a CA, a server
 * certificate for localhost and 127.0.0.1 with its key as PKCS#8 and as PKCS#1, a client
 * certificate from that CA and one from another CA, laid out as libnbd's
 * {@code tls-certificates} directories want them.
 */
final class TestPki {
  /*
   * libnbd (nbd_set_tls_certificates) reads DIR/ca-cert.pem to verify the server and, when
   * present, DIR/client-cert.pem and DIR/client-key.pem to present itself. The tool is chosen
   * by -Dshade.tls.tool=openssl|certtool, else openssl when it runs, else certtool; the test is
   * skipped (with the reason) when neither works. Keys are RSA 2048; certificates last 2 days.
   */
  final String tool;
  final Path caCert;
  final Path serverCert;
  /** The server key as PKCS#8 ({@code BEGIN PRIVATE KEY}). */
  final Path serverKeyPkcs8;
  /** The same key as PKCS#1 ({@code BEGIN RSA PRIVATE KEY}). */
  final Path serverKeyPkcs1;
  /** ca-cert.pem, client-cert.pem, client-key.pem: a client the server trusts. */
  final Path clientDir;
  /** ca-cert.pem only: a client without a certificate. */
  final Path noCertDir;
  /** ca-cert.pem and a client certificate signed by another CA. */
  final Path otherCaDir;

  private final Path dir;

  private TestPki(Path dir, String tool) {
    this.dir = dir;
    this.tool = tool;
    this.caCert = dir.resolve("ca-cert.pem");
    this.serverCert = dir.resolve("server-cert.pem");
    this.serverKeyPkcs8 = dir.resolve("server-key.pem");
    this.serverKeyPkcs1 = dir.resolve("server-key-pkcs1.pem");
    this.clientDir = dir.resolve("client");
    this.noCertDir = dir.resolve("no-cert");
    this.otherCaDir = dir.resolve("other-ca");
  }

  /** Makes the PKI in {@code dir}, or aborts the calling test with the reason it cannot. */
  static TestPki create(Path dir) throws IOException, InterruptedException {
    String wanted = System.getProperty("shade.tls.tool", "");
    String tool = null;
    for (String t : wanted.isEmpty() ? List.of("openssl", "certtool") : List.of(wanted)) {
      if (works(t)) {
        tool = t;
        break;
      }
    }
    assumeTrue(tool != null, "neither openssl nor certtool (gnutls-bin) can be run to make test certificates");
    TestPki pki = new TestPki(dir, tool);
    pki.make();
    return pki;
  }

  private static boolean works(String tool) throws InterruptedException {
    try {
      // openssl takes "version" (OpenSSL 3.0 refuses "--version"); certtool takes "--version"
      Process p = new ProcessBuilder(tool, tool.equals("openssl") ? "version" : "--version").redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (IOException e) {
      return false;
    }
  }

  private void make() throws IOException, InterruptedException {
    Files.createDirectories(clientDir);
    Files.createDirectories(noCertDir);
    Files.createDirectories(otherCaDir);
    Path caKey = dir.resolve("ca-key.pem");
    Path otherCaCert = dir.resolve("other-ca-cert.pem");
    Path otherCaKey = dir.resolve("other-ca-key.pem");
    boolean openssl = tool.equals("openssl");
    if (openssl) {
      opensslCa(caKey, caCert, "shade test CA");
      opensslCa(otherCaKey, otherCaCert, "shade other CA");
      opensslLeaf(serverKeyPkcs8, serverCert, caKey, caCert, "localhost",
          "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n");
      String client = "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n";
      opensslLeaf(clientDir.resolve("client-key.pem"), clientDir.resolve("client-cert.pem"), caKey, caCert, "backup-server", client);
      opensslLeaf(otherCaDir.resolve("client-key.pem"), otherCaDir.resolve("client-cert.pem"), otherCaKey, otherCaCert, "backup-server", client);
      // OpenSSL 3 writes PKCS#8 unless told -traditional; 1.1 writes PKCS#1 and has no such flag
      if (!tryRun("openssl", "rsa", "-in", str(serverKeyPkcs8), "-traditional", "-out", str(serverKeyPkcs1))) {
        run("openssl", "rsa", "-in", str(serverKeyPkcs8), "-out", str(serverKeyPkcs1));
      }
    } else {
      certtoolCa(caKey, caCert, "shade test CA");
      certtoolCa(otherCaKey, otherCaCert, "shade other CA");
      certtoolLeaf(serverKeyPkcs1, serverCert, caKey, caCert,
          "cn = \"localhost\"\ndns_name = \"localhost\"\nip_address = \"127.0.0.1\"\ntls_www_server\nsigning_key\nencryption_key\nexpiration_days = 2\n");
      String client = "cn = \"backup-server\"\ntls_www_client\nsigning_key\nencryption_key\nexpiration_days = 2\n";
      certtoolLeaf(clientDir.resolve("client-key.pem"), clientDir.resolve("client-cert.pem"), caKey, caCert, client);
      certtoolLeaf(otherCaDir.resolve("client-key.pem"), otherCaDir.resolve("client-cert.pem"), otherCaKey, otherCaCert, client);
      run("certtool", "--to-p8", "--password", "", "--load-privkey", str(serverKeyPkcs1), "--outfile", str(serverKeyPkcs8));
    }
    for (Path d : List.of(clientDir, noCertDir, otherCaDir)) {
      Files.copy(caCert, d.resolve("ca-cert.pem"));
    }
    requireBlock(serverKeyPkcs8, "-----BEGIN PRIVATE KEY-----");
    requireBlock(serverKeyPkcs1, "-----BEGIN RSA PRIVATE KEY-----");
  }

  private void opensslCa(Path key, Path cert, String cn) throws IOException, InterruptedException {
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
        "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  }

  private void opensslLeaf(Path key, Path cert, Path caKey, Path caCert, String cn, String extensions)
      throws IOException, InterruptedException {
    Path csr = dir.resolve(cert.getFileName() + "." + cn + ".csr");
    Path ext = dir.resolve(cert.getFileName() + "." + cn + ".ext");
    Path raw = dir.resolve(cert.getFileName() + "." + cn + ".key");
    Files.writeString(ext, extensions);
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(raw), "-out", str(csr), "-subj", "/CN=" + cn);
    run("openssl", "pkcs8", "-topk8", "-nocrypt", "-in", str(raw), "-out", str(key));
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(caCert), "-CAkey", str(caKey),
        "-set_serial", "0x" + Long.toHexString(System.nanoTime() & Long.MAX_VALUE), "-days", "2", "-extfile", str(ext), "-out", str(cert));
  }

  private void certtoolCa(Path key, Path cert, String cn) throws IOException, InterruptedException {
    Path template = dir.resolve(cert.getFileName() + ".info");
    Files.writeString(template, "cn = \"" + cn + "\"\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 2\n");
    run("certtool", "--generate-privkey", "--key-type=rsa", "--bits=2048", "--no-text", "--outfile", str(key));
    run("certtool", "--generate-self-signed", "--load-privkey", str(key), "--template", str(template), "--outfile", str(cert));
  }

  private void certtoolLeaf(Path key, Path cert, Path caKey, Path caCert, String template)
      throws IOException, InterruptedException {
    Path t = dir.resolve(cert.getParent().getFileName() + "-" + cert.getFileName() + ".info");
    Files.writeString(t, template);
    run("certtool", "--generate-privkey", "--key-type=rsa", "--bits=2048", "--no-text", "--outfile", str(key));
    run("certtool", "--generate-certificate", "--load-privkey", str(key), "--load-ca-certificate", str(caCert),
        "--load-ca-privkey", str(caKey), "--template", str(t), "--outfile", str(cert));
  }

  private static void requireBlock(Path file, String begin) throws IOException {
    String text = Files.readString(file, StandardCharsets.US_ASCII);
    if (!text.contains(begin)) {
      throw new IOException(file + " does not hold " + begin + ":\n" + text);
    }
  }

  private static String str(Path p) {
    return p.toString();
  }

  private boolean tryRun(String... cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(
        Path.of("/dev/null").toFile())).start();
    p.getInputStream().readAllBytes();
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      return false;
    }
    return p.exitValue() == 0;
  }

  private void run(String... cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(
        Path.of("/dev/null").toFile())).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IOException("timed out: " + String.join(" ", cmd));
    }
    if (p.exitValue() != 0) {
      throw new IOException(String.join(" ", cmd) + " exited with " + p.exitValue() + ":\n" + out);
    }
  }
}
