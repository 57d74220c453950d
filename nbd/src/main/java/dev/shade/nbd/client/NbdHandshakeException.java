package dev.shade.nbd.client;

import dev.shade.nbd.protocol.Nbd;

/**
 * The server refused an option of the handshake (unknown export, TLS required, policy, ...), or
 * speaks a handshake this client does not (oldstyle).
 */
public final class NbdHandshakeException extends NbdException {
  private static final long serialVersionUID = 1L;

  /** The option refused (an {@code Nbd.OPT_*}), or -1 when no option was involved. */
  private final int option;
  /** The server's error reply (an {@code Nbd.REP_ERR_*}), or 0 when there was none. */
  private final int reply;

  public NbdHandshakeException(String message, String target, int option, int reply) {
    super(message, target);
    this.option = option;
    this.reply = reply;
  }

  public NbdHandshakeException(String message, String target, int option, int reply, Throwable cause) {
    super(message, target, cause);
    this.option = option;
    this.reply = reply;
  }

  /** The option refused (an {@code Nbd.OPT_*}), or -1 when no option was involved. */
  public int option() {
    return option;
  }

  /** The server's error reply (an {@code Nbd.REP_ERR_*}), or 0 when there was none. */
  public int reply() {
    return reply;
  }

  /** True when the server refused because it requires TLS ({@code NBD_REP_ERR_TLS_REQD}). */
  public boolean tlsRequired() {
    return reply == Nbd.REP_ERR_TLS_REQD;
  }
}
