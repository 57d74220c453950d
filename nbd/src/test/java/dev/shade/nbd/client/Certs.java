package dev.shade.nbd.client;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A throwaway PKI made with {@code openssl} in a temporary directory: a CA, a server
 * certificate for localhost and 127.0.0.1, client certificates from that CA (key as PKCS#8 and
 * as PKCS#1) and from another CA, laid out as nbdkit, qemu and libnbd want the directories.
 */
final class Certs {
  /** ca-cert.pem, server-cert.pem, server-key.pem: nbdkit's --tls-certificates and qemu's tls-creds-x509 dir. */
  final Path serverDir;
  /** ca-cert.pem, client-cert.pem, client-key.pem (PKCS#8): a client the server trusts. */
  final Path clientDir;
  /** The same client with its key as PKCS#1 ({@code BEGIN RSA PRIVATE KEY}). */
  final Path clientPkcs1Dir;
  /** ca-cert.pem only: no client certificate. */
  final Path noCertDir;
  /** ca-cert.pem and a client certificate from another CA. */
  final Path otherCaDir;
  /** A CA that did not sign the server's certificate, and a good client certificate. */
  final Path wrongServerCaDir;
  private final Path dir;

  private Certs(Path dir) {
    this.dir = dir;
    this.serverDir = dir.resolve("server");
    this.clientDir = dir.resolve("client");
    this.clientPkcs1Dir = dir.resolve("client-pkcs1");
    this.noCertDir = dir.resolve("no-cert");
    this.otherCaDir = dir.resolve("other-ca");
    this.wrongServerCaDir = dir.resolve("wrong-server-ca");
  }

  static Certs create(Path dir) throws IOException, InterruptedException {
    Tools.require("openssl");
    Certs c = new Certs(dir);
    c.make();
    return c;
  }

  private void make() throws IOException, InterruptedException {
    for (Path d : List.of(serverDir, clientDir, clientPkcs1Dir, noCertDir, otherCaDir, wrongServerCaDir)) {
      Files.createDirectories(d);
    }
    Path caKey = dir.resolve("ca-key.pem");
    Path caCert = dir.resolve("ca-cert.pem");
    Path otherKey = dir.resolve("other-ca-key.pem");
    Path otherCert = dir.resolve("other-ca-cert.pem");
    ca(caKey, caCert, "shade client test CA");
    ca(otherKey, otherCert, "shade other CA");
    leaf(serverDir.resolve("server-key.pem"), serverDir.resolve("server-cert.pem"), caKey, caCert, "localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n");
    String client = "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n";
    leaf(clientDir.resolve("client-key.pem"), clientDir.resolve("client-cert.pem"), caKey, caCert, "backup-server", client);
    leaf(otherCaDir.resolve("client-key.pem"), otherCaDir.resolve("client-cert.pem"), otherKey, otherCert, "backup-server", client);
    run("openssl", "rsa", "-in", clientDir.resolve("client-key.pem").toString(), "-traditional", "-out",
        clientPkcs1Dir.resolve("client-key.pem").toString());
    Files.copy(clientDir.resolve("client-cert.pem"), clientPkcs1Dir.resolve("client-cert.pem"));
    Files.copy(clientDir.resolve("client-cert.pem"), wrongServerCaDir.resolve("client-cert.pem"));
    Files.copy(clientDir.resolve("client-key.pem"), wrongServerCaDir.resolve("client-key.pem"));
    for (Path d : List.of(serverDir, clientDir, clientPkcs1Dir, noCertDir, otherCaDir)) {
      Files.copy(caCert, d.resolve("ca-cert.pem"));
    }
    Files.copy(otherCert, wrongServerCaDir.resolve("ca-cert.pem"));
    if (!Files.readString(clientPkcs1Dir.resolve("client-key.pem")).contains("BEGIN RSA PRIVATE KEY")) {
      throw new IOException("openssl did not write a PKCS#1 key");
    }
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

  private void run(String... cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
        .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
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
