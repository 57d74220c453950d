package dev.shade.nbd.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.nbd.client.NbdClient;
import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.nbd.client.NbdUri;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link NbdExport#sendView}: the server sends the views an export gives (in pieces, as a
 * snapshot's blocks from several files) and releases each exactly once, after its reply went
 * out. A real server on a Unix socket, shade's client.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SendViewReleaseTest {
  private static final int SIZE = 8 << 20;

  @TempDir Path dir;

  @Test
  void reads_sendTheViewsPiecesAndReleaseEachOnce() throws Exception {
    byte[] disk = new byte[SIZE];
    new Random(5).nextBytes(disk);
    AtomicInteger given = new AtomicInteger();
    AtomicInteger released = new AtomicInteger();
    AtomicInteger twice = new AtomicInteger();
    NbdExport export = new NbdExport() {
      @Override
      public String name() {
        return "d";
      }

      @Override
      public long size() {
        return SIZE;
      }

      @Override
      public boolean readOnly() {
        return true;
      }

      @Override
      public void read(long offset, ByteBuffer dst) {
        dst.put(disk, (int) offset, dst.remaining());
      }

      @Override
      public SendView sendView(long offset, int length) {
        // three pieces, as a snapshot's blocks from the origin, the diff area, the origin
        int a = length / 3;
        int b = length / 3;
        ByteBuffer[] pieces = {
          ByteBuffer.wrap(disk, (int) offset, a).slice().asReadOnlyBuffer(),
          ByteBuffer.wrap(disk, (int) offset + a, b).slice().asReadOnlyBuffer(),
          ByteBuffer.wrap(disk, (int) offset + a + b, length - a - b).slice().asReadOnlyBuffer()};
        given.incrementAndGet();
        boolean[] done = {false};
        return new SendView() {
          @Override
          public ByteBuffer[] buffers() {
            return pieces;
          }

          @Override
          public void release() {
            synchronized (done) {
              if (done[0]) {
                twice.incrementAndGet();
              }
              done[0] = true;
            }
            released.incrementAndGet();
          }
        };
      }
    };
    ExportCatalog catalog = new ExportCatalog() {
      @Override
      public NbdExport find(String name, boolean writable) {
        return "d".equals(name) ? export : null;
      }

      @Override
      public List<Entry> list(boolean writable) {
        return List.of(new Entry("d", ""));
      }
    };
    Path socket = dir.resolve("nbd.sock");
    try (NbdServer server = NbdServer.start(catalog, new NbdServer.Config().socket(socket))) {
      NbdClientConfig config = NbdClientConfig.builder(NbdUri.parse("nbd+unix:///d?socket=" + socket)).build();
      try (NbdClient c = NbdClient.connect(config)) {
        for (int len : new int[] {3, 4096, 65536 + 7, 1 << 20, 4 << 20}) {
          for (long off : new long[] {0, 1, SIZE - len}) {
            byte[] got = c.read(off, len);
            assertArrayEquals(Arrays.copyOfRange(disk, (int) off, (int) off + len), got, len + " bytes at " + off);
          }
        }
      }
    }
    assertTrue(given.get() >= 15, "views given: " + given.get());
    assertEquals(given.get(), released.get(), "every view released");
    assertEquals(0, twice.get(), "no view released twice");
  }
}
