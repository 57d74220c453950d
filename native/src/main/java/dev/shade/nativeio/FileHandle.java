package dev.shade.nativeio;

import com.sun.jna.LastErrorException;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import java.io.Closeable;
import java.io.EOFException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An open file descriptor with the path it was opened from. Every failure is an
 * {@link ErrnoException} naming the call and this path.
 *
 * <p>Thread-safe: positional I/O ({@code pread}/{@code pwrite}) never moves a shared offset.
 * {@link #close()} must not race with calls in flight; owners guarantee that.
 */
public final class FileHandle implements Closeable {
  public static final int O_RDONLY = 0;
  public static final int O_WRONLY = 1;
  public static final int O_RDWR = 2;
  public static final int O_CREAT = 0100;
  public static final int O_EXCL = 0200;
  public static final int O_TRUNC = 01000;
  public static final int O_APPEND = 02000;
  public static final int O_DSYNC = 010000;
  /** Bypass the page cache: buffer address, offset and length aligned to the device's block. */
  public static final int O_DIRECT = 040000;
  public static final int O_DIRECTORY = 0200000;
  public static final int O_CLOEXEC = 02000000;

  static final int FALLOC_FL_KEEP_SIZE = 0x01;
  static final int FALLOC_FL_PUNCH_HOLE = 0x02;
  static final int FALLOC_FL_ZERO_RANGE = 0x10;
  static final int SEEK_SET = 0;
  static final int SEEK_END = 2;
  static final int SEEK_DATA = 3;
  static final int SEEK_HOLE = 4;
  static final int LOCK_SH = 1;
  static final int LOCK_EX = 2;
  static final int LOCK_NB = 4;
  static final int LOCK_UN = 8;

  /** The path this descriptor was opened from, for messages. */
  private final Path path;
  /** The descriptor; -1 once closed. */
  private final AtomicInteger fd;

  private FileHandle(Path path, int fd) {
    this.path = path;
    this.fd = new AtomicInteger(fd);
  }

  /** Opens {@code path} with {@code open(2)} flags (O_CLOEXEC is always added). */
  public static FileHandle open(Path path, int flags, int mode) throws ErrnoException {
    try {
      int fd = LibC.open(path.toString(), flags | O_CLOEXEC, mode);
      return new FileHandle(path, fd);
    } catch (LastErrorException e) {
      throw ErrnoException.of("open", path.toString(), e.getErrorCode(), null);
    }
  }

  /** Opens an existing file or block device for reading and writing. */
  public static FileHandle openReadWrite(Path path) throws ErrnoException {
    return open(path, O_RDWR, 0);
  }

  /** Opens an existing file or device read-only. */
  public static FileHandle openReadOnly(Path path) throws ErrnoException {
    return open(path, O_RDONLY, 0);
  }

  /** Creates (or opens) a regular file with mode 0600 for reading and writing. */
  public static FileHandle create(Path path) throws ErrnoException {
    return open(path, O_RDWR | O_CREAT, 0600);
  }

  public Path path() {
    return path;
  }

  /** The raw descriptor, for ioctls of other packages. */
  public int fd() {
    int f = fd.get();
    if (f < 0) {
      throw new AlreadyClosedException("file is closed: " + this);
    }
    return f;
  }

  /** The size in bytes: {@code lseek(SEEK_END)}, which also works for block devices. */
  public long size() throws ErrnoException {
    try {
      return LibC.lseek(fd(), 0, SEEK_END);
    } catch (LastErrorException e) {
      throw error("lseek", e, null);
    }
  }

  /** Sets the size of a regular file ({@code ftruncate}). */
  public void truncate(long length) throws ErrnoException {
    requireNonNegative("length", length);
    try {
      LibC.ftruncate(fd(), length);
    } catch (LastErrorException e) {
      throw error("ftruncate", e, "length=" + length);
    }
  }

  /** Reserves disk blocks for the range without changing the file size, so later writes
   *  through a mapping cannot hit ENOSPC (which would be SIGBUS there). */
  public void allocate(long offset, long length) throws ErrnoException {
    fallocate(FALLOC_FL_KEEP_SIZE, offset, length, "fallocate");
  }

  /** Deallocates the range: it reads back as zeros and frees its disk blocks. */
  public void punchHole(long offset, long length) throws ErrnoException {
    fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length, "fallocate(PUNCH_HOLE)");
  }

  private void fallocate(int mode, long offset, long length, String call) throws ErrnoException {
    requireNonNegative("offset", offset);
    requireNonNegative("length", length);
    if (length == 0) {
      return;
    }
    try {
      LibC.fallocate(fd(), mode, offset, length);
    } catch (LastErrorException e) {
      throw error(call, e, "offset=" + offset + " length=" + length);
    }
  }

  /**
   * Writes the range's dirty pages to the device and waits for them ({@code sync_file_range}
   * with WAIT_BEFORE | WRITE | WAIT_AFTER). Unlike fdatasync this sends no cache flush and
   * writes no metadata: the data is durable only after a later flush of the same device (for
   * example fdatasync of another file on it), and only if the range needs no metadata (its
   * blocks are allocated and written).
   */
  public void writeBack(long offset, long length) throws ErrnoException {
    requireNonNegative("offset", offset);
    requireNonNegative("length", length);
    if (length == 0) {
      return;
    }
    try {
      LibC.sync_file_range(fd(), offset, length, 1 | 2 | 4);
    } catch (LastErrorException e) {
      throw error("sync_file_range", e, "offset=" + offset + " length=" + length);
    }
  }

  /**
   * Starts writeback of the range's dirty pages that are not under writeback yet, without
   * waiting for them ({@code sync_file_range} with WRITE only; {@code length} 0 means to the end
   * of the file). Makes nothing durable by itself: a later fdatasync then finds less to write.
   * It may block while the device's request queue is full. A write error of those pages is not
   * reported here and not consumed: the next fdatasync of the file still reports it.
   */
  public void startWriteBack(long offset, long length) throws ErrnoException {
    requireNonNegative("offset", offset);
    requireNonNegative("length", length);
    try {
      LibC.sync_file_range(fd(), offset, length, 2);
    } catch (LastErrorException e) {
      throw error("sync_file_range", e, "offset=" + offset + " length=" + length);
    }
  }

  /** Flushes data and metadata ({@code fsync}). */
  public void fsync() throws ErrnoException {
    try {
      LibC.fsync(fd());
    } catch (LastErrorException e) {
      throw error("fsync", e, null);
    }
  }

  /** Flushes data and the metadata needed to read it back ({@code fdatasync}). */
  public void fdatasync() throws ErrnoException {
    try {
      LibC.fdatasync(fd());
    } catch (LastErrorException e) {
      throw error("fdatasync", e, null);
    }
  }

  /**
   * Reads {@code dst.remaining()} bytes at {@code position}, looping over short reads.
   * Throws {@link EOFException} if the file ends first.
   */
  public void readFully(long position, ByteBuffer dst) throws java.io.IOException {
    requireNonNegative("position", position);
    while (dst.hasRemaining()) {
      int n = read(position, dst);
      if (n == 0) {
        throw new EOFException("read past EOF (pos=" + position + "): " + this);
      }
      position += n;
    }
  }

  /** One {@code pread}; returns the count read, 0 at end of file. Advances {@code dst}. */
  public int read(long position, ByteBuffer dst) throws ErrnoException {
    requireNonNegative("position", position);
    int len = dst.remaining();
    if (len == 0) {
      return 0;
    }
    try {
      long n;
      if (dst.isDirect()) {
        n = LibC.pread(fd(), Native.getDirectBufferPointer(dst).share(dst.position()), len, position);
      } else {
        try (Memory tmp = new Memory(len)) {
          n = LibC.pread(fd(), tmp, len, position);
          if (n > 0) {
            tmp.read(0, dst.array(), dst.arrayOffset() + dst.position(), (int) n);
          }
        }
      }
      dst.position(dst.position() + (int) n);
      return (int) n;
    } catch (LastErrorException e) {
      throw error("pread", e, "pos=" + position + " len=" + len);
    }
  }

  /** Writes all of {@code src} at {@code position}, looping over short writes. */
  public void writeFully(long position, ByteBuffer src) throws ErrnoException {
    requireNonNegative("position", position);
    while (src.hasRemaining()) {
      int len = src.remaining();
      try {
        long n;
        if (src.isDirect()) {
          n = LibC.pwrite(fd(), Native.getDirectBufferPointer(src).share(src.position()), len, position);
        } else {
          try (Memory tmp = new Memory(len)) {
            tmp.write(0, src.array(), src.arrayOffset() + src.position(), len);
            n = LibC.pwrite(fd(), tmp, len, position);
          }
        }
        src.position(src.position() + (int) n);
        position += n;
      } catch (LastErrorException e) {
        throw error("pwrite", e, "pos=" + position + " len=" + len);
      }
    }
  }

  /** Writes {@code length} zero bytes at {@code offset} (real zeros, not a hole). */
  public void writeZeros(long offset, long length) throws ErrnoException {
    requireNonNegative("offset", offset);
    requireNonNegative("length", length);
    if (length == 0) {
      return;
    }
    ByteBuffer zeros = ByteBuffer.allocateDirect((int) Math.min(length, 1 << 20));
    for (long at = offset; at < offset + length; at += zeros.capacity()) {
      zeros.clear().limit((int) Math.min(zeros.capacity(), offset + length - at));
      writeFully(at, zeros);
    }
  }

  /**
   * The offset of the next data at or after {@code from}, or -1 if only a hole follows or
   * {@code from} is at or past the end of the file.
   */
  public long nextData(long from) throws ErrnoException {
    return seek(from, SEEK_DATA, "lseek(SEEK_DATA)");
  }

  /**
   * The offset of the next hole at or after {@code from}: the file size if no hole comes before
   * the end (the end counts as a hole), -1 if {@code from} is at or past the end of the file.
   */
  public long nextHole(long from) throws ErrnoException {
    return seek(from, SEEK_HOLE, "lseek(SEEK_HOLE)");
  }

  private long seek(long from, int whence, String call) throws ErrnoException {
    // Linux answers a negative offset with ENXIO too, which would read as "no more data".
    requireNonNegative("offset", from);
    try {
      return LibC.lseek(fd(), from, whence);
    } catch (LastErrorException e) {
      if (e.getErrorCode() == 6 /* ENXIO: no more data past 'from' */) {
        return -1;
      }
      throw error(call, e, "offset=" + from);
    }
  }

  /**
   * Takes an advisory {@code flock}. Returns false when {@code wait} is false and another
   * process holds a conflicting lock.
   */
  public boolean lock(boolean exclusive, boolean wait) throws ErrnoException {
    int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
    try {
      LibC.flock(fd(), op);
      return true;
    } catch (LastErrorException e) {
      if (!wait && e.getErrorCode() == Errno.EWOULDBLOCK) {
        return false;
      }
      throw error("flock", e, null);
    }
  }

  /** Releases a {@link #lock} taken on this descriptor. */
  public void unlock() throws ErrnoException {
    try {
      LibC.flock(fd(), LOCK_UN);
    } catch (LastErrorException e) {
      throw error("flock(LOCK_UN)", e, null);
    }
  }

  /** {@code ioctl(fd, request, arg)} with a pointer argument; returns its result. */
  public int ioctl(String name, long request, Pointer arg) throws ErrnoException {
    try {
      return LibC.ioctl(fd(), request, arg);
    } catch (LastErrorException e) {
      throw error("ioctl(" + name + ")", e, null);
    }
  }

  /** {@code ioctl(fd, request, arg)} with an integer argument; returns its result. */
  public int ioctl(String name, long request, long arg) throws ErrnoException {
    try {
      return LibC.ioctl(fd(), request, arg);
    } catch (LastErrorException e) {
      throw error("ioctl(" + name + ")", e, null);
    }
  }

  private ErrnoException error(String call, LastErrorException e, String detail) {
    return ErrnoException.of(call, path.toString(), e.getErrorCode(), detail);
  }

  static void requireNonNegative(String what, long value) {
    if (value < 0) {
      throw new IllegalArgumentException(what + " is negative: " + value);
    }
  }

  /** Closes the descriptor; a second call does nothing. */
  @Override
  public void close() throws ErrnoException {
    int f = fd.getAndSet(-1);
    if (f >= 0) {
      try {
        LibC.close(f);
      } catch (LastErrorException e) {
        throw ErrnoException.of("close", path.toString(), e.getErrorCode(), null);
      }
    }
  }

  @Override
  public String toString() {
    return "FileHandle(" + path + ")";
  }
}
