package dev.shade.offhost.tape;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.nativeio.Errno;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

/** How {@link StTapeDrive} reads the st driver's answers, call by call, against the scripted driver. */
class StTapeDriveTest {
  static final int BLOCK = 4096;

  private static ByteBuffer block() {
    return ByteBuffer.allocate(BLOCK);
  }

  @Test
  void open_setsVariableBlockModeFirst() throws IOException {
    FakeStDevice dev = new FakeStDevice(1 << 20, 2 << 20);
    try (StTapeDrive d = new StTapeDrive(dev, false, BLOCK, 8192)) {
      assertEquals(0, dev.blockSize);
      assertEquals("MTSETBLK 0", dev.calls.get(0));
    }
    assertTrue(dev.closed);
  }

  @Test
  void roomBeforeEarlyWarning_isNotKnown() throws IOException {
    FakeStDevice dev = new FakeStDevice(1 << 20, 2 << 20);
    try (StTapeDrive d = new StTapeDrive(dev, false, BLOCK, 8192)) {
      assertTrue(d.roomBeforeEarlyWarning().isEmpty());
      d.write(block());
      assertTrue(d.roomBeforeEarlyWarning().isEmpty(), "st does not say how far the mark is");
    }
  }

  @Test
  void open_failingMtsetblkNamesTheDevice() {
    FakeStDevice dev = new FakeStDevice(1 << 20, 2 << 20).inject("MTSETBLK", Errno.EIO);
    TapeException e = assertThrows(TapeException.class, () -> new StTapeDrive(dev, false, BLOCK, 8192));
    assertTrue(e.getMessage().contains("MTSETBLK 0") && e.getMessage().contains("/dev/fake-nst0"), e.getMessage());
  }

  @Test
  void earlyWarning_firstEnospcIsTheWarningAndTrailerWritesRideTheAlternation() throws IOException {
    // warning after 2 blocks, physical end far away, trailer allowance 3 blocks
    FakeStDevice dev = new FakeStDevice(2 * BLOCK - 1, 100 * BLOCK);
    try (StTapeDrive d = new StTapeDrive(dev, false, BLOCK, 3 * BLOCK)) {
      d.write(block());
      d.write(block()); // meets the early warning, completes
      assertThrows(EarlyWarningException.class, () -> d.write(block()));
      d.write(block()); // the driver lets the next write through
      d.write(block()); // ENOSPC from the alternation, written again
      d.write(block());
      assertThrows(EndOfMediumException.class, () -> d.write(block()), "allowance of 3 blocks used");
      assertTrue(d.status().endOfMedium());
      assertTrue(d.status().earlyWarning());
    }
    assertEquals(5, dev.frames.stream().filter(f -> f != null).count());
    List<String> writes = dev.calls.stream().filter(c -> c.startsWith("write")).toList();
    assertEquals(List.of("write 4096", "write 4096", "write -> ENOSPC", "write 4096", "write -> ENOSPC",
        "write 4096", "write -> ENOSPC", "write 4096"), writes);
  }

  @Test
  void trailer_physicalEndBeforeTheAllowanceIsEndOfMedium() throws IOException {
    FakeStDevice dev = new FakeStDevice(BLOCK - 1, 3 * BLOCK);
    try (StTapeDrive d = new StTapeDrive(dev, false, BLOCK, 100 * BLOCK)) {
      d.write(block());
      assertThrows(EarlyWarningException.class, () -> d.write(block()));
      d.write(block());
      d.write(block());
      EndOfMediumException e = assertThrows(EndOfMediumException.class, () -> d.write(block()));
      assertTrue(e.getMessage().contains("EIO"), e.getMessage());
      assertThrows(EndOfMediumException.class, () -> d.write(block()));
    }
  }

  @Test
  void eioOnAWriteBeforeTheWarning_isAMediumErrorNotTheEnd() throws IOException {
    FakeStDevice dev = new FakeStDevice(1 << 20, 2 << 20).inject("write", Errno.EIO);
    try (StTapeDrive d = new StTapeDrive(dev, false, BLOCK, 8192)) {
      TapeException e = assertThrows(TapeException.class, () -> d.write(block()));
      assertFalse(e instanceof EndOfMediumException);
      assertTrue(e.getMessage().contains("EIO"), e.getMessage());
      d.write(block()); // the drive goes on
    }
  }

