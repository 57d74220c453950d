package dev.shade.requestor.export;

import static dev.shade.requestor.export.Served.read;
import static dev.shade.requestor.export.Served.readAll;
import static dev.shade.requestor.export.Served.write;
import static dev.shade.testing.Bytes.filled;
import static dev.shade.testing.Bytes.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.provider.BlockSource;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.testing.nbd.Exec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** nbdcopy, qemu-img and qemu-io against the server: whole-export copies and pattern writes. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class CopyInteropTest {
  private static final Duration TOOL_TIMEOUT = Duration.ofSeconds(30);
  private static final long MIB = 1 << 20;
  private static final int BLOCK = 64 * 1024;
  private static final long SIZE = 64 * MIB;
  /** Where the volume holds data before s1 (offset, then length), some unaligned. */
  private static final long[][] BEFORE = {{0, 3 * BLOCK}, {7 * MIB + 123, 200_000}, {SIZE - 5000, 5000}};
  /** Where the volume is overwritten after s1. */
  private static final long[][] AFTER = {{BLOCK, 4096}, {7 * MIB, BLOCK}, {40 * MIB + 1, 77}, {SIZE - 1, 1}};

  @TempDir Path dir;
  private Served served;
  private Volume volume;

  /** A volume with data, a snapshot s1, then overwrites of some of that data and of holes. */
  @BeforeEach
  void serve() throws Exception {
    volume = Volume.create(dir.resolve("vol"), VolumeConfig.of(SIZE).withDiffMax(SIZE));
    for (int i = 0; i < BEFORE.length; i++) {
      write(volume, BEFORE[i][0], random(i, (int) BEFORE[i][1]));
    }
    volume.createSnapshot("s1");
    for (int i = 0; i < AFTER.length; i++) {
      write(volume, AFTER[i][0], random(100 + i, (int) AFTER[i][1]));
    }
    served = Served.start(volume);
  }

  @AfterEach
  void close() throws Exception {
    if (served != null) {
      served.close();
    }
  }

  @Test
  void nbdcopy_snapshotExport_equalsSnapshotReadThroughApi() throws Exception {
    Exec.assumeTools("nbdcopy");
    Path copy = dir.resolve("s1.img");
    Exec.run(TOOL_TIMEOUT, "nbdcopy", served.uri("vol@s1"), copy.toString()).assertSuccess();

    byte[] fromTool = Files.readAllBytes(copy);
    byte[] fromApi;
    try (BlockSource s1 = volume.openSnapshot("s1")) {
      fromApi = readAll(s1);
    }
    assertEquals(SIZE, fromTool.length, "size of the copy");
    assertEquals(-1, Served.firstDifference(fromApi, fromTool), "first offset where the copy differs from the snapshot");
    // and the snapshot is what was written before it, not the origin
    byte[] expected = new byte[(int) SIZE];
    for (int i = 0; i < BEFORE.length; i++) {
      System.arraycopy(random(i, (int) BEFORE[i][1]), 0, expected, (int) BEFORE[i][0], (int) BEFORE[i][1]);
    }
    assertEquals(-1, Served.firstDifference(expected, fromTool), "first offset where the copy differs from the data written before s1");
    assertNotEquals(-1, Served.firstDifference(readAll(volume), fromTool), "the origin differs from s1");
  }

  @Test
  void nbdcopy_fileToOrigin_volumeEqualsFileAndSnapshotKept() throws Exception {
    Exec.assumeTools("nbdcopy");
    byte[] image = new byte[(int) SIZE]; // data with long zero runs: nbdcopy sends those as WRITE_ZEROES
    System.arraycopy(random(200, (int) (2 * MIB)), 0, image, 0, (int) (2 * MIB));
    System.arraycopy(random(201, 3 * BLOCK + 5), 0, image, (int) (20 * MIB - 7), 3 * BLOCK + 5);
    System.arraycopy(random(202, 4096), 0, image, (int) (SIZE - 4096), 4096);
    Path file = dir.resolve("image.raw");
    Files.write(file, image);
    byte[] s1Before;
    try (BlockSource s1 = volume.openSnapshot("s1")) {
      s1Before = readAll(s1);
    }

    Exec.run(TOOL_TIMEOUT, "nbdcopy", "--flush", file.toString(), served.uri("vol")).assertSuccess();

    assertEquals(-1, Served.firstDifference(image, readAll(volume)), "first offset where the volume differs from the copied file");
    try (BlockSource s1 = volume.openSnapshot("s1")) {
      assertEquals(-1, Served.firstDifference(s1Before, readAll(s1)), "first offset where s1 changed under nbdcopy");
    }
  }

  @Test
  void qemuImgCompare_copyOfSnapshot_identicalToSnapshotExportOnly() throws Exception {
    Exec.assumeTools("qemu-img");
    Path copy = dir.resolve("s1.img");
    try (BlockSource s1 = volume.openSnapshot("s1")) {
      Files.write(copy, readAll(s1));
    }
    Exec.Result same = Exec.run(TOOL_TIMEOUT, "qemu-img", "compare", "-f", "raw", "-F", "raw", copy.toString(), served.uri("vol@s1"));
    assertEquals(0, same.exitCode(), "qemu-img compare with vol@s1: " + same);
    assertTrue(same.stdout().contains("Images are identical"), same.toString());

    Exec.Result differ = Exec.run(TOOL_TIMEOUT, "qemu-img", "compare", "-f", "raw", "-F", "raw", copy.toString(), served.uri("vol"));
    assertEquals(1, differ.exitCode(), "qemu-img compare with the origin, which changed since s1: " + differ);
    assertTrue(differ.stdout().contains("Content mismatch at offset " + BLOCK + "!"),
        "first mismatch at the first write after s1: " + differ);
  }

  @Test
  void qemuIo_writePatternToOrigin_readBackThroughApi() throws Exception {
    Exec.assumeTools("qemu-io");
    long off = 3 * BLOCK - 4096; // crosses a block boundary, over data written before s1
    int len = 3 * 4096;
    byte[] before = read(volume, off - 4096, len + 8192);
    byte[] snapshotBefore;
    try (BlockSource s1 = volume.openSnapshot("s1")) {
      snapshotBefore = readAll(s1);
    }

    Exec.run(TOOL_TIMEOUT, "qemu-io", "-f", "raw", "-c", "write -P 0xab " + off + " " + len, served.uri("vol")).assertSuccess();
    assertArrayEquals(filled(0xab, len), read(volume, off, len), "the pattern qemu-io wrote");
    assertArrayEquals(Arrays.copyOfRange(before, 0, 4096), read(volume, off - 4096, 4096), "the bytes before the pattern");
    assertArrayEquals(Arrays.copyOfRange(before, 4096 + len, before.length), read(volume, off + len, 4096), "the bytes after the pattern");
    Exec.run(TOOL_TIMEOUT, "qemu-io", "-r", "-f", "raw", "-c", "read -P 0xab " + off + " " + len, served.uri("vol"))
        .assertSuccess();

    // write zeroes and discard (NBD WRITE_ZEROES and TRIM) over parts of the pattern
    Exec.run(TOOL_TIMEOUT, "qemu-io", "-f", "raw", "-c", "write -z " + off + " 4096", "-c", "discard " + (off + 8192) + " 4096",
        served.uri("vol")).assertSuccess();
    byte[] expected = filled(0xab, len);
    Arrays.fill(expected, 0, 4096, (byte) 0);
    Arrays.fill(expected, 8192, len, (byte) 0);
    assertArrayEquals(expected, read(volume, off, len), "the pattern after write -z and discard");

    try (BlockSource s1 = volume.openSnapshot("s1")) {
      assertEquals(-1, Served.firstDifference(snapshotBefore, readAll(s1)), "first offset where s1 changed");
    }
    // a read-only export: qemu-io refuses to open it for writing, and nothing changes
    Exec.Result refused = Exec.run(TOOL_TIMEOUT, "qemu-io", "-f", "raw", "-c", "write -P 0xcd 0 4096", served.uri("vol@s1"));
    assertNotEquals(0, refused.exitCode(), "qemu-io writing to the snapshot export: " + refused);
    try (BlockSource s1 = volume.openSnapshot("s1")) {
      assertArrayEquals(Arrays.copyOf(snapshotBefore, 4096), read(s1, 0, 4096), "s1 after the refused write");
    }
  }
}
