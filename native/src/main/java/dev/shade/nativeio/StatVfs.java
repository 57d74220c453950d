package dev.shade.nativeio;

import com.sun.jna.LastErrorException;
import com.sun.jna.NativeLong;
import com.sun.jna.Structure;
import java.nio.file.Path;

/** Filesystem capacity as reported by {@code statvfs(3)}. */
public record StatVfs(long blockSize, long totalBytes, long freeBytes, long availableBytes) {

  /** Asks the filesystem that holds {@code path}. */
  public static StatVfs of(Path path) throws ErrnoException {
    Struct s = new Struct();
    try {
      LibC.statvfs(path.toString(), s);
    } catch (LastErrorException e) {
      throw ErrnoException.of("statvfs", path.toString(), e.getErrorCode(), null);
    }
    long frsize = s.f_frsize.longValue() == 0 ? s.f_bsize.longValue() : s.f_frsize.longValue();
    return new StatVfs(frsize, s.f_blocks.longValue() * frsize, s.f_bfree.longValue() * frsize,
        s.f_bavail.longValue() * frsize);
  }

  /** {@code struct statvfs} of glibc on LP64 Linux. */
  @Structure.FieldOrder({"f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
      "f_ffree", "f_favail", "f_fsid", "f_flag", "f_namemax", "f_spare"})
  public static final class Struct extends Structure {
    public NativeLong f_bsize;
    public NativeLong f_frsize;
    public NativeLong f_blocks;
    public NativeLong f_bfree;
    public NativeLong f_bavail;
    public NativeLong f_files;
    public NativeLong f_ffree;
    public NativeLong f_favail;
    public NativeLong f_fsid;
    public NativeLong f_flag;
    public NativeLong f_namemax;
    public int[] f_spare = new int[6];
  }
}
