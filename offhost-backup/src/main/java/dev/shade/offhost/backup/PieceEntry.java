package dev.shade.offhost.backup;

/**
 * One piece of an image archive: the part of it on one tape file of one cartridge. An archive
 * that reaches the end of a cartridge continues in a new piece on the next one; every piece is a
 * tar archive of its own (docs/tape-format.md, "Pieces").
 *
 * @param piece its number in the archive, from 0
 * @param cartridge the label of the cartridge it is on
 * @param fileNumber its tape file on that cartridge
 * @param bytes the tape file's size: the piece's tar bytes
 * @param firstOffset the image offset of the first chunk it holds (a member, or a zero chunk of an
 *     incremental); -1 when it holds none
 * @param endOffset the end of the last chunk it holds; -1 when it holds none
 * @param chunks how many chunks of the manifest it holds (members and zero chunks)
 */
public record PieceEntry(int piece, String cartridge, int fileNumber, long bytes, long firstOffset, long endOffset,
    int chunks) {
  public PieceEntry {
    if (piece < 0 || fileNumber < 0 || bytes < 0 || chunks < 0) {
      throw new IllegalArgumentException("piece " + piece + " on cartridge " + cartridge + ", tape file " + fileNumber
          + ", " + bytes + " bytes, " + chunks + " chunks: negative");
    }
  }

  /** True if the chunk at {@code offset} is one of this piece's. */
  public boolean holds(long offset) {
    return chunks > 0 && offset >= firstOffset && offset < endOffset;
  }

  /** {@code cartridge SHD002, tape file 3}. */
  public String where() {
    return "cartridge " + cartridge + ", tape file " + fileNumber;
  }
}
