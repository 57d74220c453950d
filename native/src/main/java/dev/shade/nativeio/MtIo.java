package dev.shade.nativeio;

import com.sun.jna.NativeLong;
import com.sun.jna.Structure;

/**
 * The Linux magnetic tape interface of {@code <linux/mtio.h>}: the {@code MTIOCTOP} operation
 * codes, the {@code GMT_*} status bits of {@code mt_gstat}, the three ioctl request numbers and
 * the structures they pass, as the {@code st} driver defines them on LP64 Linux (x86-64, AArch64).
 *
 * <p>Thread-safe: constants and stateless helpers.
 */
public final class MtIo {
  /*
   * Layouts on LP64 (checked against gcc's sizeof/offsetof for x86-64, see MtIoTest):
   *
   *   struct mtop  { short mt_op; int mt_count; }          8 bytes: mt_op at 0, 2 bytes padding,
   *                                                        mt_count at 4
   *   struct mtget { long mt_type, mt_resid, mt_dsreg,     48 bytes: five longs at 0..39, then
   *                  mt_gstat, mt_erreg;                   __kernel_daddr_t (an int) mt_fileno
   *                  __kernel_daddr_t mt_fileno, mt_blkno; }  at 40 and mt_blkno at 44
   *   struct mtpos { long mt_blkno; }                      8 bytes
   *
   * The request numbers are _IOW('m', 1, struct mtop), _IOR('m', 2, struct mtget) and
   * _IOR('m', 3, struct mtpos) with the generic _IOC encoding of <asm-generic/ioctl.h>
   * (nr in bits 0-7, type in 8-15, size in 16-29, direction in 30-31; write = 1, read = 2),
   * which x86-64 and AArch64 both use.
   */

  /** {@code _IOC_WRITE}: user space writes the argument (the kernel reads it). */
  static final int IOC_WRITE = 1;
  /** {@code _IOC_READ}: the kernel fills the argument. */
  static final int IOC_READ = 2;

  /** {@code MTIOCTOP = _IOW('m', 1, struct mtop)}: do a tape operation. */
  public static final long MTIOCTOP = ioc(IOC_WRITE, 'm', 1, Mtop.SIZE);
  /** {@code MTIOCGET = _IOR('m', 2, struct mtget)}: get the drive status. */
  public static final long MTIOCGET = ioc(IOC_READ, 'm', 2, Mtget.SIZE);
  /** {@code MTIOCPOS = _IOR('m', 3, struct mtpos)}: get the logical block position. */
  public static final long MTIOCPOS = ioc(IOC_READ, 'm', 3, Mtpos.SIZE);

  // Operations of struct mtop (mt_op); st.rst describes each.
  /** Reset the drive. */
  public static final int MTRESET = 0;
  /** Space forward over {@code count} filemarks; positioned after the last one (first block of the next file). */
  public static final int MTFSF = 1;
  /** Space backward over {@code count} filemarks; positioned before the last one crossed. */
  public static final int MTBSF = 2;
  /** Space forward over {@code count} records. */
  public static final int MTFSR = 3;
  /** Space backward over {@code count} records. */
  public static final int MTBSR = 4;
  /** Write {@code count} filemarks (0 flushes the drive buffer). */
  public static final int MTWEOF = 5;
  /** Rewind. */
  public static final int MTREW = 6;
  /** Rewind and take the drive off line (often: eject). */
  public static final int MTOFFL = 7;
  /** No operation except flushing buffers; refreshes the status. */
  public static final int MTNOP = 8;
  /** Space backward over filemarks, positioned after the last one crossed. */
  public static final int MTBSFM = 10;
  /** Space forward over filemarks, positioned before the last one crossed. */
  public static final int MTFSFM = 11;
  /** Space to the end of recorded data, ready to append a file. */
  public static final int MTEOM = 12;
  /** Erase the tape. */
  public static final int MTERASE = 13;
  /** Set the block size; 0 selects variable block mode. */
  public static final int MTSETBLK = 20;
  /** Seek to the logical block {@code count}. */
  public static final int MTSEEK = 22;
  /** Load the tape. */
  public static final int MTLOAD = 30;
  /** Unload the tape. */
  public static final int MTUNLOAD = 31;
  /** Write {@code count} filemarks without waiting for the drive buffer to reach the tape. */
  public static final int MTWEOFI = 35;

