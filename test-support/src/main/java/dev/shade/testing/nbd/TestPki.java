package dev.shade.testing.nbd;

import dev.shade.testing.Tools;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A throwaway PKI made with {@code openssl}: a CA, a server certificate for localhost and
 * 127.0.0.1 with its key as PKCS#8 and as PKCS#1, client certificates from that CA (key as
 * PKCS#8 and as PKCS#1) and from another CA, laid out as nbdkit, qemu and libnbd want the
 * directories.
 */
public final class TestPki {
  /*
   * libnbd (nbd_set_tls_certificates) reads DIR/ca-cert.pem to verify the server and, when
   * present, DIR/client-cert.pem and DIR/client-key.pem to present itself; nbdkit's
   * --tls-certificates and qemu's tls-creds-x509 dir read ca-cert.pem, server-cert.pem and
   * server-key.pem. Keys are RSA 2048; certificates last 2 days. openssl is checked with
   * "openssl version": OpenSSL 3 rejects --version ("Invalid command").
   */
  /** The tool that made the certificates, for messages. */
  public final String tool = "openssl";
  /** The CA that signs the server's and the trusted client's certificates. */
  public final Path caCert;
  /** ca-cert.pem, server-cert.pem, server-key.pem (PKCS#8). */
  public final Path serverDir;
  /** The server certificate, for localhost and 127.0.0.1. */
  public final Path serverCert;
  /** The server key as PKCS#8 ({@code BEGIN PRIVATE KEY}). */
  public final Path serverKeyPkcs8;
  /** The same key as PKCS#1 ({@code BEGIN RSA PRIVATE KEY}). */
  public final Path serverKeyPkcs1;
  /** ca-cert.pem, client-cert.pem, client-key.pem (PKCS#8): a client the server trusts. */
  public final Path clientDir;
  /** The same client with its key as PKCS#1. */
  public final Path clientPkcs1Dir;
  /** ca-cert.pem only: a client without a certificate. */
  public final Path noCertDir;
  /** ca-cert.pem and a client certificate signed by another CA. */
  public final Path otherCaDir;
  /** A CA that did not sign the server's certificate, and a good client certificate. */
  public final Path wrongServerCaDir;
  /** Where everything is made. */
  private final Path dir;
  /** IP addresses the server certificate names besides 127.0.0.1. */
  private final List<String> extraIps;

  private TestPki(Path dir, List<String> extraIps) {
    this.dir = dir;
    this.extraIps = List.copyOf(extraIps);
    this.caCert = dir.resolve("ca-cert.pem");
    this.serverDir = dir.resolve("server");
    this.serverCert = serverDir.resolve("server-cert.pem");
    this.serverKeyPkcs8 = serverDir.resolve("server-key.pem");
    this.serverKeyPkcs1 = dir.resolve("server-key-pkcs1.pem");
    this.clientDir = dir.resolve("client");
    this.clientPkcs1Dir = dir.resolve("client-pkcs1");
    this.noCertDir = dir.resolve("no-cert");
    this.otherCaDir = dir.resolve("other-ca");
    this.wrongServerCaDir = dir.resolve("wrong-server-ca");
  }

  /**
   * Makes the PKI in {@code dir}; skips the calling test when openssl cannot run (fails it
   * under {@code CI=true}, see {@link Tools}).
   */
  public static TestPki create(Path dir) throws IOException, InterruptedException {
    return create(dir, List.of());
  }

  /**
   * {@link #create(Path)} with a server certificate that also names {@code serverIps} (addresses
   * of a test network, say), so clients that check the name (as HTTPS does) accept it there.
   */
  public static TestPki create(Path dir, List<String> serverIps) throws IOException, InterruptedException {
    if (!works()) {
      Tools.unavailable("openssl (Debian: apt-get install openssl; bin/test installs it) cannot be run to make test certificates");
    }
    TestPki pki = new TestPki(dir, serverIps);
    pki.make();
    return pki;
  }

