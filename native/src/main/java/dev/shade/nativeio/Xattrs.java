package dev.shade.nativeio;

import com.sun.jna.LastErrorException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Extended attributes of a file, of every namespace ({@code user.}, {@code trusted.},
 * {@code security.}, {@code system.}), without following a symbolic link: {@code llistxattr(2)},
 * {@code lgetxattr(2)}, {@code lsetxattr(2)}. Java's {@code UserDefinedFileAttributeView} sees
 * {@code user.*} only.
 *
 * <p>Thread-safe: stateless. Reading {@code trusted.*} needs CAP_SYS_ADMIN (root); without it
 * the kernel leaves those names out of the list, and writing them fails with EPERM.
 */
public final class Xattrs {
  /*
   * The list and a value can change between the call that sizes the buffer and the call that
   * fills it; ERANGE then means "grown meanwhile", and the pair is tried again (at most a few
   * times), as getfattr does.
   */

  /** ENODATA: the attribute is not there (it was removed between the list and the read). */
  private static final int ENODATA = 61;
  /** ERANGE: the buffer is too small (the list or the value grew meanwhile). */
  private static final int ERANGE = 34;
  /** ENOTSUP: the filesystem keeps no extended attributes. */
  private static final int ENOTSUP = 95;

  private Xattrs() {}

  /** The names of {@code path}'s extended attributes, in the kernel's order; empty where the filesystem has none. */
  public static List<String> list(Path path) throws ErrnoException {
    String p = path.toString();
    for (int attempt = 0; ; attempt++) {
      long size;
      byte[] buf;
      try {
        size = LibC.llistxattr(p, null, 0);
        if (size <= 0) {
          return List.of();
        }
        buf = new byte[(int) size];
        size = LibC.llistxattr(p, buf, buf.length);
      } catch (LastErrorException e) {
        if (e.getErrorCode() == ENOTSUP) {
          return List.of();
        }
        if (e.getErrorCode() == ERANGE && attempt < 3) {
          continue;
        }
        throw ErrnoException.of("llistxattr", p, e.getErrorCode(), null);
      }
      List<String> names = new ArrayList<>();
      int start = 0;
      for (int i = 0; i < size; i++) {
        if (buf[i] == 0) {
          if (i > start) {
            names.add(new String(buf, start, i - start, StandardCharsets.UTF_8));
          }
          start = i + 1;
        }
      }
      return names;
    }
  }

  /** The value of attribute {@code name} of {@code path}, or null when it is not there. */
  public static byte[] get(Path path, String name) throws ErrnoException {
    String p = path.toString();
    for (int attempt = 0; ; attempt++) {
      try {
        long size = LibC.lgetxattr(p, name, null, 0);
        byte[] buf = new byte[(int) size];
        long n = size == 0 ? 0 : LibC.lgetxattr(p, name, buf, buf.length);
        return n == buf.length ? buf : java.util.Arrays.copyOf(buf, (int) n);
      } catch (LastErrorException e) {
        if (e.getErrorCode() == ENODATA) {
          return null;
        }
        if (e.getErrorCode() == ERANGE && attempt < 3) {
          continue;
        }
        throw ErrnoException.of("lgetxattr", p, e.getErrorCode(), "name=" + name);
      }
    }
  }

  /** Sets attribute {@code name} of {@code path} to {@code value} (creating or replacing it). */
  public static void set(Path path, String name, byte[] value) throws ErrnoException {
    try {
      LibC.lsetxattr(path.toString(), name, value, value.length, 0);
    } catch (LastErrorException e) {
      throw ErrnoException.of("lsetxattr", path.toString(), e.getErrorCode(), "name=" + name);
    }
  }
}
