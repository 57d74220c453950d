package dev.shade.offhost.tape;

import java.io.IOException;

/** A tape operation failed: a medium error, a write-protected cartridge, a bad position. */
public class TapeException extends IOException {
  private static final long serialVersionUID = 1L;

  public TapeException(String message) {
    super(message);
  }

  public TapeException(String message, Throwable cause) {
    super(message, cause);
  }
}
