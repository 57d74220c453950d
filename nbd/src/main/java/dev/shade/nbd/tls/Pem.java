package dev.shade.nbd.tls;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * Builds the {@link SSLContext}s of both ends of an NBD connection from the PEM files operators
 * already have for nbdkit, qemu-nbd and libnbd: a certificate (chain), its private key (PKCS#8
 * or PKCS#1 RSA) and the CA that signs the other end's certificates.
 */
public final class Pem {
  private static final Pattern BLOCK = Pattern.compile(
      "-----BEGIN ([A-Z ]+)-----([A-Za-z0-9+/=\\s]+)-----END \\1-----");

  private Pem() {}

  /** A server's context: presents {@code cert}/{@code key} and requires clients signed by {@code ca}. */
  public static SSLContext serverContext(Path cert, Path key, Path ca) throws IOException {
    try {
      return context(keyManagers(cert, key, "server"), ca);
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot set up TLS from " + cert + ", " + key + " and " + ca + ": " + e.getMessage(), e);
    }
  }

  /**
   * A client's context: trusts servers signed by {@code ca} and presents {@code cert}/{@code key}
   * when they are not null.
   */
  public static SSLContext clientContext(Path ca, Path cert, Path key) throws IOException {
    try {
      return context(cert == null ? null : keyManagers(cert, key, "client"), ca);
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot set up TLS from CA " + ca + ", certificate " + cert + " and key " + key + ": "
          + e.getMessage(), e);
    }
  }

  private static KeyManager[] keyManagers(Path cert, Path key, String alias) throws IOException, GeneralSecurityException {
    List<X509Certificate> chain = certificates(cert);
    if (chain.isEmpty()) {
      throw new IOException("no certificate found in " + cert);
    }
    PrivateKey pk = privateKey(key, chain.get(0).getPublicKey().getAlgorithm());
    KeyStore ks = KeyStore.getInstance("PKCS12");
    ks.load(null, null);
    ks.setKeyEntry(alias, pk, new char[0], chain.toArray(new Certificate[0]));
    KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    kmf.init(ks, new char[0]);
    return kmf.getKeyManagers();
  }

  private static SSLContext context(KeyManager[] keys, Path ca) throws IOException, GeneralSecurityException {
    KeyStore ts = KeyStore.getInstance("PKCS12");
    ts.load(null, null);
    List<X509Certificate> cas = certificates(ca);
    if (cas.isEmpty()) {
      throw new IOException("no CA certificate found in " + ca);
    }
    for (int i = 0; i < cas.size(); i++) {
      ts.setCertificateEntry("ca" + i, cas.get(i));
    }
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(ts);
    SSLContext ctx = SSLContext.getInstance("TLS");
    ctx.init(keys, tmf.getTrustManagers(), new SecureRandom());
    return ctx;
  }

  static List<X509Certificate> certificates(Path file) throws IOException, GeneralSecurityException {
    CertificateFactory cf = CertificateFactory.getInstance("X.509");
    List<X509Certificate> out = new ArrayList<>();
    for (byte[] der : blocks(file, "CERTIFICATE")) {
      out.add((X509Certificate) cf.generateCertificate(new ByteArrayInputStream(der)));
    }
    return out;
  }

  static PrivateKey privateKey(Path file, String algorithm) throws IOException, GeneralSecurityException {
    List<byte[]> pkcs8 = blocks(file, "PRIVATE KEY");
    if (!pkcs8.isEmpty()) {
      return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(pkcs8.get(0)));
    }
    List<byte[]> rsa = blocks(file, "RSA PRIVATE KEY");
    if (!rsa.isEmpty()) {
      return KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(wrapPkcs1(rsa.get(0))));
    }
    throw new IOException("no PKCS#8 (BEGIN PRIVATE KEY) or PKCS#1 RSA key found in " + file);
  }

  /** Wraps a PKCS#1 RSAPrivateKey in a PKCS#8 PrivateKeyInfo. */
  private static byte[] wrapPkcs1(byte[] pkcs1) {
    byte[] algId = {0x30, 0x0d, 0x06, 0x09, 0x2a, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
    byte[] version = {0x02, 0x01, 0x00};
    byte[] octet = der(0x04, pkcs1);
    byte[] body = new byte[version.length + algId.length + octet.length];
    System.arraycopy(version, 0, body, 0, version.length);
    System.arraycopy(algId, 0, body, version.length, algId.length);
    System.arraycopy(octet, 0, body, version.length + algId.length, octet.length);
    return der(0x30, body);
  }

  private static byte[] der(int tag, byte[] content) {
    int len = content.length;
    byte[] lenBytes;
    if (len < 0x80) {
      lenBytes = new byte[] {(byte) len};
    } else if (len < 0x100) {
      lenBytes = new byte[] {(byte) 0x81, (byte) len};
    } else if (len < 0x10000) {
      lenBytes = new byte[] {(byte) 0x82, (byte) (len >> 8), (byte) len};
    } else {
      lenBytes = new byte[] {(byte) 0x83, (byte) (len >> 16), (byte) (len >> 8), (byte) len};
    }
    byte[] out = new byte[1 + lenBytes.length + len];
    out[0] = (byte) tag;
    System.arraycopy(lenBytes, 0, out, 1, lenBytes.length);
    System.arraycopy(content, 0, out, 1 + lenBytes.length, len);
    return out;
  }

  private static List<byte[]> blocks(Path file, String type) throws IOException {
    String text;
    try {
      text = Files.readString(file, StandardCharsets.US_ASCII);
    } catch (java.nio.file.NoSuchFileException e) {
      throw new IOException("TLS file does not exist: " + file);
    }
    List<byte[]> out = new ArrayList<>();
    Matcher m = BLOCK.matcher(text);
    while (m.find()) {
      if (m.group(1).equals(type)) {
        out.add(Base64.getMimeDecoder().decode(m.group(2)));
      }
    }
    return out;
  }
}
