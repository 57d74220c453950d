package dev.shade.nbd.interop;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.shade.nbd.testing.TestCatalog;
import dev.shade.testing.nbd.Exec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * nbdcopy and qemu-io against a {@link TestCatalog} export: whole-export copies both ways and
 * requests over 32 MiB, which these clients split at the maximum the server advertises.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class ToolsInteropTest {
  private static final Duration TOOL_TIMEOUT = Duration.ofSeconds(60);
  private static final long MIB = 1 << 20;
  private static final long SIZE = 80 * MIB;

  @TempDir Path dir;
  private TestCatalog catalog;
  private Served served;

  @BeforeEach
  void serve() throws Exception {
    catalog = new TestCatalog("vol", SIZE);
    new Random(7).nextBytes(catalog.disk());
    Arrays.fill(catalog.disk(), (int) (10 * MIB), (int) (30 * MIB), (byte) 0); // zeros: sent as WRITE_ZEROES by nbdcopy
    served = Served.start(catalog);
  }

  @AfterEach
  void close() throws Exception {
    if (served != null) {
      served.close();
    }
  }

  @Test
  void nbdcopy_exportToFileAndBack_byteForByte() throws Exception {
    Exec.assumeTools("nbdcopy");
    Path copy = dir.resolve("vol.img");
    Exec.run(TOOL_TIMEOUT, "nbdcopy", served.uri("vol"), copy.toString()).assertSuccess();
    assertEquals(-1, Served.firstDifference(catalog.disk(), Files.readAllBytes(copy)), "first offset where the copy differs");

    byte[] image = new byte[(int) SIZE];
    new Random(8).nextBytes(image);
    Arrays.fill(image, (int) MIB, (int) (50 * MIB), (byte) 0);
    Path file = dir.resolve("image.raw");
    Files.write(file, image);
    Exec.run(TOOL_TIMEOUT, "nbdcopy", "--flush", file.toString(), served.uri("vol")).assertSuccess();
    assertEquals(-1, Served.firstDifference(image, catalog.disk()), "first offset where the export differs from the copied file");
  }

  @Test
  void qemuIo_42MiBPatternWriteAndRead_readsBack() throws Exception {
    Exec.assumeTools("qemu-io");
    long off = 5 * MIB + 4096;
    int len = (int) (42 * MIB);
    byte[] before = catalog.disk().clone();
    Exec.run(TOOL_TIMEOUT, "qemu-io", "-f", "raw", "-c", "write -P 0xab " + off + " " + len, served.uri("vol")).assertSuccess();
    byte[] expected = before.clone();
    Arrays.fill(expected, (int) off, (int) off + len, (byte) 0xab);
    assertEquals(-1, Served.firstDifference(expected, catalog.disk()), "first offset where the export differs after qemu-io write");
    Exec.run(TOOL_TIMEOUT, "qemu-io", "-r", "-f", "raw", "-c", "read -P 0xab " + off + " " + len, served.uri("vol")).assertSuccess();
    assertArrayEquals(Arrays.copyOfRange(before, 0, 4096), Arrays.copyOf(catalog.disk(), 4096), "the first 4 KiB, untouched");
  }
}
