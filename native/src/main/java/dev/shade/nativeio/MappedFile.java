package dev.shade.nativeio;

import com.sun.jna.LastErrorException;
import com.sun.jna.Pointer;
import java.io.Closeable;
import java.nio.ByteBuffer;

/**
 * A shared memory mapping of a file or block device of any size, made of power-of-two chunks.
 *
 * <p>Thread-safe for concurrent reads and writes (all copies use absolute positions).
 * {@link #close()} unmaps: it must not race with reads or writes, which the owner guarantees
 * (a volume closes its mappings under its exclusive lock).
 */
public final class MappedFile implements Closeable {
  /*
   * Layout, after Lucene's ByteBufferIndexInput: byte `pos` lives in chunk `pos >> chunkPower`
   * at offset `pos & chunkMask`. Each chunk is one mmap(2) of at most 2^chunkPower bytes, and a
   * direct ByteBuffer view of it gives the JVM's bounds-checked, SIGBUS-guarded bulk copies
   * (Unsafe.copyMemory turns a fault in mapped memory into an InternalError instead of killing
   * the process). A copy inside one chunk takes the fast path; one that crosses a boundary is
   * split.
   *
   * Writing to a hole of a sparse file through a mapping allocates disk blocks in the page
   * fault; if the disk is full that fault is SIGBUS. Callers therefore reserve blocks with
   * FileHandle.allocate() before the first write to a range (ENOSPC then arrives as an
   * ordinary exception), and InternalError from a copy is still mapped to an IOException.
   */

  /** MAP_SHARED from sys/mman.h. */
  private static final int MAP_SHARED = 0x01;
  private static final int PROT_READ = 0x1;
  private static final int PROT_WRITE = 0x2;
  private static final int MS_SYNC = 4;
  /** The default chunk: 1 GiB. */
  public static final int DEFAULT_CHUNK_POWER = 30;
  /** Page size of this machine; msync and madvise ranges are aligned to it. */
  static final long PAGE = LibC.getpagesize();

  /** The file this maps; kept open for the life of the mapping. */
  private final FileHandle file;
  /** Mapped length in bytes. */
  private final long length;
  /** log2 of the chunk size. */
  private final int chunkPower;
  /** chunk size - 1. */
  private final long chunkMask;
  /** Base addresses of the chunks, for msync/madvise/munmap. */
  private final Pointer[] addresses;
  /** Byte lengths of the chunks. */
  private final long[] lengths;
  /** Direct views of the chunks; null elements once closed. */
  private final ByteBuffer[] views;
  private final boolean writable;
  /** Set by close; checked on every access. */
  private volatile boolean closed;

  private MappedFile(FileHandle file, long length, int chunkPower, boolean writable) {
    this.file = file;
    this.length = length;
    this.chunkPower = chunkPower;
    this.chunkMask = (1L << chunkPower) - 1;
    this.writable = writable;
    int chunks = (int) ((length + chunkMask) >>> chunkPower);
    this.addresses = new Pointer[chunks];
    this.lengths = new long[chunks];
    this.views = new ByteBuffer[chunks];
  }

  /**
   * Maps the first {@code length} bytes of {@code file}. The file must already be at least that
   * long (touching a page past EOF is SIGBUS).
   *
   * @param chunkPower log2 of the chunk size, between 12 (a page) and 30 (1 GiB)
   */
  public static MappedFile map(FileHandle file, long length, boolean writable, int chunkPower)
      throws ErrnoException {
    if (chunkPower < 12 || chunkPower > 30) {
      throw new IllegalArgumentException("chunkPower must be in [12, 30]: " + chunkPower);
    }
    FileHandle.requireNonNegative("length", length);
    long size = file.size();
    if (size < length) {
      throw new IllegalArgumentException(
          "mapping length " + length + " exceeds the size " + size + " of " + file.path());
    }
    MappedFile m = new MappedFile(file, length, chunkPower, writable);
    int prot = PROT_READ | (writable ? PROT_WRITE : 0);
    try {
      for (int i = 0; i < m.addresses.length; i++) {
        long off = (long) i << chunkPower;
        long len = Math.min(1L << chunkPower, length - off);
        Pointer p;
        try {
          p = LibC.mmap(null, len, prot, MAP_SHARED, file.fd(), off);
        } catch (LastErrorException e) {
          throw ErrnoException.of("mmap", file.path().toString(), e.getErrorCode(),
              "offset=" + off + " length=" + len);
        }
        m.addresses[i] = p;
        m.lengths[i] = len;
        m.views[i] = p.getByteBuffer(0, len);
      }
    } catch (ErrnoException | RuntimeException e) {
      m.unmapAll();
      throw e;
    }
    return m;
  }

