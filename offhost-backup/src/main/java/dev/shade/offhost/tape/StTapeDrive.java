package dev.shade.offhost.tape;

import dev.shade.nativeio.Errno;
import dev.shade.nativeio.ErrnoException;
import dev.shade.nativeio.MagneticTape;
import dev.shade.nativeio.MtIo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.OptionalLong;

/**
 * A real Linux tape drive ({@code /dev/nst0}) through the {@code st} driver, in variable block
 * mode.
 *
 * <p>Not thread-safe: one thread at a time, as for every {@link TapeDrive}.
 */
final class StTapeDrive implements TapeDrive {
  /*
   * How st's answers map onto the TapeDrive contract (Documentation/scsi/st.rst):
   *
   * Writing. "When the end of medium early warning is encountered, the current write is
   * finished and the number of bytes is returned. The next write returns -1 and errno is set to
   * ENOSPC. To enable writing a trailer, the next write is allowed to proceed and, if
   * successful, the number of bytes is returned. After this, -1 and the number of bytes are
   * alternately returned until the physical end of medium (or some other error) is
   * encountered." So the first ENOSPC is the early warning: EndOfMediumRules reports it as
   * EarlyWarningException with nothing written, as the virtual drive does. In the trailer, an
   * ENOSPC is the driver's alternation and the same record is written again at once (the driver
   * lets that next write through); a second ENOSPC in a row, EIO, or a write of 0 bytes is the
   * physical end: EndOfMediumException. The trailer allowance is counted here in software, so a
   * drive with more room after its early-warning mark than trailerBytes still ends where the
   * virtual drive would: the archive writer sees one behaviour.
   *
   * Reading. read(2) returns the record; 0 at a filemark (st then stands after it) and 0 at the
   * end of data, which MTIOCGET tells apart with GMT_EOD; EIO with GMT_EOD set is also the end of
   * data (st answers EIO to reads past it). ENOMEM means the record is longer than the buffer;
   * st has then backed up over it, so the position is before it, as the contract says.
   *
   * Implicit filemarks (st writes one before a rewind, MTBSF, MTSEEK or close that follows a
   * write) are the driver's doing, so nothing here repeats them.
   *
   * The block size is set to 0 (variable) when the device is opened (MTSETBLK 0), as
   * 'mt setblk 0' does.
   */

  /** The default trailer allowance after the early warning: 16 MiB. */
  static final long DEFAULT_TRAILER_BYTES = 16L << 20;

  /** The device. */
  private final MagneticTape tape;
  /** Largest record. */
  private final int blockSize;
  /** Opened read-only. */
  private final boolean readOnly;
  /** The shared early-warning rules. */
  private final EndOfMediumRules rules;
  /** Set by close. */
  private boolean closed;

  StTapeDrive(MagneticTape tape, boolean readOnly, int blockSize, long trailerBytes) throws IOException {
    if (blockSize <= 0) {
      throw new IllegalArgumentException("block size must be positive: " + blockSize);
    }
    this.tape = tape;
    this.readOnly = readOnly;
    this.blockSize = blockSize;
    this.rules = new EndOfMediumRules(trailerBytes);
    try {
      tape.operation(MtIo.MTSETBLK, 0);
    } catch (ErrnoException e) {
      throw new TapeException("cannot set variable block mode (MTSETBLK 0) on " + tape.device() + ": "
          + e.getMessage(), e);
    }
  }

