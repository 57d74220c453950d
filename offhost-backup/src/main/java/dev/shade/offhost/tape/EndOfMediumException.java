package dev.shade.offhost.tape;

/**
 * No room for this record: the trailer allowance after the early warning is used up, or the
 * physical end of the medium was reached. Nothing was written; filemarks are still accepted.
 */
public final class EndOfMediumException extends TapeException {
  private static final long serialVersionUID = 1L;

  public EndOfMediumException(String message) {
    super(message);
  }
}
