package dev.shade.nativeio;

/** A path or one of its directories does not exist (ENOENT, ENOTDIR). */
public final class NotFoundException extends ErrnoException {
  private static final long serialVersionUID = 1L;

  NotFoundException(String call, String resource, int errno, String detail) {
    super(call, resource, errno, detail);
  }
}