  /** Opens the device and sets variable block mode. */
  static StTapeDrive open(Path device, boolean readOnly, int blockSize, long trailerBytes) throws IOException {
    MagneticTape tape = MagneticTape.open(device, readOnly);
    try {
      return new StTapeDrive(tape, readOnly, blockSize, trailerBytes);
    } catch (IOException | RuntimeException e) {
      try {
        tape.close();
      } catch (IOException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }
  }

  @Override
  public int blockSize() {
    return blockSize;
  }

  @Override
  public long trailerBytes() {
    return rules.trailerBytes();
  }

  private void open() throws TapeException {
    if (closed) {
      throw new TapeException("drive is closed: " + this);
    }
  }

  @Override
  public void write(ByteBuffer record) throws IOException {
    int length = record.remaining();
    if (length == 0 || length > blockSize) {
      throw new IllegalArgumentException("record length must be 1 to " + blockSize + " bytes: " + length);
    }
    open();
    if (readOnly) {
      throw new TapeException("drive is opened read-only, so nothing is written: " + this);
    }
    rules.checkWrite(length, this);
    boolean trailer = rules.state() == EndOfMediumRules.State.TRAILER;
    int n;
    try {
      n = tape.write(record.duplicate());
    } catch (ErrnoException e) {
      if (e.errno() != Errno.ENOSPC) {
        throw writeFailure(e, length);
      }
      if (!trailer) {
        rules.reachedEarlyWarning();
        rules.checkWrite(length, this); // throws EarlyWarningException
        throw new IllegalStateException("early warning not reported: " + this);
      }
      // the driver's alternation in the trailer: the next write goes through
      try {
        n = tape.write(record.duplicate());
      } catch (ErrnoException again) {
        if (again.errno() == Errno.ENOSPC || again.errno() == Errno.EIO) {
          rules.physicalEnd();
          throw new EndOfMediumException("end of medium: the drive has no room for a record of " + length
              + " bytes in the trailer (" + again.getMessage() + "): " + this);
        }
        throw writeFailure(again, length);
      }
    }
    if (n == 0) {
      rules.physicalEnd();
      throw new EndOfMediumException("end of medium: the drive wrote nothing of a record of " + length
          + " bytes: " + this);
    }
    if (n != length) {
      throw new TapeException("medium error: the drive wrote " + n + " of " + length + " bytes of a record; the"
          + " record on tape is incomplete: " + this);
    }
    record.position(record.limit());
    rules.wrote(length);
  }

  private TapeException writeFailure(ErrnoException e, int length) {
    if (e.errno() == Errno.EACCES || e.errno() == Errno.EROFS || e.errno() == Errno.EPERM) {
      return new TapeException("cartridge is write-protected: " + this + " (" + e.getMessage() + ")", e);
    }
    return new TapeException("write of a record of " + length + " bytes failed: " + e.getMessage(), e);
  }

  @Override
  public void writeFilemarks(int count) throws IOException {
    if (count < 0) {
      throw new IllegalArgumentException("filemark count is negative: " + count);
    }
    open();
    if (readOnly) {
      throw new TapeException("drive is opened read-only, so no filemark is written: " + this);
    }
    op(MtIo.MTWEOF, count, "write " + count + " filemarks");
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    open();
    int room = dst.remaining();
    int n;
    try {
      n = tape.read(dst);
    } catch (ErrnoException e) {
      if (e.errno() == Errno.ENOMEM) {
        throw new TapeException("a record does not fit the buffer of " + room + " bytes (read with a buffer of "
            + "the block size, " + blockSize + "): " + this, e);
      }
      if (e.errno() == Errno.EIO && endOfData()) {
        return -1;
      }
      throw new TapeException("read failed: " + e.getMessage(), e);
    }
    if (n > 0) {
      return n;
    }
    return endOfData() ? -1 : 0;
  }

  private boolean endOfData() throws IOException {
    try {
      return tape.status().endOfData();
    } catch (ErrnoException e) {
      throw new TapeException("cannot read the drive status (MTIOCGET): " + e.getMessage(), e);
    }
  }

  @Override
  public void rewind() throws IOException {
    open();
    op(MtIo.MTREW, 1, "rewind");
    rules.reset();
  }

  @Override
  public void spaceFiles(int count) throws IOException {
    open();
    if (count == 0) {
      return;
    }
    try {
      tape.operation(count > 0 ? MtIo.MTFSF : MtIo.MTBSF, Math.abs(count));
    } catch (ErrnoException e) {
      rules.reset();
      throw new TapeException((count > 0 ? "end of data" : "beginning of tape") + " before spacing "
          + (count > 0 ? "forward" : "back") + " over " + Math.abs(count) + " filemarks (" + e.getMessage() + "): "
          + this, e);
    }
    rules.reset();
  }

  @Override
  public void seekEndOfData() throws IOException {
    open();
    op(MtIo.MTEOM, 1, "space to end of data");
    rules.reset();
  }

  @Override
  public long position() throws IOException {
    open();
    try {
      return tape.position();
    } catch (ErrnoException e) {
      throw new TapeException("cannot read the position (MTIOCPOS): " + e.getMessage(), e);
    }
  }

  @Override
  public void locate(long block) throws IOException {
    open();
    if (block < 0 || block > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("block number must be 0 to " + Integer.MAX_VALUE + ": " + block);
    }
    op(MtIo.MTSEEK, (int) block, "locate block " + block);
    rules.reset();
  }

  /**
   * Empty: st tells the early warning only when a write meets it (the ENOSPC of the class
   * comment) or, afterwards, as GMT_EOT in MTIOCGET; neither MTIOCGET nor MTIOCPOS says how far
   * ahead the mark is.
   */
  @Override
  public OptionalLong roomBeforeEarlyWarning() {
    return OptionalLong.empty();
  }

  @Override
  public TapeStatus status() throws IOException {
    open();
    MagneticTape.Status s;
    try {
      s = tape.status();
    } catch (ErrnoException e) {
      throw new TapeException("cannot read the drive status (MTIOCGET): " + e.getMessage(), e);
    }
    return new TapeStatus(s.fileNumber(), s.blockNumber(), s.beginningOfTape(), s.endOfData(),
        s.endOfTape() || rules.state() != EndOfMediumRules.State.NORMAL,
        rules.state() == EndOfMediumRules.State.END, readOnly || s.writeProtected());
  }

  private void op(int op, int count, String what) throws IOException {
    try {
      tape.operation(op, count);
    } catch (ErrnoException e) {
      throw new TapeException(what + " failed: " + e.getMessage(), e);
    }
  }

  @Override
  public void close() throws IOException {
    if (!closed) {
      closed = true;
      tape.close();
    }
  }

  @Override
  public String toString() {
    return "tape drive " + tape.device();
  }
}
