package dev.shade.nativeio;

/** The caller may not do this (EACCES, EPERM, EROFS). */
public final class PermissionException extends ErrnoException {
  private static final long serialVersionUID = 1L;

  PermissionException(String call, String resource, int errno, String detail) {
    super(call, resource, errno, detail);
  }
}
