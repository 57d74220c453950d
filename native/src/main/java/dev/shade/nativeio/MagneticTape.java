package dev.shade.nativeio;

import java.io.Closeable;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * One open Linux tape device ({@code /dev/nst0}) as the {@code st} driver offers it: one record
 * per {@code read(2)} and {@code write(2)}, and the {@code MTIOCTOP}, {@code MTIOCGET} and
 * {@code MTIOCPOS} ioctls. Every failure is an {@link ErrnoException} that names the call, the
 * device and the errno; the meaning of that errno (ENOSPC at early warning, ENOMEM for a record
 * larger than the buffer, EIO) is the caller's to interpret, as Documentation/scsi/st.rst states it.
 *
 * <p>This interface is the seam between the tape state machine of the backup service and the
 * kernel: tests put a scripted device behind it, since no tape drive is at hand there.
 *
 * <p>Not thread-safe: a tape has one position, so one thread uses it at a time.
 */
public interface MagneticTape extends Closeable {
  /**
   * One {@code read(2)}: reads the next record into {@code dst} (its remaining bytes are the
   * byte count) and advances it. Returns the record length, or 0 at a filemark or at the end
   * of data.
   */
  int read(ByteBuffer dst) throws ErrnoException;

  /**
   * One {@code write(2)} of all of {@code src}'s remaining bytes, which in variable block mode
   * is one record; advances {@code src} by the count written and returns it.
   */
  int write(ByteBuffer src) throws ErrnoException;

  /** {@code ioctl(MTIOCTOP)} with {@code struct mtop {op, count}}; {@code op} is an {@code MtIo.MT*} code. */
  void operation(int op, int count) throws ErrnoException;

  /** {@code ioctl(MTIOCGET)}: the drive's status. */
  Status status() throws ErrnoException;

  /** {@code ioctl(MTIOCPOS)}: the logical block number. */
  long position() throws ErrnoException;

  /** The device path or a description of the device, for messages. */
  String device();

  /** Closes the device; the driver writes a filemark first if the last operation was a write. */
  @Override
  void close() throws ErrnoException;

  /**
   * Opens the tape device {@code device} ({@code O_RDWR}, or {@code O_RDONLY} when
   * {@code readOnly}). Use the no-rewind device ({@code /dev/nstN}): the rewinding one rewinds
   * at every close.
   */
  static MagneticTape open(Path device, boolean readOnly) throws ErrnoException {
    return StDevice.open(device, readOnly);
  }

  /**
   * The fields of {@code struct mtget}.
   *
   * @param type {@code mt_type} (0x72 = SCSI-2 tape)
   * @param residual {@code mt_resid}: what the last operation left undone
   * @param dsreg {@code mt_dsreg}: block size and density
   * @param gstat {@code mt_gstat}: the {@code GMT_*} bits
   * @param erreg {@code mt_erreg}: recovered error count
   * @param fileNumber {@code mt_fileno}, -1 when unknown
   * @param blockNumber {@code mt_blkno}, -1 when unknown
   */
  record Status(long type, long residual, long dsreg, long gstat, long erreg, int fileNumber, int blockNumber) {
    public boolean atFilemark() {
      return (gstat & MtIo.GMT_EOF) != 0;
    }

    public boolean beginningOfTape() {
      return (gstat & MtIo.GMT_BOT) != 0;
    }

    public boolean endOfTape() {
      return (gstat & MtIo.GMT_EOT) != 0;
    }

    public boolean endOfData() {
      return (gstat & MtIo.GMT_EOD) != 0;
    }

    public boolean writeProtected() {
      return (gstat & MtIo.GMT_WR_PROT) != 0;
    }

    public boolean online() {
      return (gstat & MtIo.GMT_ONLINE) != 0;
    }

    public boolean doorOpen() {
      return (gstat & MtIo.GMT_DR_OPEN) != 0;
    }

    /** The drive's block size; 0 in variable block mode. */
    public long blockSize() {
      return dsreg & MtIo.MT_ST_BLKSIZE_MASK;
    }

    /** The density code of the loaded medium. */
    public int density() {
      return (int) ((dsreg >>> MtIo.MT_ST_DENSITY_SHIFT) & 0xff);
    }
  }
}