  /** Maps all of {@code file} with 1 GiB chunks. */
  public static MappedFile map(FileHandle file, boolean writable) throws ErrnoException {
    return map(file, file.size(), writable, DEFAULT_CHUNK_POWER);
  }

  public long length() {
    return length;
  }

  public FileHandle file() {
    return file;
  }

  /** Copies {@code dst.remaining()} bytes starting at {@code pos} into {@code dst}. */
  public void read(long pos, ByteBuffer dst) throws java.io.IOException {
    int len = dst.remaining();
    checkRange(pos, len);
    try {
      while (len > 0) {
        int chunk = (int) (pos >>> chunkPower);
        int off = (int) (pos & chunkMask);
        int n = (int) Math.min(len, lengths[chunk] - off);
        dst.put(dst.position(), views[chunk], off, n);
        dst.position(dst.position() + n);
        pos += n;
        len -= n;
      }
    } catch (InternalError e) {
      throw faulted("read", pos, e);
    }
  }

  /** Copies all of {@code src} to the mapping starting at {@code pos}. */
  public void write(long pos, ByteBuffer src) throws java.io.IOException {
    if (!writable) {
      throw new IllegalStateException("mapping is read-only: " + this);
    }
    int len = src.remaining();
    checkRange(pos, len);
    try {
      while (len > 0) {
        int chunk = (int) (pos >>> chunkPower);
        int off = (int) (pos & chunkMask);
        int n = (int) Math.min(len, lengths[chunk] - off);
        views[chunk].put(off, src, src.position(), n);
        src.position(src.position() + n);
        pos += n;
        len -= n;
      }
    } catch (InternalError e) {
      throw faulted("write", pos, e);
    }
  }

  /** Writes {@code len} zero bytes at {@code pos}. */
  public void zero(long pos, long len) throws java.io.IOException {
    checkRange(pos, len);
    ByteBuffer zeros = ByteBuffer.allocateDirect((int) Math.min(len, 1 << 20));
    while (len > 0) {
      int n = (int) Math.min(len, zeros.capacity());
      zeros.clear().limit(n);
      write(pos, zeros);
      pos += n;
      len -= n;
    }
  }

  /**
   * Makes the range durable: {@code msync(MS_SYNC)} of the pages that cover it, chunk by chunk.
   */
  public void force(long pos, long len) throws ErrnoException {
    checkRange(pos, len);
    if (len == 0) {
      return;
    }
    forEachPageRange(pos, len, (chunk, start, n) -> {
      try {
        LibC.msync(addresses[chunk].share(start), n, MS_SYNC);
      } catch (LastErrorException e) {
        throw ErrnoException.of("msync", file.path().toString(), e.getErrorCode(),
            "pos=" + (((long) chunk << chunkPower) + start) + " len=" + n);
      }
    });
  }

  /**
   * Whether every page of the range is in memory ({@code mincore}), so reading it will not
   * wait for the disk. Meant for small ranges (a few hundred pages); false on any doubt.
   */
  public boolean isResident(long pos, int len) {
    if (closed || pos < 0 || len <= 0 || pos > length - len) {
      return false;
    }
    int chunk = (int) (pos >>> chunkPower);
    long off = pos & chunkMask;
    if (off + len > lengths[chunk]) {
      return false; // crosses a chunk: not worth the second call
    }
    long start = off & ~(PAGE - 1);
    long span = off + len - start;
    byte[] vec = new byte[(int) ((span + PAGE - 1) / PAGE)];
    try {
      LibC.mincore(addresses[chunk].share(start), span, vec);
    } catch (LastErrorException | IllegalArgumentException e) {
      return false;
    }
    for (byte b : vec) {
      if ((b & 1) == 0) {
        return false;
      }
    }
    return true;
  }

