package dev.shade.nativeio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.jna.NativeLong;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The mtio request numbers, structure layouts and status bits against the values gcc computes
 * from {@code <linux/mtio.h>} on x86-64 ({@code printf("%lx", MTIOCTOP)}, {@code sizeof},
 * {@code offsetof}), and the ioctl path through a real kernel on a file that is not a tape.
 */
class MtIoTest {
  @TempDir Path dir;

  @Test
  void requestNumbers_matchTheKernelHeader() {
    assertEquals(0x40086d01L, MtIo.MTIOCTOP, "MTIOCTOP = _IOW('m', 1, struct mtop)");
    assertEquals(0x80306d02L, MtIo.MTIOCGET, "MTIOCGET = _IOR('m', 2, struct mtget)");
    assertEquals(0x80086d03L, MtIo.MTIOCPOS, "MTIOCPOS = _IOR('m', 3, struct mtpos)");
    // and the encoding agrees with a request number of another family computed the same way
    assertEquals(FsFreeze.FIFREEZE, MtIo.ioc(MtIo.IOC_READ | MtIo.IOC_WRITE, 'X', 119, 4));
  }

  @Test
  void structureSizes_matchLp64() {
    assertEquals(8, new MtIo.Mtop().size());
    assertEquals(48, new MtIo.Mtget().size());
    assertEquals(8, new MtIo.Mtpos().size());
    assertEquals(MtIo.Mtop.SIZE, new MtIo.Mtop().size());
    assertEquals(MtIo.Mtget.SIZE, new MtIo.Mtget().size());
    assertEquals(MtIo.Mtpos.SIZE, new MtIo.Mtpos().size());
  }

  @Test
  void mtop_opIsAShortAtZeroAndCountAnIntAtFour() {
    MtIo.Mtop op = new MtIo.Mtop(MtIo.MTFSF, 0x01020304);
    op.write();
    assertEquals(MtIo.MTFSF, op.getPointer().getShort(0));
    assertEquals(0x01020304, op.getPointer().getInt(4));
  }

  @Test
  void mtget_fileAndBlockNumbersAreIntsAfterFiveLongs() {
    MtIo.Mtget g = new MtIo.Mtget();
    g.getPointer().setLong(0, 0x72);
    g.getPointer().setLong(8, 17);
    g.getPointer().setLong(16, (0x58L << 24) | 262144);
    g.getPointer().setLong(24, MtIo.GMT_EOF | MtIo.GMT_ONLINE);
    g.getPointer().setLong(32, 3);
    g.getPointer().setInt(40, 7);
    g.getPointer().setInt(44, -1);
    g.read();
    assertEquals(new NativeLong(0x72), g.mt_type);
    assertEquals(new NativeLong(17), g.mt_resid);
    assertEquals(7, g.mt_fileno);
    assertEquals(-1, g.mt_blkno);
    MagneticTape.Status s = new MagneticTape.Status(g.mt_type.longValue(), g.mt_resid.longValue(),
        g.mt_dsreg.longValue(), g.mt_gstat.longValue(), g.mt_erreg.longValue(), g.mt_fileno, g.mt_blkno);
    assertEquals(262144, s.blockSize());
    assertEquals(0x58, s.density());
    assertTrue(s.atFilemark());
    assertTrue(s.online());
    assertFalse(s.beginningOfTape());
    assertFalse(s.endOfData());
    assertFalse(s.writeProtected());
  }

  @ParameterizedTest
  @CsvSource({
    "0x80000000, EOF", "0x40000000, BOT", "0x20000000, EOT", "0x08000000, EOD",
    "0x04000000, WR_PROT", "0x01000000, ONLINE", "0x00040000, DR_OPEN"
  })
  void statusBits_eachAnswersItsOwnQuestion(String hex, String name) {
    long bit = Long.decode(hex);
    MagneticTape.Status s = new MagneticTape.Status(0, 0, 0, bit, 0, 0, 0);
    assertEquals(name.equals("EOF"), s.atFilemark());
    assertEquals(name.equals("BOT"), s.beginningOfTape());
    assertEquals(name.equals("EOT"), s.endOfTape());
    assertEquals(name.equals("EOD"), s.endOfData());
    assertEquals(name.equals("WR_PROT"), s.writeProtected());
    assertEquals(name.equals("ONLINE"), s.online());
    assertEquals(name.equals("DR_OPEN"), s.doorOpen());
  }

  @Test
  void operationCodes_matchTheKernelHeader() {
    assertEquals(1, MtIo.MTFSF);
    assertEquals(2, MtIo.MTBSF);
    assertEquals(5, MtIo.MTWEOF);
    assertEquals(6, MtIo.MTREW);
    assertEquals(12, MtIo.MTEOM);
    assertEquals(20, MtIo.MTSETBLK);
    assertEquals(22, MtIo.MTSEEK);
    assertEquals(35, MtIo.MTWEOFI);
    assertEquals("MTBSF", MtIo.operationName(MtIo.MTBSF));
  }

  @Test
  void ioctlsOnAFileThatIsNoTape_failWithEnottyNamingTheRequestAndPath() throws Exception {
    Path file = Files.write(dir.resolve("not-a-tape"), new byte[4096]);
    try (MagneticTape tape = MagneticTape.open(file, false)) {
      ErrnoException get = assertThrows(ErrnoException.class, tape::status);
      assertEquals(Errno.ENOTTY, get.errno());
      assertTrue(get.getMessage().contains("ioctl(MTIOCGET)(" + file + ")"), get.getMessage());
      assertTrue(get.getMessage().contains("ENOTTY"), get.getMessage());
      ErrnoException op = assertThrows(ErrnoException.class, () -> tape.operation(MtIo.MTREW, 1));
      assertEquals(Errno.ENOTTY, op.errno());
      assertTrue(op.getMessage().contains("MTIOCTOP MTREW"), op.getMessage());
      assertEquals(Errno.ENOTTY, assertThrows(ErrnoException.class, tape::position).errno());
      // read(2) and write(2) go through: on a plain file they move its offset
      ByteBuffer record = ByteBuffer.allocate(512);
      assertEquals(512, tape.read(record));
      assertEquals(100, tape.write(ByteBuffer.wrap(new byte[100])));
      assertEquals(file.toString(), tape.device());
    }
  }

  @Test
  void open_missingDeviceNamesThePath() {
    Path missing = dir.resolve("nst9");
    NotFoundException e = assertThrows(NotFoundException.class, () -> MagneticTape.open(missing, true));
    assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
  }
}