  @Test
  void writeProtected_saysSo() throws IOException {
    FakeStDevice dev = new FakeStDevice(1 << 20, 2 << 20);
    dev.writeProtected = true;
    try (StTapeDrive d = new StTapeDrive(dev, false, BLOCK, 8192)) {
      TapeException e = assertThrows(TapeException.class, () -> d.write(block()));
      assertTrue(e.getMessage().contains("write-protected"), e.getMessage());
      assertTrue(d.status().writeProtected());
    }
  }

  @Test
  void readOnly_writesNothing() throws IOException {
    FakeStDevice dev = new FakeStDevice(1 << 20, 2 << 20);
    try (StTapeDrive d = new StTapeDrive(dev, true, BLOCK, 8192)) {
      assertThrows(TapeException.class, () -> d.write(block()));
      assertThrows(TapeException.class, () -> d.writeFilemarks(1));
      assertTrue(d.status().writeProtected());
    }
    assertTrue(dev.calls.stream().noneMatch(c -> c.startsWith("write") || c.startsWith("MTWEOF")), dev.calls::toString);
  }

  @Test
  void readEioAwayFromTheEndOfData_isAMediumError() throws IOException {
    FakeStDevice dev = new FakeStDevice(1 << 20, 2 << 20);
    try (StTapeDrive d = new StTapeDrive(dev, false, BLOCK, 8192)) {
      d.write(block());
      d.writeFilemarks(1);
      d.rewind();
      dev.inject("read", Errno.EIO);
      TapeException e = assertThrows(TapeException.class, () -> d.read(block()));
      assertTrue(e.getMessage().contains("read failed"), e.getMessage());
    }
  }

  @Test
  void readsAtTheEndOfData_areMinusOneWhetherStAnswersZeroOrEio() throws IOException {
    FakeStDevice dev = new FakeStDevice(1 << 20, 2 << 20);
    try (StTapeDrive d = new StTapeDrive(dev, false, BLOCK, 8192)) {
      d.writeFilemarks(1);
      d.rewind();
      assertEquals(0, d.read(block()));
      assertEquals(-1, d.read(block()));
      assertEquals(-1, d.read(block()));
    }
    assertTrue(dev.calls.contains("read -> 0 (EOD)") && dev.calls.contains("read -> EIO"), dev.calls::toString);
  }

  @Test
  void spacing_usesMtfsfAndMtbsfAndStatusMapsTheDriversNumbers() throws IOException {
    FakeStDevice dev = new FakeStDevice(1 << 20, 2 << 20);
    try (StTapeDrive d = new StTapeDrive(dev, false, BLOCK, 8192)) {
      for (int f = 0; f < 3; f++) {
        d.write(block());
        d.writeFilemarks(1);
      }
      d.seekFile(2);
      assertEquals(2, d.status().fileNumber());
      d.spaceFiles(-1);
      assertEquals(-1, d.status().blockNumber(), "st cannot tell the block after MTBSF");
      d.seekEndOfData();
      assertTrue(d.status().endOfData());
    }
    assertTrue(dev.calls.containsAll(List.of("MTREW 1", "MTFSF 2", "MTBSF 1", "MTEOM 1")), dev.calls::toString);
  }

  @Test
  void locate_usesMtseekAndPositionMtiocpos() throws IOException {
    FakeStDevice dev = new FakeStDevice(1 << 20, 2 << 20);
    try (StTapeDrive d = new StTapeDrive(dev, false, BLOCK, 8192)) {
      d.write(block());
      d.write(block());
      d.writeFilemarks(1);
      assertEquals(3, d.position());
      d.locate(1);
      assertEquals(1, d.position());
      assertEquals(-1, d.status().fileNumber(), "st cannot tell the file after MTSEEK");
    }
    assertTrue(dev.calls.contains("MTSEEK 1"), dev.calls::toString);
  }
}
