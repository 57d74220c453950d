package dev.shade.nativeio;

/** The filesystem is full or the quota is exhausted (ENOSPC, EDQUOT, EFBIG). */
public final class NoSpaceException extends ErrnoException {
  private static final long serialVersionUID = 1L;

  NoSpaceException(String call, String resource, int errno, String detail) {
    super(call, resource, errno, detail);
  }
}
