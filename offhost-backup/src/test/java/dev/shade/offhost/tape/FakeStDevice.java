package dev.shade.offhost.tape;

import dev.shade.nativeio.Errno;
import dev.shade.nativeio.ErrnoException;
import dev.shade.nativeio.MagneticTape;
import dev.shade.nativeio.MtIo;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * A scripted stand-in for the kernel's st driver with a tape in the drive, in variable block
 * mode: the answers Documentation/scsi/st.rst gives (the write that meets the early warning
 * succeeds, then ENOSPC and a successful write alternate until the physical end, where writes
 * fail with EIO; 0 from read at a filemark and at the end of data, EIO for reads past it;
 * ENOMEM with the position kept for a record longer than the buffer; a filemark written before
 * a rewind, MTBSF, MTSEEK or close that follows a write; file and block numbers of -1 after
 * MTBSF and MTSEEK), plus errors injected by the test.
 */
final class FakeStDevice implements MagneticTape {
  /** The tape: a record's bytes, or null for a filemark. */
  final List<byte[]> frames;
  /** Every call, in order ("write 4096", "MTFSF 2", "read -> 0"), for assertions. */
  final List<String> calls = new ArrayList<>();
  /** Errnos to fail the next calls of a kind with ("write", "read", "MTREW"...). */
  private final Deque<String[]> injected = new ArrayDeque<>();
  /** Record bytes after which the early warning is reported. */
  private final long earlyWarningAt;
  /** Record bytes the tape holds physically. */
  private final long physicalEnd;
  /** The cartridge's write-protect tab. */
  boolean writeProtected;

  private int pos;
  private int fileno;
  private int blkno;
  /** st's eof state for writes: the early warning was met, so the next write gets ENOSPC. */
  private boolean eomOk;
  private boolean lastWasWrite;
  private boolean readAtEod;
  /** MTEOM brought the tape to the end of data. */
  private boolean eodBySpacing;
  /** Block size set with MTSETBLK; -1 before. */
  long blockSize = -1;
  boolean closed;
  /** Set by MTOFFL: the cartridge was ejected. */
  boolean ejected;

  FakeStDevice(long earlyWarningAt, long physicalEnd) {
    this(new ArrayList<>(), earlyWarningAt, physicalEnd);
  }

  /**
   * A drive with the cartridge {@code frames} in it (shared, so the tape outlives this device:
   * a test keeps cartridges as frame lists and "loads" one by opening a device over it).
   */
  FakeStDevice(List<byte[]> frames, long earlyWarningAt, long physicalEnd) {
    this.frames = frames;
    this.earlyWarningAt = earlyWarningAt;
    this.physicalEnd = physicalEnd;
  }

  /** The next call of {@code kind} fails with {@code errno}. */
  FakeStDevice inject(String kind, int errno) {
    injected.add(new String[] {kind, Integer.toString(errno)});
    return this;
  }

  private void maybeFail(String kind, String call) throws ErrnoException {
    String[] next = injected.peek();
    if (next != null && next[0].equals(kind)) {
      injected.poll();
      calls.add(call + " -> injected " + Errno.name(Integer.parseInt(next[1])));
      throw ErrnoException.of(call.startsWith("MT") ? "ioctl(MTIOCTOP " + kind + ")" : kind, device(),
          Integer.parseInt(next[1]), null);
    }
  }

  private long bytesBefore(int frame) {
    long n = 0;
    for (int i = 0; i < frame; i++) {
      n += frames.get(i) == null ? 0 : frames.get(i).length;
    }
    return n;
  }

  private ErrnoException errno(String call, int errno) {
    calls.add(call + " -> " + Errno.name(errno));
    return ErrnoException.of(call, device(), errno, null);
  }

  @Override
  public int write(ByteBuffer src) throws ErrnoException {
    int len = src.remaining();
    String call = "write " + len;
    maybeFail("write", call);
    if (writeProtected) {
      throw errno("write", Errno.EACCES);
    }
    if (eomOk) {
      eomOk = false; // ST_EOD_1: the next write may proceed
      throw errno("write", Errno.ENOSPC);
    }
    long start = bytesBefore(pos);
    if (start + len > physicalEnd) {
      throw errno("write", Errno.EIO);
    }
    truncate();
    readAtEod = false;
    eodBySpacing = false;
    byte[] b = new byte[len];
    src.get(b);
    frames.add(b);
    pos++;
    blkno++;
    lastWasWrite = true;
    if (start + len > earlyWarningAt) {
      eomOk = true;
    }
    calls.add(call);
    return len;
  }

  private void truncate() {
    while (frames.size() > pos) {
      frames.remove(frames.size() - 1);
    }
  }

