package dev.shade.offhost.backup;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** SHA-256 in lower-case hex. */
final class Sha256 {
  private Sha256() {}

  static MessageDigest digest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("no SHA-256 in this JVM", e);
    }
  }

  static String hex(byte[] data, int off, int len) {
    MessageDigest d = digest();
    d.update(data, off, len);
    return HexFormat.of().formatHex(d.digest());
  }
}
