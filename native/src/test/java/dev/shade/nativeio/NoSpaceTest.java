package dev.shade.nativeio;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.jna.Native;
import dev.shade.testing.ChildJvm;
import dev.shade.testing.Command;
import dev.shade.testing.Host;
import dev.shade.testing.Tmpfs;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ENOSPC on a real, tiny filesystem: a 1 MiB tmpfs this test mounts (needs root) and unmounts.
 * tmpfs supports fallocate and hole punching, so reservation and its failure are real.
 */
class NoSpaceTest {
  private static final int MIB = 1 << 20;
  private static final int KIB = 1 << 10;

  /** Where the tmpfs is mounted; null until made. */
  private static Path mountPoint;
  /** Our tmpfs on {@link #mountPoint}; null until mounted. */
  private static Tmpfs tmpfs;

  @TempDir
  Path scratch;

  @BeforeAll
  static void mountTinyTmpfs() throws Exception {
    mountPoint = Files.createTempDirectory("shade-enospc-");
    tmpfs = Tmpfs.mount(mountPoint, "shade-enospc", "1m", "mode=0700");
  }

  @AfterAll
  static void unmount() throws Exception {
    if (tmpfs != null) {
      tmpfs.close(); // lazily when something still holds it open: no mount outlives the test run
      tmpfs = null;
    }
    if (mountPoint != null) {
      Files.deleteIfExists(mountPoint);
    }
  }

  @BeforeEach
  void emptyFilesystem() throws Exception {
    try (var children = Files.list(mountPoint)) {
      for (Path p : children.toList()) {
        Host.deleteTree(p);
      }
    }
    assertEquals(MIB, StatVfs.of(mountPoint).freeBytes(), "the tmpfs starts empty");
  }

  @Test
  void statVfs_tinyTmpfs_reportsItsExactCapacity() throws Exception {
    StatVfs s = StatVfs.of(mountPoint);

    assertEquals(MappedFile.PAGE, s.blockSize());
    assertEquals(MIB, s.totalBytes());
    assertEquals(MIB, s.freeBytes());
    assertEquals(MIB, s.availableBytes());

    try (FileHandle f = FileHandle.create(mountPoint.resolve("quarter"))) {
      f.allocate(0, MIB / 4);
    }
    StatVfs after = StatVfs.of(mountPoint);
    assertEquals(3 * MIB / 4, after.freeBytes(), after::toString);
    assertEquals(3 * MIB / 4, after.availableBytes(), after::toString);
  }

  @Test
  void allocate_moreThanFree_throwsNoSpaceNamingPathAndEnospc() throws Exception {
    Path file = mountPoint.resolve("big.img");
    try (FileHandle f = FileHandle.create(file)) {
      NoSpaceException e = assertThrows(NoSpaceException.class, () -> f.allocate(0, 2 * MIB));

      assertEquals(Errno.ENOSPC, e.errno());
      assertEquals("fallocate", e.call());
      assertEquals(file.toString(), e.resource());
      assertEquals("fallocate(" + file + ") [offset=0 length=" + 2 * MIB + "] failed: "
          + "No space left on device (ENOSPC); check free space with df on that filesystem "
          + "(or lower the diff area limit)", e.getMessage());
      assertEquals(0, f.size(), "a reservation keeps the size");
    }
  }

  @Test
  void writeFully_pastFreeSpace_throwsNoSpaceAtTheFirstPositionThatDidNotFit() throws Exception {
    Path file = mountPoint.resolve("fill.img");
    byte[] data = Patterns.nonZero(7, 2 * MIB);
    long free = StatVfs.of(mountPoint).availableBytes();
    try (FileHandle f = FileHandle.create(file)) {
      NoSpaceException e = assertThrows(NoSpaceException.class,
          () -> f.writeFully(0, ByteBuffer.wrap(data)));

      // The first pwrite is short and fills the filesystem; the next one gets ENOSPC.
      assertEquals(Errno.ENOSPC, e.errno());
      assertEquals("pwrite(" + file + ") [pos=" + free + " len=" + (2 * MIB - free) + "] failed: "
          + "No space left on device (ENOSPC); check free space with df on that filesystem "
          + "(or lower the diff area limit)", e.getMessage());
      assertEquals(free, f.size());
      assertArrayEquals(java.util.Arrays.copyOf(data, (int) free),
          Patterns.readFile(f, 0, (int) free, true), "what fitted was written");
      assertEquals(0, StatVfs.of(mountPoint).availableBytes());
    }
  }

