package dev.shade.offhost.tape;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.shade.testing.Tools;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The st back-end on a real drive: runs only with {@code SHADE_TAPE_DEVICE=/dev/nst0} (a
 * no-rewind device with a scratch cartridge, which it overwrites from the beginning). The build
 * leaves it out unless that variable is set (offhost-backup's pom, profile real-tape-drive), so
 * builds without a drive, CI included, neither run nor skip it. docs/tapes.md says how to run it.
 */
class RealTapeDriveTest {
  static final String ENV = "SHADE_TAPE_DEVICE";
  static final int BLOCK = TapeDrive.DEFAULT_BLOCK_SIZE;

  private Path device;

  @BeforeEach
  void device() {
    String dev = System.getenv(ENV);
    assumeTrue(dev != null && !dev.isBlank(), "no tape drive: set " + ENV + "=/dev/nst0 with a scratch cartridge "
        + "loaded to run the real-drive check (it overwrites the tape); skipped here and in CI, which have no drive");
    device = Path.of(dev);
  }

  @Test
  void labelAndTwoFiles_readBackThroughTheDriverAndGnuTar() throws Exception {
    byte[] small = "hello from shade".getBytes(StandardCharsets.US_ASCII);
    try (TapeDrive d = TapeDrive.openDevice(device)) {
      assertTrue(d.status().beginningOfTape() || d.status().fileNumber() >= 0, "drive answers MTIOCGET");
      TapeLabel label = TapeLabel.of("SHDTEST", "test", 1);
      label.write(d); // file 0
      try (TapeOutputStream out = new TapeOutputStream(d);
          TarArchiveOutputStream tar = new TarArchiveOutputStream(out, BLOCK, "UTF-8")) { // file 1
        TarArchiveEntry e = new TarArchiveEntry("greeting.txt");
        e.setSize(small.length);
        tar.putArchiveEntry(e);
        tar.write(small);
        tar.closeArchiveEntry();
      }
      for (int r = 0; r < 3; r++) { // file 2: three records of different sizes
        d.write(TapeDriveContractTest.record(r, 1000 * (r + 1)));
      }
      d.writeFilemarks(1);
      assertEquals(3, d.status().fileNumber());

      Optional<TapeLabel> read = TapeLabel.read(d);
      assertEquals("SHDTEST", read.orElseThrow().label());
      assertEquals(1, d.status().fileNumber(), "after the label: file 1");
      d.seekFile(2);
      ByteBuffer b = ByteBuffer.allocate(BLOCK);
      for (int r = 0; r < 3; r++) {
        b.clear();
        assertEquals(1000 * (r + 1), d.read(b));
        assertArrayEquals(TapeDriveContractTest.record(r, 1000 * (r + 1)).array(), java.util.Arrays.copyOf(b.array(), b.position()));
      }
      assertEquals(0, d.read(b.clear()), "filemark");
      assertEquals(-1, d.read(b.clear()), "end of data");
      d.spaceFiles(-2);
      assertEquals(0, d.read(b.clear()), "the filemark after file 1");
      d.seekEndOfData();
      assertEquals(3, d.status().fileNumber());
      d.seekFile(1);
    }
    // GNU tar on the device itself, positioned at file 1 by the drive above
    Optional<Path> mt = Tools.find("mt");
    if (mt.isPresent()) {
      run(List.of(mt.get().toString(), "-f", device.toString(), "status"));
      run(List.of(mt.get().toString(), "-f", device.toString(), "rewind"));
      run(List.of(mt.get().toString(), "-f", device.toString(), "fsf", "1"));
    }
    assertEquals("greeting.txt\n", run(List.of("tar", "-t", "-f", device.toString())));
  }

  private static String run(List<String> cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(new ArrayList<>(cmd)).redirectErrorStream(true).start();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (InputStream s = p.getInputStream()) {
      s.transferTo(out);
    }
    assertTrue(p.waitFor(600, TimeUnit.SECONDS), cmd + " timed out");
    String text = out.toString(StandardCharsets.UTF_8);
    assertEquals(0, p.exitValue(), cmd + ": " + text);
    return text;
  }
}
