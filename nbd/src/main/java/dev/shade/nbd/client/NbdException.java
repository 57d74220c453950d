package dev.shade.nbd.client;

import java.io.IOException;

/**
 * A failure of an NBD connection or of one of its requests; its message names the export (the
 * URI) it concerns. Subclasses tell the kinds apart: {@link NbdErrorException} (the server
 * answered a request with an error), {@link NbdHandshakeException} (the server refused an
 * option), {@link NbdClosedException} (the client is closed), {@link NbdTimeoutException}.
 * A plain {@code NbdException} is a protocol violation by the server or a broken connection.
 */
public class NbdException extends IOException {
  private static final long serialVersionUID = 1L;

  /** The URI of the export (without secrets), or the server address before the export is known. */
  private final String target;

  public NbdException(String message, String target) {
    super(message + ": " + target);
    this.target = target;
  }

  public NbdException(String message, String target, Throwable cause) {
    super(message + ": " + target, cause);
    this.target = target;
  }

  /** The URI of the export this failure concerns. */
  public String target() {
    return target;
  }
}