  /**
   * A read-only view of [pos, pos+len) straight onto the mapping, or null when the range
   * crosses a chunk boundary. Reading it is reading the file's page cache with no copy; the view
   * must not be used after {@link #close}, and reading a page past a truncated end of the file
   * is SIGBUS, so callers use it only for ranges they know to be resident ({@link #isResident}).
   */
  public ByteBuffer view(long pos, int len) {
    checkRange(pos, len);
    int chunk = (int) (pos >>> chunkPower);
    int off = (int) (pos & chunkMask);
    if (off + (long) len > lengths[chunk]) {
      return null;
    }
    return views[chunk].slice(off, len).asReadOnlyBuffer();
  }

  /** Gives the kernel an access-pattern hint for the range ({@code madvise}). */
  public void advise(long pos, long len, Advice advice) throws ErrnoException {
    checkRange(pos, len);
    if (len == 0) {
      return;
    }
    forEachPageRange(pos, len, (chunk, start, n) -> {
      try {
        LibC.madvise(addresses[chunk].share(start), n, advice.value);
      } catch (LastErrorException e) {
        throw ErrnoException.of("madvise(" + advice + ")", file.path().toString(),
            e.getErrorCode(), null);
      }
    });
  }

  private interface PageRangeAction {
    void apply(int chunk, long start, long len) throws ErrnoException;
  }

  /** Splits [pos, pos+len) at chunk boundaries and widens each piece to whole pages. */
  private void forEachPageRange(long pos, long len, PageRangeAction action) throws ErrnoException {
    ensureOpen();
    long end = pos + len;
    while (pos < end) {
      int chunk = (int) (pos >>> chunkPower);
      long chunkStart = (long) chunk << chunkPower;
      long off = pos - chunkStart;
      long stop = Math.min(end - chunkStart, lengths[chunk]);
      long alignedStart = off & ~(PAGE - 1);
      action.apply(chunk, alignedStart, stop - alignedStart);
      pos = chunkStart + stop;
    }
  }

  private void checkRange(long pos, long len) {
    ensureOpen();
    if (pos < 0 || len < 0 || pos > length - len) {
      throw new IndexOutOfBoundsException(
          "range out of bounds (pos=" + pos + " len=" + len + " length=" + length + "): " + this);
    }
  }

  private void ensureOpen() {
    if (closed) {
      throw new AlreadyClosedException("mapping is closed: " + this);
    }
  }

  private java.io.IOException faulted(String op, long pos, InternalError e) {
    return new java.io.IOException("I/O error on " + op + " through the mapping (pos=" + pos
        + "): " + this + "; the disk may be full or failing", e);
  }

  /** Unmaps every chunk. Does not close the file handle. Idempotent. */
  @Override
  public void close() throws ErrnoException {
    if (closed) {
      return;
    }
    closed = true;
    unmapAll();
  }

  private void unmapAll() throws ErrnoException {
    ErrnoException first = null;
    for (int i = 0; i < addresses.length; i++) {
      if (addresses[i] != null) {
        try {
          LibC.munmap(addresses[i], lengths[i]);
        } catch (LastErrorException e) {
          if (first == null) {
            first = ErrnoException.of("munmap", file.path().toString(), e.getErrorCode(), null);
          }
        }
        addresses[i] = null;
        views[i] = null;
      }
    }
    if (first != null) {
      throw first;
    }
  }

  @Override
  public String toString() {
    return "MappedFile(" + file.path() + ", length=" + length + ", chunk=2^" + chunkPower + ")";
  }

  /** {@code madvise} advice values. */
  public enum Advice {
    NORMAL(0), RANDOM(1), SEQUENTIAL(2), WILLNEED(3), DONTNEED(4);

    final int value;

    Advice(int value) {
      this.value = value;
    }
  }
}
