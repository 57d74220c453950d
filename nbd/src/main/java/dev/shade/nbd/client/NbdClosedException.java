package dev.shade.nbd.client;

/**
 * The client was closed (by {@link NbdClient#close()} or after a fatal connection failure,
 * which is then the cause) before or while a request was made.
 */
public final class NbdClosedException extends NbdException {
  private static final long serialVersionUID = 1L;

  public NbdClosedException(String message, String target, Throwable cause) {
    super(message, target, cause);
  }
}
