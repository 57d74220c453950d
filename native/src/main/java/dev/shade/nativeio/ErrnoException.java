package dev.shade.nativeio;

import java.io.IOException;

/**
 * A libc call failed. The message names the call, the path (or other resource), the errno
 * with its symbolic name and {@code strerror} text, and, where one helps, what to check.
 *
 * <p>Subclasses exist for the errors callers act on: {@link NoSpaceException},
 * {@link NotFoundException}, {@link PermissionException}.
 */
public class ErrnoException extends IOException {
  private static final long serialVersionUID = 1L;

  /** The libc function that failed, e.g. {@code "mmap"}. */
  private final String call;
  /** The file or device the call was about; never null, "" when none. */
  private final String resource;
  /** The errno the call set. */
  private final int errno;

  protected ErrnoException(String call, String resource, int errno, String detail) {
    super(message(call, resource, errno, detail));
    this.call = call;
    this.resource = resource == null ? "" : resource;
    this.errno = errno;
  }

  /** Builds the most specific exception for {@code errno}. */
  public static ErrnoException of(String call, String resource, int errno, String detail) {
    switch (errno) {
      case Errno.ENOSPC:
      case Errno.EDQUOT:
      case Errno.EFBIG:
        return new NoSpaceException(call, resource, errno, detail);
      case Errno.ENOENT:
      case Errno.ENOTDIR:
        return new NotFoundException(call, resource, errno, detail);
      case Errno.EACCES:
      case Errno.EPERM:
      case Errno.EROFS:
        return new PermissionException(call, resource, errno, detail);
      default:
        return new ErrnoException(call, resource, errno, detail);
    }
  }

  public String call() {
    return call;
  }

  public String resource() {
    return resource;
  }

  public int errno() {
    return errno;
  }

  private static String message(String call, String resource, int errno, String detail) {
    StringBuilder sb = new StringBuilder();
    sb.append(call);
    if (resource != null && !resource.isEmpty()) {
      sb.append('(').append(resource).append(')');
    }
    if (detail != null && !detail.isEmpty()) {
      sb.append(" [").append(detail).append(']');
    }
    sb.append(" failed: ").append(strerror(errno)).append(" (").append(Errno.name(errno)).append(')');
    String advice = advice(call, errno);
    if (advice != null) {
      sb.append("; ").append(advice);
    }
    return sb.toString();
  }

  private static String strerror(int errno) {
    try {
      String s = LibC.strerror(errno);
      return s == null ? "errno " + errno : s;
    } catch (RuntimeException | LinkageError e) {
      return "errno " + errno;
    }
  }

  /** What an operator should check, in the spirit of Lucene's map-failure messages. */
  static String advice(String call, int errno) {
    switch (errno) {
      case Errno.ENOSPC:
        if (call.equals("write") || call.startsWith("ioctl(MT")) {
          return "the tape passed its early-warning mark or reached the end of the medium";
        }
        return "check free space with df on that filesystem (or lower the diff area limit)";
      case Errno.EFBIG:
        return "check free space with df on that filesystem (or lower the diff area limit)";
      case Errno.EDQUOT:
        return "the disk quota of this user is exhausted";
      case Errno.ENOENT:
        return "check that the path exists";
      case Errno.ENOTDIR:
        return "a component of the path is not a directory";
      case Errno.EACCES:
        return "check the permissions of the path and its directories";
      case Errno.EPERM:
        return call.startsWith("ioctl") ? "this operation needs root (CAP_SYS_ADMIN)" : "operation not permitted; check ownership or run as root";
      case Errno.EROFS:
        return "the filesystem is mounted read-only";
      case Errno.EMFILE:
        return "too many open files in this process; raise ulimit -n";
      case Errno.ENFILE:
        return "the system file table is full; raise fs.file-max / fs.nr_open";
      case Errno.EIO:
        return call.equals("read") || call.equals("write") || call.startsWith("ioctl(MT")
            ? "the tape drive reported a medium or hardware error, or end of data; check dmesg and 'mt status'"
            : null;
      case Errno.ENOMEM:
        if (call.equals("read")) {
          return "the tape record is larger than the read buffer (variable block mode); read with a larger buffer";
        }
        return call.equals("mmap")
            ? "the address space or map count is exhausted; check ulimit -v and sysctl vm.max_map_count"
            : "out of memory";
      case Errno.EOPNOTSUPP:
        return "the filesystem does not support this operation";
      case Errno.EBUSY:
        return "the resource is busy (already frozen, mounted, or in use by another process)";
      case Errno.EAGAIN:
        return "the resource is locked by another process";
      case Errno.ENOTTY:
        return "the file does not support this ioctl (wrong kind of file or device)";
      default:
        return null;
    }
  }
}
