package dev.shade.nbd.client;

import dev.shade.nbd.protocol.Nbd;

/**
 * The server answered a request with an error: the errno (EPERM, EIO, EINVAL, ENOSPC, ...), the
 * command, the request's offset and length, the offset the server named (error chunks with an
 * offset) and the server's message.
 */
public final class NbdErrorException extends NbdException {
  private static final long serialVersionUID = 1L;

  /** The NBD error value, which the protocol takes from Linux errno numbers. */
  private final int errno;
  /** The command that failed, an {@code Nbd.CMD_*}. */
  private final int command;
  /** The request's offset. */
  private final long offset;
  /** The request's length. */
  private final long length;
  /** Where in the request the server says the error is, or -1 when it did not say. */
  private final long errorOffset;
  /** The server's message, or "" when it sent none. */
  private final String serverMessage;

  NbdErrorException(int errno, int command, long offset, long length, long errorOffset, String serverMessage, String target) {
    super(Nbd.commandName(command) + " failed with " + errnoName(errno) + " (offset=" + offset + ", length=" + length
        + (errorOffset >= 0 ? ", at " + errorOffset : "") + (serverMessage.isEmpty() ? "" : ", server said: " + serverMessage)
        + ")", target);
    this.errno = errno;
    this.command = command;
    this.offset = offset;
    this.length = length;
    this.errorOffset = errorOffset;
    this.serverMessage = serverMessage;
  }

  public int errno() {
    return errno;
  }

  /** The errno's name, like {@code "EPERM"}; {@code "errno N"} for values the protocol does not define. */
  public String errnoName() {
    return errnoName(errno);
  }

  public int command() {
    return command;
  }

  public long offset() {
    return offset;
  }

  public long length() {
    return length;
  }

  /** Where in the request the server says the error is, or -1 when it did not say. */
  public long errorOffset() {
    return errorOffset;
  }

  public String serverMessage() {
    return serverMessage;
  }

  /** Name of an NBD error value. */
  public static String errnoName(int errno) {
    switch (errno) {
      case Nbd.EPERM: return "EPERM";
      case Nbd.EIO: return "EIO";
      case Nbd.ENOMEM: return "ENOMEM";
      case Nbd.EINVAL: return "EINVAL";
      case Nbd.ENOSPC: return "ENOSPC";
      case Nbd.EOVERFLOW: return "EOVERFLOW";
      case Nbd.ENOTSUP: return "ENOTSUP";
      case Nbd.ESHUTDOWN: return "ESHUTDOWN";
      default: return "errno " + errno;
    }
  }
}
