package dev.shade.nbd.client;

import dev.shade.nbd.protocol.Nbd;

/**
 * What the server said of an export in the handshake: size, transmission flags, description and
 * block sizes ({@code NBD_INFO_BLOCK_SIZE}, or the protocol's defaults: 1, 4096 and 32 MiB).
 *
 * @param name the export name
 * @param description the server's description, "" when none
 * @param size bytes
 * @param flags transmission flags ({@code Nbd.FLAG_*})
 * @param minimumBlock requests must be aligned to this and be a multiple of it
 * @param preferredBlock the size below which requests cost more
 * @param maximumPayload the largest READ/WRITE payload the server accepts
 */
public record ExportInfo(String name, String description, long size, int flags, int minimumBlock, int preferredBlock,
    int maximumPayload) {

  public boolean readOnly() {
    return (flags & Nbd.FLAG_READ_ONLY) != 0;
  }

  public boolean canFlush() {
    return (flags & Nbd.FLAG_SEND_FLUSH) != 0;
  }

  public boolean canFua() {
    return (flags & Nbd.FLAG_SEND_FUA) != 0;
  }

  public boolean canTrim() {
    return (flags & Nbd.FLAG_SEND_TRIM) != 0;
  }

  public boolean canWriteZeroes() {
    return (flags & Nbd.FLAG_SEND_WRITE_ZEROES) != 0;
  }

  public boolean canDf() {
    return (flags & Nbd.FLAG_SEND_DF) != 0;
  }

  /** The server allows several connections to this export, with flushes covering them all. */
  public boolean canMultiConn() {
    return (flags & Nbd.FLAG_CAN_MULTI_CONN) != 0;
  }
}
