package dev.shade.offhost.tape;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The rules of {@link TapeDrive} that every back-end must follow, run against each of them with
 * the same geometry: 4 KiB blocks, 64 KiB cartridges, an early-warning zone of three blocks
 * (so the trailer allowance is two blocks).
 */
abstract class TapeDriveContractTest {
  static final int BLOCK = 4096;
  static final long CAPACITY = 64 * 1024;
  static final long ZONE = 3 * BLOCK;
  static final long TRAILER = ZONE - BLOCK;

  /** The drive under test, with a blank cartridge. */
  TapeDrive drive;

  /** A drive of this back-end with a blank cartridge of the geometry above. */
  abstract TapeDrive newDrive() throws IOException;

  @BeforeEach
  void setUp() throws IOException {
    drive = newDrive();
  }

  @AfterEach
  void tearDown() throws IOException {
    drive.close();
  }

  static ByteBuffer record(int seed, int length) {
    byte[] b = new byte[length];
    new Random(seed).nextBytes(b);
    return ByteBuffer.wrap(b);
  }

  /** Reads one record; asserts it is one and returns its bytes. */
  byte[] readRecord() throws IOException {
    ByteBuffer b = ByteBuffer.allocate(BLOCK);
    int n = drive.read(b);
    assertTrue(n > 0, "expected a record, got " + n);
    return java.util.Arrays.copyOf(b.array(), n);
  }

  int readResult() throws IOException {
    return drive.read(ByteBuffer.allocate(BLOCK));
  }

  /** Writes file 0 (3 records), file 1 (2), file 2 (1), each ended by a filemark. */
  void writeThreeFiles() throws IOException {
    int seed = 0;
    for (int records : new int[] {3, 2, 1}) {
      for (int r = 0; r < records; r++) {
        drive.write(record(seed++, 100 + seed));
      }
      drive.writeFilemarks(1);
    }
  }

  @Test
  void readBack_recordsThenZeroAtEachFilemarkThenMinusOneAtEndOfData() throws IOException {
    writeThreeFiles();
    drive.rewind();
    assertTrue(drive.status().beginningOfTape());
    int seed = 0;
    for (int records : new int[] {3, 2, 1}) {
      for (int r = 0; r < records; r++) {
        assertArrayEquals(record(seed++, 100 + seed).array(), readRecord());
      }
      assertEquals(0, readResult(), "filemark");
    }
    assertEquals(-1, readResult(), "end of data");
    assertEquals(-1, readResult(), "still at the end of data");
    assertTrue(drive.status().endOfData());
  }

  @Test
  void seekFile_landsOnBlockZeroOfThatFile() throws IOException {
    writeThreeFiles();
    drive.seekFile(1);
    TapeStatus s = drive.status();
    assertEquals(1, s.fileNumber());
    assertEquals(0, s.blockNumber());
    assertArrayEquals(record(3, 104).array(), readRecord());
    drive.seekFile(2);
    assertArrayEquals(record(5, 106).array(), readRecord());
    assertEquals(0, readResult());
  }

  @Test
  void spaceForward_pastTheLastFilemarkFailsAtEndOfData() throws IOException {
    writeThreeFiles();
    drive.rewind();
    drive.spaceFiles(3); // after the third filemark: the end of data
    assertEquals(-1, readResult());
    drive.rewind();
    TapeException e = assertThrows(TapeException.class, () -> drive.spaceFiles(4));
    assertTrue(e.getMessage().contains("end of data"), e.getMessage());
    assertTrue(drive.status().endOfData());
  }

  @Test
  void spaceBackward_stopsBeforeTheFilemarkAtTheEndOfTheEarlierFile() throws IOException {
    writeThreeFiles();
    drive.seekFile(2);
    readRecord(); // inside file 2
    drive.spaceFiles(-1); // before the filemark that ends file 1
    assertEquals(0, readResult(), "the filemark ending file 1");
    assertArrayEquals(record(5, 106).array(), readRecord(), "then file 2 again");
    // back two and forward one: the start of the previous file
    drive.spaceFiles(-2);
    drive.spaceFiles(1);
    assertArrayEquals(record(3, 104).array(), readRecord(), "the first record of file 1");
  }

  @Test
  void spaceBackward_pastTheBeginningFailsAtTheBeginning() throws IOException {
    writeThreeFiles();
    drive.seekFile(1);
    TapeException e = assertThrows(TapeException.class, () -> drive.spaceFiles(-2));
    assertTrue(e.getMessage().contains("beginning of tape"), e.getMessage());
    assertTrue(drive.status().beginningOfTape());
    assertArrayEquals(record(0, 101).array(), readRecord());
  }

  @Test
  void seekEndOfData_appendsAFileAfterTheLast() throws IOException {
    writeThreeFiles();
    drive.rewind();
    drive.seekEndOfData();
    assertEquals(3, drive.status().fileNumber());
    drive.write(record(99, 50));
    drive.writeFilemarks(1);
    drive.seekFile(3);
    assertArrayEquals(record(99, 50).array(), readRecord());
    assertEquals(0, readResult());
    assertEquals(-1, readResult());
  }