  @Test
  void allocate_beforeDiskFills_keepsWritesThroughMappingSafe() throws Exception {
    Path reservedFile = mountPoint.resolve("reserved.img");
    byte[] data = Patterns.nonZero(8, 256 * KIB);
    try (FileHandle f = FileHandle.create(reservedFile)) {
      f.truncate(256 * KIB);
      f.allocate(0, 256 * KIB);
      fill(mountPoint.resolve("filler.img")).close();
      assertEquals(0, StatVfs.of(mountPoint).availableBytes(), "the filesystem is full");

      // Reserved blocks need no allocation in the page fault, so no SIGBUS.
      try (MappedFile m = MappedFile.map(f, true)) {
        m.write(0, ByteBuffer.wrap(data));
        m.force(0, data.length);
      }
      f.writeFully(0, ByteBuffer.wrap(data, 0, 4096));
      assertArrayEquals(data, Patterns.readFile(f, 0, data.length, false));
      NoSpaceException e = assertThrows(NoSpaceException.class,
          () -> f.allocate(256 * KIB, 4096), "a reservation beyond the full disk fails");
      assertTrue(e.getMessage().contains(reservedFile.toString()), e.getMessage());
    }
  }

  @Test
  void punchHole_onFullFilesystem_givesSpaceBack() throws Exception {
    Path filler = mountPoint.resolve("filler.img");
    try (FileHandle f = fill(filler); FileHandle other = FileHandle.create(
        mountPoint.resolve("other.img"))) {
      assertThrows(NoSpaceException.class, () -> other.allocate(0, 256 * KIB));

      f.punchHole(0, 256 * KIB);

      assertEquals(256 * KIB, StatVfs.of(mountPoint).availableBytes());
      other.allocate(0, 256 * KIB);
      assertEquals(0, StatVfs.of(mountPoint).availableBytes());
    }
  }

  @Test
  void mappedWrite_intoHoleOnFullFilesystem_throwsIOExceptionNotCrash() throws Exception {
    Path hole = mountPoint.resolve("hole.img");
    try (FileHandle f = FileHandle.create(hole)) {
      f.truncate(64 * KIB); // a hole: extending the size needs no blocks
    }
    fill(mountPoint.resolve("filler.img")).close();
    assertEquals(0, StatVfs.of(mountPoint).availableBytes(), "the filesystem is full");

    // The page fault finds no block to allocate: SIGBUS, in a child JVM to be safe.
    Path childScratch = Files.createDirectory(scratch.resolve("child"));
    Command c = ChildJvm.run(List.of(), ChildJvm.classpath(FileHandle.class, MappingFaultProbe.class, Native.class), childScratch,
        MappingFaultProbe.class, "hole", hole.toString());

    assertEquals(List.of("IOException",
        "I/O error on write through the mapping (pos=0): MappedFile(" + hole + ", length="
            + 64 * KIB + ", chunk=2^30); the disk may be full or failing",
        "alive"), List.of(c.requireSuccess().strip().split("\n")), c::toString);
  }

  /** Writes a new file until the filesystem is full; returns it open. */
  private static FileHandle fill(Path file) throws Exception {
    FileHandle f = FileHandle.create(file);
    assertThrows(NoSpaceException.class,
        () -> f.writeFully(0, ByteBuffer.allocateDirect(2 * MIB)));
    return f;
  }
}
