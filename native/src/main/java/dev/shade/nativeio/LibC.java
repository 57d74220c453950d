package dev.shade.nativeio;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;

/**
 * Direct-mapped libc entry points. The only class in shade that declares native methods.
 *
 * <p>Every method that can fail declares {@link LastErrorException}: JNA clears errno before
 * the call and throws when it is set afterwards, so callers never read a stale errno. The
 * wrappers ({@link FileHandle}, {@link MappedFile}, {@link StatVfs}) turn those into
 * {@link ErrnoException}s that name the call and the path.
 *
 * <p>{@code open} and {@code ioctl} are variadic in C. Direct mapping passes their optional
 * argument as a fixed one, which is correct on the LP64 Linux ABIs shade supports (x86-64 and
 * AArch64), where integer and pointer varargs travel in the same registers as fixed arguments.
 */
final class LibC {
  static {
    Native.register(LibC.class, NativeLibrary.getInstance("c"));
  }

  private LibC() {}

  static native int open(String path, int flags, int mode) throws LastErrorException;

  static native int close(int fd) throws LastErrorException;

  static native long pread(int fd, Pointer buf, long count, long offset) throws LastErrorException;

  static native long pwrite(int fd, Pointer buf, long count, long offset) throws LastErrorException;

  static native long read(int fd, Pointer buf, long count) throws LastErrorException;

  static native long write(int fd, Pointer buf, long count) throws LastErrorException;

  static native Pointer mmap(Pointer addr, long length, int prot, int flags, int fd, long offset)
      throws LastErrorException;

  static native int munmap(Pointer addr, long length) throws LastErrorException;

  static native int msync(Pointer addr, long length, int flags) throws LastErrorException;

  static native int madvise(Pointer addr, long length, int advice) throws LastErrorException;

  static native int fsync(int fd) throws LastErrorException;

  static native int fdatasync(int fd) throws LastErrorException;

  static native int syncfs(int fd) throws LastErrorException;

  static native int fallocate(int fd, int mode, long offset, long len) throws LastErrorException;

  static native int ftruncate(int fd, long length) throws LastErrorException;

  static native int sync_file_range(int fd, long offset, long nbytes, int flags) throws LastErrorException;

  static native long lseek(int fd, long offset, int whence) throws LastErrorException;

  static native int ioctl(int fd, long request, Pointer arg) throws LastErrorException;

  static native int ioctl(int fd, long request, long arg) throws LastErrorException;

  static native int flock(int fd, int operation) throws LastErrorException;

  static native int mincore(Pointer addr, long length, byte[] vec) throws LastErrorException;

  static native int statvfs(String path, StatVfs.Struct buf) throws LastErrorException;

  static native int socket(int domain, int type, int protocol) throws LastErrorException;

  static native long sendto(int fd, byte[] buf, long len, int flags, byte[] addr, int addrlen) throws LastErrorException;

  static native long llistxattr(String path, byte[] list, long size) throws LastErrorException;

  static native long lgetxattr(String path, String name, byte[] value, long size) throws LastErrorException;

  static native int lsetxattr(String path, String name, byte[] value, long size, int flags) throws LastErrorException;

  static native String strerror(int errnum);

  static native int getpagesize();
}
