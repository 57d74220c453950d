package dev.shade.nbd.server;

import static dev.shade.nbd.protocol.Nbd.CMD_READ;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.shade.nbd.client.NbdClient;
import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.nbd.client.NbdUri;
import dev.shade.nbd.testing.RawNbd;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link NbdExport#sendView}: the server sends the views an export gives (in pieces, as a
 * snapshot's blocks from several files) and releases each exactly once, after its reply went
 * out; and when the export wants a view back before that (a write to the volume waits for it),
 * the server copies what it has not sent and releases it while the client is not reading, or
 * disconnects a client that does not take the slice in flight. A real server, shade's client or
 * raw NBD frames.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SendViewReleaseTest {
  private static final int MIB = 1 << 20;

  @TempDir Path dir;

  @Test
  void reads_sendTheViewsPiecesAndReleaseEachOnce() throws Exception {
    ViewExport export = new ViewExport(8 * MIB, 5);
    Path socket = dir.resolve("nbd.sock");
    try (NbdServer server = NbdServer.start(export.catalog(), new NbdServer.Config().socket(socket))) {
      NbdClientConfig config = NbdClientConfig.builder(NbdUri.parse("nbd+unix:///d?socket=" + socket)).build();
      try (NbdClient c = NbdClient.connect(config)) {
        for (int len : new int[] {3, 4096, 65536 + 7, 1 << 20, 4 << 20}) {
          for (long off : new long[] {0, 1, export.disk.length - len}) {
            byte[] got = c.read(off, len);
            assertArrayEquals(Arrays.copyOfRange(export.disk, (int) off, (int) off + len), got, len + " bytes at " + off);
          }
        }
      }
    }
    assertTrue(export.given.size() >= 15, "views given: " + export.given.size());
    for (View v : export.given) {
      assertEquals(1, v.releases.get(), "each view released once");
    }
  }

  @Test
  void viewsWantedBack_whileTheClientDoesNotRead_areCopiedAndReleased_andTheClientGetsTheirOldBytes() throws Exception {
    int requests = 8;
    ViewExport export = new ViewExport(requests * 4 * MIB, 6);
    byte[] original = export.disk.clone();
    NbdServer.Config config = new NbdServer.Config().pinnedSendPatience(Duration.ofSeconds(20));
    ExecutorService pool = Executors.newSingleThreadExecutor();
    try (NbdServer server = start(export, config);
        RawNbd c = RawNbd.attach(server.tcpAddress(), "d", false)) {
      for (int i = 0; i < requests; i++) { // 32 MiB: far more than the socket buffers hold
        c.request(0, CMD_READ, i, (long) i * 4 * MIB, 4 * MIB, null);
      }
      await(() -> export.given.size() == requests, "a view for every request");
      Thread.sleep(200); // the reply thread is in its socket write now, the client reads nothing
      List<View> views = new ArrayList<>(export.given);
      views.forEach(View::want); // as a write to the volume does
      // the replies still queued are copied at once, on the wanting thread; the one the reply
      // thread is writing is copied before its next slice, once the client takes this one
      await(() -> views.stream().filter(View::released).count() >= requests - 2,
          "views released while the client reads nothing (released: " + views.stream().filter(View::released).count() + ")");
      List<View> overwritten = new ArrayList<>();
      overwrite(export, views, overwritten);
      Future<List<RawNbd.Reply>> reading = pool.submit(() -> {
        List<RawNbd.Reply> got = new ArrayList<>();
        for (int i = 0; i < requests; i++) {
          got.add(c.await(i));
        }
        return got;
      });
      await(() -> views.stream().allMatch(View::released), "every view released once the client reads");
      overwrite(export, views, overwritten);
      List<RawNbd.Reply> got = reading.get(30, TimeUnit.SECONDS);
      for (int i = 0; i < requests; i++) {
        assertEquals(0, got.get(i).error(), "read " + i);
        assertArrayEquals(Arrays.copyOfRange(original, i * 4 * MIB, (i + 1) * 4 * MIB), got.get(i).data(),
            "read " + i + " has the bytes its view held when it was wanted");
      }
      byte[] now = c.read(0, 4096); // the connection goes on, reading the export as it is now
      assertArrayEquals(Arrays.copyOfRange(export.disk, 0, 4096), now);
      assertTrue(export.disk[0] != original[0] || export.disk[1] != original[1], "the export changed meanwhile");
    } finally {
      pool.shutdownNow();
    }
    for (View v : export.given) {
      assertEquals(1, v.releases.get(), "each view released once");
    }
  }

  @Test
  void aViewWantedBack_fromAClientThatNeverReads_releasesAfterThePatienceByDisconnectingIt() throws Exception {
    ViewExport export = new ViewExport(64 * MIB, 7);
    // the reply timeout would cut this client only after 10 minutes: the want is what ends it
    NbdServer.Config config = new NbdServer.Config().replyTimeout(Duration.ofMinutes(10)).pinnedSendPatience(Duration.ofMillis(500));
    try (NbdServer server = start(export, config);
        RawNbd c = RawNbd.attach(server.tcpAddress(), "d", false)) {
      for (int i = 0; i < 16; i++) {
        c.request(0, CMD_READ, i, (long) i * 4 * MIB, 4 * MIB, null);
      }
      await(() -> export.given.size() == 16, "a view for every request");
      Thread.sleep(200);
      long wanted = System.nanoTime();
      export.given.forEach(View::want);
      await(() -> export.given.stream().allMatch(View::released), "every view released");
      long ms = (System.nanoTime() - wanted) / 1_000_000;
      assertTrue(ms >= 400, "the view in flight was kept for the patience, not taken away at once (" + ms + " ms)");
      await(() -> server.connectionCount() == 0, "the server closed the client that does not read");
    }
    for (View v : export.given) {
      assertEquals(1, v.releases.get(), "each view released once");
    }
  }

  private static NbdServer start(ViewExport export, NbdServer.Config config) throws java.io.IOException {
    return NbdServer.start(export.catalog(), config.listen(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)));
  }

  /** Changes the export's bytes under each released view not changed yet, as a write waiting for it would. */
  private static void overwrite(ViewExport export, List<View> views, List<View> done) {
    for (View v : views) {
      if (v.released() && !done.contains(v)) {
        for (int i = 0; i < v.length; i++) {
          export.disk[(int) v.offset + i] ^= (byte) 0x5a;
        }
        done.add(v);
      }
    }
  }

  private static void await(BooleanSupplier condition, String what) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("within 20 s: " + what);
      }
      Thread.sleep(5);
    }
  }

  /** An export of random bytes whose reads are views in three pieces; records each view given. */
  private static final class ViewExport implements NbdExport {
    final byte[] disk;
    final List<View> given = new CopyOnWriteArrayList<>();

    ViewExport(int size, long seed) {
      disk = new byte[size];
      new Random(seed).nextBytes(disk);
    }

    ExportCatalog catalog() {
      NbdExport export = this;
      return new ExportCatalog() {
        @Override
        public NbdExport find(String name, boolean writable) {
          return "d".equals(name) ? export : null;
        }

        @Override
        public List<Entry> list(boolean writable) {
          return List.of(new Entry("d", ""));
        }
      };
    }

    @Override
    public String name() {
      return "d";
    }

    @Override
    public long size() {
      return disk.length;
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
      View v = new View(offset, length, pieces);
      given.add(v);
      return v;
    }
  }

  /** One view given: counts its releases and keeps the server's callback for {@link #want}. */
  private static final class View implements NbdExport.SendView {
    final long offset;
    final int length;
    private final ByteBuffer[] pieces;
    final AtomicInteger releases = new AtomicInteger();
    private volatile Runnable callback;

    View(long offset, int length, ByteBuffer[] pieces) {
      this.offset = offset;
      this.length = length;
      this.pieces = pieces;
    }

    @Override
    public ByteBuffer[] buffers() {
      return pieces;
    }

    @Override
    public void release() {
      releases.incrementAndGet();
    }

    @Override
    public void whenWanted(Runnable callback) {
      this.callback = callback;
    }

    boolean released() {
      return releases.get() > 0;
    }

    /** What the export does when a write waits for these bytes: tells the server, once. */
    void want() {
      Runnable r = callback;
      if (r == null) {
        fail("the server registered no callback for the view at " + offset);
      }
      r.run();
    }
  }
}
