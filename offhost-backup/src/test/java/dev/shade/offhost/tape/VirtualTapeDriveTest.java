package dev.shade.offhost.tape;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.OptionalLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The {@link TapeDrive} contract on a drive of the virtual library. */
class VirtualTapeDriveTest extends TapeDriveContractTest {
  @TempDir Path dir;
  private VirtualTapeLibrary library;

  @Override
  TapeDrive newDrive() throws IOException {
    library = VirtualTapeLibrary.create(dir.resolve("vtl"), new LibraryConfig(1, 1, CAPACITY, ZONE, BLOCK));
    return library.load(1);
  }

  @Test
  void roomBeforeEarlyWarning_isExact_zeroFromTheRecordThatReachesTheZone_positionalAfterALocate() throws IOException {
    TapeDrive d = drive;
    long mark = CAPACITY - ZONE;
    assertEquals(OptionalLong.of(mark), d.roomBeforeEarlyWarning(), "a blank tape");
    d.write(ByteBuffer.allocate(BLOCK));
    d.write(ByteBuffer.allocate(100));
    d.writeFilemarks(1); // filemarks take no room
    assertEquals(OptionalLong.of(mark - BLOCK - 100), d.roomBeforeEarlyWarning());
    // records of exactly the room left end at the mark without reaching it
    long left = d.roomBeforeEarlyWarning().getAsLong();
    while (left > 0) {
      int n = (int) Math.min(BLOCK, left);
      d.write(ByteBuffer.allocate(n));
      left -= n;
    }
    assertEquals(OptionalLong.of(0), d.roomBeforeEarlyWarning());
    assertEquals(false, d.status().earlyWarning(), "at the mark, not past it");
    d.write(ByteBuffer.allocate(1)); // reaches the zone
    assertEquals(OptionalLong.of(0), d.roomBeforeEarlyWarning());
    assertThrows(EarlyWarningException.class, () -> d.write(ByteBuffer.allocate(1)));
    assertEquals(OptionalLong.of(0), d.roomBeforeEarlyWarning(), "in the trailer");
    d.locate(1); // after the first record: writing there cuts the rest
    assertEquals(OptionalLong.of(mark - BLOCK), d.roomBeforeEarlyWarning());
  }

  @AfterEach
  void closeLibrary() throws IOException {
    library.close();
  }
}
