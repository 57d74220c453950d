package dev.shade.nativeio;

/** Linux errno values that shade reacts to, with their symbolic names. */
public final class Errno {
  public static final int EPERM = 1;
  public static final int ENOENT = 2;
  public static final int EINTR = 4;
  public static final int EIO = 5;
  public static final int EBADF = 9;
  public static final int EAGAIN = 11;
  public static final int ENOMEM = 12;
  public static final int EACCES = 13;
  public static final int EBUSY = 16;
  public static final int EEXIST = 17;
  public static final int ENODEV = 19;
  public static final int ENOTDIR = 20;
  public static final int EISDIR = 21;
  public static final int EINVAL = 22;
  public static final int ENFILE = 23;
  public static final int EMFILE = 24;
  public static final int ENOTTY = 25;
  public static final int EFBIG = 27;
  public static final int ENOSPC = 28;
  public static final int EROFS = 30;
  public static final int ENAMETOOLONG = 36;
  public static final int ECONNREFUSED = 111;
  public static final int EWOULDBLOCK = EAGAIN;
  public static final int EOPNOTSUPP = 95;
  public static final int EDQUOT = 122;

  private Errno() {}

  /** The symbolic name of {@code errno}, e.g. {@code "ENOSPC"}, or {@code "errno N"}. */
  public static String name(int errno) {
    switch (errno) {
      case EPERM: return "EPERM";
      case ENOENT: return "ENOENT";
      case EINTR: return "EINTR";
      case EIO: return "EIO";
      case EBADF: return "EBADF";
      case EAGAIN: return "EAGAIN";
      case ENOMEM: return "ENOMEM";
      case EACCES: return "EACCES";
      case EBUSY: return "EBUSY";
      case EEXIST: return "EEXIST";
      case ENODEV: return "ENODEV";
      case ENOTDIR: return "ENOTDIR";
      case EISDIR: return "EISDIR";
      case EINVAL: return "EINVAL";
      case ENFILE: return "ENFILE";
      case EMFILE: return "EMFILE";
      case ENOTTY: return "ENOTTY";
      case EFBIG: return "EFBIG";
      case ENOSPC: return "ENOSPC";
      case EROFS: return "EROFS";
      case ENAMETOOLONG: return "ENAMETOOLONG";
      case ECONNREFUSED: return "ECONNREFUSED";
      case EOPNOTSUPP: return "EOPNOTSUPP";
      case EDQUOT: return "EDQUOT";
      default: return "errno " + errno;
    }
  }
}