  private static boolean works() throws InterruptedException {
    Path openssl = Tools.find("openssl").orElse(null);
    if (openssl == null) {
      return false;
    }
    try {
      Process p = new ProcessBuilder(openssl.toString(), "version").redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (IOException e) {
      return false;
    }
  }

  private void make() throws IOException, InterruptedException {
    for (Path d : List.of(serverDir, clientDir, clientPkcs1Dir, noCertDir, otherCaDir, wrongServerCaDir)) {
      Files.createDirectories(d);
    }
    Path caKey = dir.resolve("ca-key.pem");
    Path otherKey = dir.resolve("other-ca-key.pem");
    Path otherCert = dir.resolve("other-ca-cert.pem");
    ca(caKey, caCert, "shade test CA");
    ca(otherKey, otherCert, "shade other CA");
    leaf(serverKeyPkcs8, serverCert, caKey, caCert, "localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1" + extraIps.stream().map(ip -> ",IP:" + ip).reduce("", String::concat)
            + "\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n");
    String client = "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n";
    leaf(clientDir.resolve("client-key.pem"), clientDir.resolve("client-cert.pem"), caKey, caCert, "backup-server", client);
    leaf(otherCaDir.resolve("client-key.pem"), otherCaDir.resolve("client-cert.pem"), otherKey, otherCert, "backup-server", client);
    pkcs1(serverKeyPkcs8, serverKeyPkcs1);
    pkcs1(clientDir.resolve("client-key.pem"), clientPkcs1Dir.resolve("client-key.pem"));
    Files.copy(clientDir.resolve("client-cert.pem"), clientPkcs1Dir.resolve("client-cert.pem"));
    Files.copy(clientDir.resolve("client-cert.pem"), wrongServerCaDir.resolve("client-cert.pem"));
    Files.copy(clientDir.resolve("client-key.pem"), wrongServerCaDir.resolve("client-key.pem"));
    for (Path d : List.of(serverDir, clientDir, clientPkcs1Dir, noCertDir, otherCaDir)) {
      Files.copy(caCert, d.resolve("ca-cert.pem"));
    }
    Files.copy(otherCert, wrongServerCaDir.resolve("ca-cert.pem"));
    requireBlock(serverKeyPkcs8, "-----BEGIN PRIVATE KEY-----");
    requireBlock(serverKeyPkcs1, "-----BEGIN RSA PRIVATE KEY-----");
    requireBlock(clientPkcs1Dir.resolve("client-key.pem"), "-----BEGIN RSA PRIVATE KEY-----");
  }

  private void ca(Path key, Path cert, String cn) throws IOException, InterruptedException {
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.toString(), "-out", cert.toString(), "-days", "2",
        "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  }

  private void leaf(Path key, Path cert, Path caKey, Path caCert, String cn, String ext) throws IOException, InterruptedException {
    String base = cert.getParent().getFileName() + "-" + cn;
    Path csr = dir.resolve(base + ".csr");
    Path extFile = dir.resolve(base + ".ext");
    Path raw = dir.resolve(base + ".key");
    Files.writeString(extFile, ext);
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", raw.toString(), "-out", csr.toString(), "-subj", "/CN=" + cn);
    run("openssl", "pkcs8", "-topk8", "-nocrypt", "-in", raw.toString(), "-out", key.toString());
    run("openssl", "x509", "-req", "-in", csr.toString(), "-CA", caCert.toString(), "-CAkey", caKey.toString(),
        "-set_serial", "0x" + Long.toHexString(System.nanoTime() & Long.MAX_VALUE), "-days", "2", "-extfile", extFile.toString(),
        "-out", cert.toString());
  }

  /** Writes {@code pkcs8} as PKCS#1: OpenSSL 3 needs -traditional for it, 1.1 does it without and has no such flag. */
  private void pkcs1(Path pkcs8, Path out) throws IOException, InterruptedException {
    try {
      run("openssl", "rsa", "-in", pkcs8.toString(), "-traditional", "-out", out.toString());
    } catch (IOException e) {
      run("openssl", "rsa", "-in", pkcs8.toString(), "-out", out.toString());
    }
  }

  private static void requireBlock(Path file, String begin) throws IOException {
    String text = Files.readString(file, StandardCharsets.US_ASCII);
    if (!text.contains(begin)) {
      throw new IOException(file + " does not hold " + begin + ":\n" + text);
    }
  }

  private void run(String... cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IOException("timed out: " + String.join(" ", cmd) + " in " + dir);
    }
    if (p.exitValue() != 0) {
      throw new IOException(String.join(" ", cmd) + " exited with " + p.exitValue() + " in " + dir + ":\n" + out);
    }
  }

  @Override
  public String toString() {
    return "test PKI in " + dir;
  }
}
