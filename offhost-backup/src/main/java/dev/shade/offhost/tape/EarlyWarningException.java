package dev.shade.offhost.tape;

/**
 * The drive passed the early-warning mark with the previous record; this record was not
 * written. Later writes get {@link TapeDrive#trailerBytes()} bytes of room at least: enough to
 * end the archive cleanly and write its filemark, then continue on the next cartridge.
 */
public final class EarlyWarningException extends TapeException {
  private static final long serialVersionUID = 1L;

  public EarlyWarningException(String message) {
    super(message);
  }
}
