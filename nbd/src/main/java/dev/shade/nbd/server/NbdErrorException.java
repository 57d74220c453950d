package dev.shade.nbd.server;

import java.io.IOException;

/**
 * An export's failure with a specific NBD error for the client ({@code EPERM}, {@code ENOSPC},
 * {@code EIO}, {@code ESHUTDOWN}, ... of {@link dev.shade.nbd.protocol.Nbd}). The server answers
 * the request with {@link #error()} and logs the message at debug level only: it is an expected
 * outcome (a full disk, a snapshot deleted under its client), not a server fault.
 */
public class NbdErrorException extends IOException {
  private static final long serialVersionUID = 1L;

  /** The NBD error code sent to the client. */
  private final int error;

  public NbdErrorException(int error, String message) {
    this(error, message, null);
  }

  public NbdErrorException(int error, String message, Throwable cause) {
    super(message, cause);
    if (error <= 0) {
      throw new IllegalArgumentException("an NBD error is positive: " + error);
    }
    this.error = error;
  }

  /** The NBD error code (an errno value as the protocol numbers them). */
  public int error() {
    return error;
  }
}