  @Override
  public int read(ByteBuffer dst) throws ErrnoException {
    maybeFail("read", "read");
    lastWasWrite = false;
    if (pos == frames.size()) {
      if (readAtEod) {
        throw errno("read", Errno.EIO);
      }
      readAtEod = true;
      calls.add("read -> 0 (EOD)");
      return 0;
    }
    byte[] f = frames.get(pos);
    if (f == null) {
      pos++;
      fileno++;
      blkno = 0;
      calls.add("read -> 0 (filemark)");
      return 0;
    }
    if (f.length > dst.remaining()) {
      throw errno("read", Errno.ENOMEM); // st backs up over the record: position kept
    }
    dst.put(f);
    pos++;
    blkno++;
    calls.add("read -> " + f.length);
    return f.length;
  }

  private void implicitFilemark() {
    if (lastWasWrite) {
      truncate();
      frames.add(null);
      pos++;
      fileno++;
      blkno = 0;
      calls.add("(driver writes a filemark)");
    }
    lastWasWrite = false;
  }

  @Override
  public void operation(int op, int count) throws ErrnoException {
    String name = MtIo.operationName(op);
    String call = name + " " + count;
    maybeFail(name, call);
    calls.add(call);
    eomOk = false;
    readAtEod = false;
    eodBySpacing = op == MtIo.MTEOM;
    switch (op) {
      case MtIo.MTSETBLK:
        blockSize = count;
        return;
      case MtIo.MTWEOF:
        if (writeProtected) {
          throw errno("ioctl(MTIOCTOP MTWEOF)", Errno.EACCES);
        }
        truncate();
        for (int i = 0; i < count; i++) {
          frames.add(null);
          pos++;
          fileno++;
          blkno = 0;
        }
        lastWasWrite = false;
        return;
      case MtIo.MTREW:
        implicitFilemark();
        pos = 0;
        fileno = 0;
        blkno = 0;
        return;
      case MtIo.MTOFFL:
        implicitFilemark();
        pos = 0;
        fileno = 0;
        blkno = 0;
        ejected = true;
        return;
      case MtIo.MTEOM:
        lastWasWrite = false;
        while (pos < frames.size()) {
          if (frames.get(pos) == null) {
            fileno++;
            blkno = 0;
          } else {
            blkno++;
          }
          pos++;
        }
        return;
      case MtIo.MTFSF:
        lastWasWrite = false;
        for (int crossed = 0; crossed < count; ) {
          if (pos == frames.size()) {
            eodBySpacing = true; // the blank check tells st it is at the end of data
            throw errno("ioctl(MTIOCTOP MTFSF)", Errno.EIO);
          }
          if (frames.get(pos++) == null) {
            crossed++;
            fileno++;
          }
        }
        blkno = 0;
        return;
      case MtIo.MTBSF:
        implicitFilemark();
        for (int crossed = 0; crossed < count; ) {
          if (pos == 0) {
            fileno = 0;
            blkno = 0;
            throw errno("ioctl(MTIOCTOP MTBSF)", Errno.EIO);
          }
          if (frames.get(--pos) == null) {
            crossed++;
            fileno--;
          }
        }
        blkno = -1;
        return;
      case MtIo.MTSEEK:
        implicitFilemark();
        if (count > frames.size()) {
          pos = frames.size();
          throw errno("ioctl(MTIOCTOP MTSEEK)", Errno.EIO);
        }
        pos = count;
        fileno = -1;
        blkno = -1;
        return;
      default:
        throw errno("ioctl(MTIOCTOP " + name + ")", Errno.EINVAL);
    }
  }

  @Override
  public Status status() throws ErrnoException {
    maybeFail("MTIOCGET", "MTIOCGET");
    long g = MtIo.GMT_ONLINE;
    if (pos == 0) {
      g |= MtIo.GMT_BOT;
    }
    if (readAtEod || (eodBySpacing && pos == frames.size())) {
      g |= MtIo.GMT_EOD; // st knows the end of data once a read met it (blank check) or MTEOM went there
    } else if (pos > 0 && pos <= frames.size() && frames.get(pos - 1) == null) {
      g |= MtIo.GMT_EOF;
    }
    if (bytesBefore(pos) > earlyWarningAt) {
      g |= MtIo.GMT_EOT;
    }
    if (writeProtected) {
      g |= MtIo.GMT_WR_PROT;
    }
    return new Status(0x72, 0, Math.max(0, blockSize), g, 0, fileno, blkno);
  }

  @Override
  public long position() throws ErrnoException {
    maybeFail("MTIOCPOS", "MTIOCPOS");
    return pos;
  }

  @Override
  public String device() {
    return "/dev/fake-nst0";
  }

  @Override
  public void close() {
    implicitFilemark();
    closed = true;
  }
}
