package dev.shade.nbd.client;

/**
 * The server did not connect, finish the handshake or answer a request within the configured
 * time; the connection is closed.
 */
public final class NbdTimeoutException extends NbdException {
  private static final long serialVersionUID = 1L;

  public NbdTimeoutException(String message, String target) {
    super(message, target);
  }
}