  @Test
  void writeInTheMiddle_makesEverythingAfterItUnreadable() throws IOException {
    writeThreeFiles();
    drive.seekFile(1);
    drive.write(record(77, 10));
    drive.writeFilemarks(1);
    drive.seekFile(1);
    assertArrayEquals(record(77, 10).array(), readRecord());
    assertEquals(0, readResult());
    assertEquals(-1, readResult(), "file 2 is gone");
    drive.rewind();
    assertThrows(TapeException.class, () -> drive.spaceFiles(3));
  }

  @Test
  void rewindAfterARecordWrite_firstWritesAFilemark() throws IOException {
    drive.write(record(1, 10));
    drive.rewind();
    assertArrayEquals(record(1, 10).array(), readRecord());
    assertEquals(0, readResult(), "the filemark written before the rewind");
    assertEquals(-1, readResult());
  }

  @Test
  void recordLongerThanTheBuffer_failsAndLeavesThePositionBeforeIt() throws IOException {
    drive.write(record(1, 1000));
    drive.writeFilemarks(1);
    drive.rewind();
    TapeException e = assertThrows(TapeException.class, () -> drive.read(ByteBuffer.allocate(999)));
    assertTrue(e.getMessage().contains("buffer"), e.getMessage());
    assertArrayEquals(record(1, 1000).array(), readRecord(), "a larger buffer reads the same record");
  }

  @Test
  void recordLongerThanTheBlockSize_isRefused() {
    assertThrows(IllegalArgumentException.class, () -> drive.write(ByteBuffer.allocate(BLOCK + 1)));
    assertThrows(IllegalArgumentException.class, () -> drive.write(ByteBuffer.allocate(0)));
  }

  @Test
  void positionAndLocate_countRecordsAndFilemarks() throws IOException {
    writeThreeFiles();
    assertEquals(9, drive.position(), "6 records and 3 filemarks");
    drive.locate(4); // file 1, record 0
    assertArrayEquals(record(3, 104).array(), readRecord());
    assertEquals(5, drive.position());
    drive.locate(0);
    assertTrue(drive.status().beginningOfTape());
  }

  @Test
  void earlyWarning_followsStRules() throws IOException {
    List<byte[]> written = new ArrayList<>();
    int i = 0;
    EarlyWarningException warning = null;
    while (warning == null) {
      ByteBuffer r = record(i, BLOCK);
      try {
        drive.write(r);
        written.add(r.array());
        assertFalse(r.hasRemaining(), "a written record is consumed");
        i++;
      } catch (EarlyWarningException e) {
        warning = e;
        assertEquals(BLOCK, r.remaining(), "the refused record is left as it was");
      }
      assertTrue(i < 100, "no early warning");
    }
    // the write that met the early-warning zone completed; the warning came with the next one
    long before = (long) written.size() * BLOCK;
    assertTrue(before > CAPACITY - ZONE, "warned after " + before + " bytes");
    assertTrue(before - BLOCK <= CAPACITY - ZONE, "not warned late: " + before);
    assertTrue(drive.status().earlyWarning());
    assertEquals(TRAILER, drive.trailerBytes());
    // the trailer: the refused record and more, up to the allowance
    long trailer = 0;
    while (trailer + BLOCK <= TRAILER) {
      ByteBuffer r = record(1000 + (int) trailer, BLOCK);
      drive.write(r);
      written.add(r.array());
      trailer += BLOCK;
    }
    assertThrows(EndOfMediumException.class, () -> drive.write(record(5, BLOCK)));
    assertThrows(EndOfMediumException.class, () -> drive.write(record(6, 1)), "and stays at the end");
    assertTrue(drive.status().endOfMedium());
    drive.writeFilemarks(1); // filemarks are still accepted
    drive.rewind();
    for (byte[] w : written) {
      assertArrayEquals(w, readRecord());
    }
    assertEquals(0, readResult());
    assertEquals(-1, readResult());
  }

  @Test
  void earlyWarning_smallTrailerRecordsUseTheAllowanceExactly() throws IOException {
    int i = 0;
    while (true) {
      try {
        drive.write(record(i++, BLOCK));
      } catch (EarlyWarningException e) {
        break;
      }
    }
    for (long used = 0; used < TRAILER; used += 512) {
      drive.write(record(i++, 512));
    }
    EndOfMediumException e = assertThrows(EndOfMediumException.class, () -> drive.write(record(0, 1)));
    assertTrue(e.getMessage().contains("end of medium"), e.getMessage());
  }

  @Test
  void closedDrive_refusesEverything() throws IOException {
    drive.close();
    assertThrows(TapeException.class, () -> drive.write(record(1, 10)));
    assertThrows(TapeException.class, () -> drive.rewind());
    assertThrows(TapeException.class, () -> drive.status());
  }
}
