package dev.shade.offhost.backup;

/**
 * One chunk of an image archive's manifest.
 *
 * @param offset where it starts in the image (a multiple of the chunk size)
 * @param length bytes (the chunk size; less for the last chunk of an image)
 * @param checksum the lower-case hex checksum of its bytes, in its archive's {@link ChunkChecksum};
 *     {@code null} for a zero chunk
 * @param zero true when the chunk reads as zeros: no member in the archive (listed only by
 *     incrementals, where it overwrites what an older archive had there)
 */
public record ChunkEntry(long offset, long length, String checksum, boolean zero) {
  /** The archive member holding the chunk: {@code data/} and the offset as 16 hex digits. */
  public String member() {
    return memberName(offset);
  }

  /** {@code data/} and {@code offset} as 16 lower-case hex digits. */
  public static String memberName(long offset) {
    return String.format("data/%016x", offset);
  }
}