  // Generic status bits of mt_gstat (GMT_xxx macros).
  /** At a filemark. */
  public static final long GMT_EOF = 0x80000000L;
  /** At the beginning of the tape. */
  public static final long GMT_BOT = 0x40000000L;
  /** At the end of the tape: past the early-warning mark or at the physical end. */
  public static final long GMT_EOT = 0x20000000L;
  /** At a DDS setmark. */
  public static final long GMT_SM = 0x10000000L;
  /** At the end of recorded data (or end of tape). */
  public static final long GMT_EOD = 0x08000000L;
  /** The cartridge is write-protected. */
  public static final long GMT_WR_PROT = 0x04000000L;
  /** The drive is on line (a tape is loaded and ready). */
  public static final long GMT_ONLINE = 0x01000000L;
  /** The door is open: no tape in the drive. */
  public static final long GMT_DR_OPEN = 0x00040000L;
  /** The drive asks for cleaning. */
  public static final long GMT_CLN = 0x00008000L;

  /** {@code MT_ST_BLKSIZE_MASK}: the block size field of {@code mt_dsreg}. */
  public static final long MT_ST_BLKSIZE_MASK = 0xffffffL;
  /** {@code MT_ST_DENSITY_SHIFT}: where the density code starts in {@code mt_dsreg}. */
  public static final int MT_ST_DENSITY_SHIFT = 24;

  private MtIo() {}

  /** The generic {@code _IOC(dir, type, nr, size)} encoding of an ioctl request number. */
  static long ioc(int dir, char type, int nr, int size) {
    return ((long) dir << 30) | ((long) size << 16) | ((long) type << 8) | nr;
  }

  /** The name of operation {@code op} ({@code "MTFSF"}), for messages. */
  public static String operationName(int op) {
    switch (op) {
      case MTRESET: return "MTRESET";
      case MTFSF: return "MTFSF";
      case MTBSF: return "MTBSF";
      case MTFSR: return "MTFSR";
      case MTBSR: return "MTBSR";
      case MTWEOF: return "MTWEOF";
      case MTREW: return "MTREW";
      case MTOFFL: return "MTOFFL";
      case MTNOP: return "MTNOP";
      case MTBSFM: return "MTBSFM";
      case MTFSFM: return "MTFSFM";
      case MTEOM: return "MTEOM";
      case MTERASE: return "MTERASE";
      case MTSETBLK: return "MTSETBLK";
      case MTSEEK: return "MTSEEK";
      case MTLOAD: return "MTLOAD";
      case MTUNLOAD: return "MTUNLOAD";
      case MTWEOFI: return "MTWEOFI";
      default: return "MT op " + op;
    }
  }

  /** {@code struct mtop}. */
  @Structure.FieldOrder({"mt_op", "mt_count"})
  public static final class Mtop extends Structure {
    /** sizeof(struct mtop) on LP64. */
    static final int SIZE = 8;
    /** The operation, one of the {@code MT*} codes. */
    public short mt_op;
    /** How many times (filemarks, records, the block size...). */
    public int mt_count;

    public Mtop() {}

    public Mtop(int op, int count) {
      this.mt_op = (short) op;
      this.mt_count = count;
    }
  }

  /** {@code struct mtget}. */
  @Structure.FieldOrder({"mt_type", "mt_resid", "mt_dsreg", "mt_gstat", "mt_erreg", "mt_fileno", "mt_blkno"})
  public static final class Mtget extends Structure {
    /** sizeof(struct mtget) on LP64. */
    static final int SIZE = 48;
    /** Type of the device ({@code MT_ISSCSI2} = 0x72 for st). */
    public NativeLong mt_type;
    /** Residual count of the last operation: bytes, files or records not done. */
    public NativeLong mt_resid;
    /** Block size (low 24 bits; 0 = variable) and density code (high 8 bits). */
    public NativeLong mt_dsreg;
    /** The {@code GMT_*} status bits. */
    public NativeLong mt_gstat;
    /** Recovered errors since the last status call (low 16 bits). */
    public NativeLong mt_erreg;
    /** Current file number, -1 when unknown. */
    public int mt_fileno;
    /** Current block number within the file, -1 when unknown (after MTBSF, MTSEEK). */
    public int mt_blkno;
  }

  /** {@code struct mtpos}. */
  @Structure.FieldOrder({"mt_blkno"})
  public static final class Mtpos extends Structure {
    /** sizeof(struct mtpos) on LP64. */
    static final int SIZE = 8;
    /** The logical block number (records and filemarks since the beginning of the tape). */
    public NativeLong mt_blkno;
  }
}
