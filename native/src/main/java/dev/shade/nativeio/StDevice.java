package dev.shade.nativeio;

import com.sun.jna.LastErrorException;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * A tape device of the Linux {@code st} driver, through {@code read(2)}, {@code write(2)} and
 * the mtio ioctls.
 *
 * <p>Not thread-safe: one thread at a time, as the tape has one position.
 */
final class StDevice implements MagneticTape {
  /** The open device. */
  private final FileHandle handle;

  private StDevice(FileHandle handle) {
    this.handle = handle;
  }

  static StDevice open(Path device, boolean readOnly) throws ErrnoException {
    return new StDevice(FileHandle.open(device, readOnly ? FileHandle.O_RDONLY : FileHandle.O_RDWR, 0));
  }

  @Override
  public int read(ByteBuffer dst) throws ErrnoException {
    int len = dst.remaining();
    try {
      long n;
      if (dst.isDirect()) {
        n = LibC.read(handle.fd(), Native.getDirectBufferPointer(dst).share(dst.position()), len);
      } else {
        try (Memory tmp = new Memory(Math.max(1, len))) {
          n = LibC.read(handle.fd(), tmp, len);
          if (n > 0) {
            tmp.read(0, dst.array(), dst.arrayOffset() + dst.position(), (int) n);
          }
        }
      }
      dst.position(dst.position() + (int) n);
      return (int) n;
    } catch (LastErrorException e) {
      throw error("read", e, "count=" + len);
    }
  }

  @Override
  public int write(ByteBuffer src) throws ErrnoException {
    int len = src.remaining();
    try {
      long n;
      if (src.isDirect()) {
        n = LibC.write(handle.fd(), Native.getDirectBufferPointer(src).share(src.position()), len);
      } else {
        try (Memory tmp = new Memory(Math.max(1, len))) {
          tmp.write(0, src.array(), src.arrayOffset() + src.position(), len);
          n = LibC.write(handle.fd(), tmp, len);
        }
      }
      src.position(src.position() + (int) n);
      return (int) n;
    } catch (LastErrorException e) {
      throw error("write", e, "count=" + len);
    }
  }

  @Override
  public void operation(int op, int count) throws ErrnoException {
    MtIo.Mtop mtop = new MtIo.Mtop(op, count);
    mtop.write();
    ioctl("MTIOCTOP " + MtIo.operationName(op), MtIo.MTIOCTOP, mtop.getPointer(), "count=" + count);
  }

  @Override
  public Status status() throws ErrnoException {
    MtIo.Mtget g = new MtIo.Mtget();
    ioctl("MTIOCGET", MtIo.MTIOCGET, g.getPointer(), null);
    g.read();
    return new Status(g.mt_type.longValue(), g.mt_resid.longValue(), g.mt_dsreg.longValue(),
        g.mt_gstat.longValue(), g.mt_erreg.longValue(), g.mt_fileno, g.mt_blkno);
  }

  @Override
  public long position() throws ErrnoException {
    MtIo.Mtpos p = new MtIo.Mtpos();
    ioctl("MTIOCPOS", MtIo.MTIOCPOS, p.getPointer(), null);
    p.read();
    return p.mt_blkno.longValue();
  }

  private void ioctl(String name, long request, Pointer arg, String detail) throws ErrnoException {
    try {
      LibC.ioctl(handle.fd(), request, arg);
    } catch (LastErrorException e) {
      throw error("ioctl(" + name + ")", e, detail);
    }
  }

  private ErrnoException error(String call, LastErrorException e, String detail) {
    return ErrnoException.of(call, handle.path().toString(), e.getErrorCode(), detail);
  }

  @Override
  public String device() {
    return handle.path().toString();
  }

  @Override
  public void close() throws ErrnoException {
    handle.close();
  }

  @Override
  public String toString() {
    return "StDevice(" + handle.path() + ")";
  }
}
