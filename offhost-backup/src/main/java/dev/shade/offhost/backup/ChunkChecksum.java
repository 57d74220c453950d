package dev.shade.offhost.backup;

import java.io.IOException;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Locale;
import java.util.zip.CRC32C;

/**
 * The checksum of an image archive's chunks, named in its manifest ({@code "checksum"}) and kept
 * with every chunk (the key {@link #key()}), in the catalog and in the job's record on tape.
 *
 * <p>{@link #CRC32C} is the default: the check a tape drive's logical block protection and
 * Btrfs use against damaged media, on the processor's CRC instruction at several GB/s, where
 * SHA-256 costs a core of the backup server a second per 1.9 GB (docs/decisions.md says why it
 * was chosen). {@link #SHA256} stays for archives written before, and for operators who ask for
 * it ({@code shade backup run --checksum sha256}). Neither protects against someone who can
 * rewrite the tape: he can rewrite the manifest as well.
 *
 * <p>Values are lower-case hex: CRC-32C as 8 digits, the value as {@code rhash --crc32c} prints it;
 * SHA-256 as 64, as {@code sha256sum} prints it. Thread-safe.
 */
public enum ChunkChecksum {
  /** CRC-32C (Castagnoli), 8 hex digits. */
  CRC32C("crc32c", "crc32c", "CRC-32C"),
  /** SHA-256, 64 hex digits. */
  SHA256("sha-256", "sha256", "SHA-256");

  /** What new backups use. */
  public static final ChunkChecksum DEFAULT = CRC32C;

  private static final ThreadLocal<MessageDigest> SHA = ThreadLocal.withInitial(Sha256::digest);
  private static final HexFormat HEX = HexFormat.of();

  /** The name in a manifest's {@code checksum} and in the catalog. */
  private final String id;
  /** The key of each chunk's value in a manifest and a job record. */
  private final String key;
  /** The name messages use. */
  private final String display;

  ChunkChecksum(String id, String key, String display) {
    this.id = id;
    this.key = key;
    this.display = display;
  }

  /** {@code crc32c} or {@code sha-256}: the name in a manifest's {@code checksum} and in the catalog. */
  public String id() {
    return id;
  }

  /** {@code crc32c} or {@code sha256}: the key of each chunk's value in a manifest. */
  public String key() {
    return key;
  }

  /** {@code CRC-32C} or {@code SHA-256}, for messages. */
  @Override
  public String toString() {
    return display;
  }

  /** The checksum of {@code data[off, off + len)} in lower-case hex. */
  public String of(byte[] data, int off, int len) {
    if (this == CRC32C) {
      CRC32C c = new CRC32C();
      c.update(data, off, len);
      return String.format(Locale.ROOT, "%08x", c.getValue());
    }
    MessageDigest d = SHA.get();
    d.update(data, off, len);
    return HEX.formatHex(d.digest());
  }

  /** The checksum named {@code id} in a manifest or the catalog ({@code crc32c}, {@code sha-256}). */
  public static ChunkChecksum ofId(String id) throws IOException {
    for (ChunkChecksum c : values()) {
      if (c.id.equals(id)) {
        return c;
      }
    }
    throw new IOException("unknown chunk checksum \"" + id + "\" (this version knows crc32c and sha-256)");
  }

  /**
   * The checksum an operator names: {@code crc32c} or {@code sha256} (also {@code sha-256}, any
   * case).
   *
   * @throws IllegalArgumentException naming the choices
   */
  public static ChunkChecksum parse(String name) {
    String n = name.toLowerCase(Locale.ROOT);
    for (ChunkChecksum c : values()) {
      if (c.id.equals(n) || c.key.equals(n)) {
        return c;
      }
    }
    throw new IllegalArgumentException("checksum must be crc32c or sha256: " + name);
  }
}
