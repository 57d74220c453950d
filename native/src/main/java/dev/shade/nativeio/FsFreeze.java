package dev.shade.nativeio;

import com.sun.jna.LastErrorException;
import java.nio.file.Path;

/**
 * Freezes and thaws a whole filesystem ({@code FIFREEZE}/{@code FITHAW}, what
 * {@code fsfreeze(8)} does): a frozen filesystem has written its dirty data and journal to the
 * device and makes every writer (write, mkdir, fsync, page faults on shared mappings) wait until
 * the thaw, while readers go on.
 *
 * <p>The freeze belongs to the filesystem, not to the caller: it lasts until someone thaws it,
 * even if the process that froze it dies, so a caller must make sure a thaw always follows (the
 * requestor's freeze lease does). The filesystem must be freezable (ext4, xfs, btrfs; not tmpfs),
 * and both calls need {@code CAP_SYS_ADMIN}.
 *
 * <p>Thread-safe: stateless. {@link #freeze} blocks while the filesystem syncs, which can take
 * as long as writing its dirty pages out.
 */
public final class FsFreeze {
  /** {@code _IOWR('X', 119, int)}: freeze the filesystem the descriptor is on. */
  static final long FIFREEZE = 0xC0045877L;
  /** {@code _IOWR('X', 120, int)}: thaw it. */
  static final long FITHAW = 0xC0045878L;

  private FsFreeze() {}

  /**
   * Freezes the filesystem mounted at {@code mountPoint}. Fails with an {@link ErrnoException}
   * naming the path and errno: {@code EBUSY} when it is already frozen, {@code EOPNOTSUPP} when
   * the filesystem cannot be frozen (tmpfs, proc), {@code EPERM} without root.
   */
  public static void freeze(Path mountPoint) throws ErrnoException {
    ioctl(mountPoint, "FIFREEZE", FIFREEZE);
  }

  /**
   * Thaws the filesystem mounted at {@code mountPoint}. Fails with an {@link ErrnoException}
   * naming the path and errno: {@code EINVAL} when it is not frozen, {@code EPERM} without root.
   */
  public static void thaw(Path mountPoint) throws ErrnoException {
    ioctl(mountPoint, "FITHAW", FITHAW);
  }

  /**
   * Writes the dirty data and metadata of the filesystem holding {@code path} to its device
   * ({@code syncfs(2)}) without holding any writer: what a freeze does first, so calling it just
   * before {@link #freeze} leaves the freeze little to write and keeps it short.
   */
  public static void sync(Path path) throws ErrnoException {
    try (FileHandle dir = FileHandle.open(path, FileHandle.O_RDONLY, 0)) {
      LibC.syncfs(dir.fd());
    } catch (LastErrorException e) {
      throw ErrnoException.of("syncfs", path.toString(), e.getErrorCode(), null);
    }
  }

  private static void ioctl(Path mountPoint, String name, long request) throws ErrnoException {
    // O_RDONLY on the directory is enough: the ioctl acts on the superblock the file is on
    try (FileHandle dir = FileHandle.open(mountPoint, FileHandle.O_RDONLY | FileHandle.O_DIRECTORY, 0)) {
      LibC.ioctl(dir.fd(), request, 0L);
    } catch (LastErrorException e) {
      int errno = e.getErrorCode();
      throw ErrnoException.of("ioctl(" + name + ")", mountPoint.toString(), errno, meaning(request, errno));
    }
  }

  /** What {@code errno} means for this request, in the terms of a freeze. */
  private static String meaning(long request, int errno) {
    switch (errno) {
      case Errno.EBUSY:
        return request == FIFREEZE ? "the filesystem is already frozen" : null;
      case Errno.EINVAL:
        return request == FITHAW ? "the filesystem is not frozen" : null;
      case Errno.EOPNOTSUPP:
        return "this kind of filesystem cannot be frozen (tmpfs, proc and the like have no freeze)";
      case Errno.EPERM:
        return "freezing and thawing a filesystem need root (CAP_SYS_ADMIN)";
      default:
        return null;
    }
  }
}
