package dev.shade.nativeio;

/** An operation was attempted on a file, mapping or volume after it was closed. */
public final class AlreadyClosedException extends IllegalStateException {
  private static final long serialVersionUID = 1L;

  public AlreadyClosedException(String message) {
    super(message);
  }
}
