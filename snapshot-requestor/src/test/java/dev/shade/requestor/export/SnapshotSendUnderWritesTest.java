package dev.shade.requestor.export;

import static dev.shade.requestor.export.Served.readAll;
import static dev.shade.requestor.export.Served.write;
import static dev.shade.testing.Bytes.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.nbd.client.NbdClient;
import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.nbd.client.NbdUri;
import dev.shade.nbd.server.NbdExport;
import dev.shade.nbd.server.NbdServer;
import dev.shade.provider.BlockSource;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.testing.nbd.Uris;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The point-in-time guarantee of snapshot exports with zero-copy sends: a client reading
 * {@code vol@s} over a Unix socket (where the server sends views of the page cache) while
 * writers change every part of the origin reads exactly what the volume held when {@code s} was
 * taken, and the writes all land.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SnapshotSendUnderWritesTest {
  private static final int MIB = 1 << 20;
  private static final int SIZE = 32 * MIB;

  @TempDir Path dir;

  @Test
  void snapshotExport_readWhileTheOriginIsWritten_readsTheSnapshot() throws Exception {
    byte[] before = random(1, SIZE);
    Volume volume = snapshotted(before);
    Path socket = dir.resolve("nbd.sock");
    ExecutorService pool = Executors.newCachedThreadPool();
    try (Served served = Served.start(List.of(volume), new NbdServer.Config().socket(socket))) {
      NbdClientConfig config = NbdClientConfig.builder(NbdUri.parse(Uris.unix(socket, "vol@s", null))).build();
      AtomicBoolean stop = new AtomicBoolean();
      AtomicLong written = new AtomicLong();
      // writers: large writes (copied at once) and small ones (held behind) all over the volume
      List<Future<?>> writers = List.of(pool.submit(() -> writeLoop(volume, stop, written, 11, MIB)),
          pool.submit(() -> writeLoop(volume, stop, written, 12, 4096)));
      List<NbdClient> clients = NbdClient.connectMultiConn(config, 4);
      try {
        for (int pass = 0; pass < 3; pass++) {
          List<Future<byte[]>> parts = new java.util.ArrayList<>();
          for (int k = 0; k < clients.size(); k++) {
            NbdClient c = clients.get(k);
            int first = k;
            parts.add(pool.submit(() -> {
              byte[] got = new byte[SIZE];
              for (int off = first * 4 * MIB; off < SIZE; off += clients.size() * 4 * MIB) {
                byte[] part = c.read(off, 4 * MIB);
                System.arraycopy(part, 0, got, off, part.length);
              }
              return got;
            }));
          }
          for (int k = 0; k < parts.size(); k++) {
            byte[] got = parts.get(k).get();
            for (int off = k * 4 * MIB; off < SIZE; off += clients.size() * 4 * MIB) {
              long at = java.util.Arrays.mismatch(got, off, off + 4 * MIB, before, off, off + 4 * MIB);
              assertEquals(-1, at, "pass " + pass + ": vol@s differs from the snapshot at " + (at < 0 ? at : off + at));
            }
          }
        }
      } finally {
        stop.set(true);
        clients.forEach(NbdClient::close);
      }
      for (Future<?> w : writers) {
        w.get(30, TimeUnit.SECONDS);
      }
      assertTrue(written.get() > 0, "the writers wrote while the snapshot was read");
      try (BlockSource s = volume.openSnapshot("s")) {
        assertEquals(-1, Served.firstDifference(before, readAll(s)), "the snapshot after the writes");
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void aClientThatStopsReadingTheSnapshot_holdsWritesToTheOriginBackForNoLongerThanThePatience() throws Exception {
    byte[] before = random(4, SIZE);
    Volume volume = snapshotted(before);
    Path socket = dir.resolve("nbd.sock");
    // the reply timeout would cut the client only after 10 minutes
    NbdServer.Config config = new NbdServer.Config().socket(socket).replyTimeout(java.time.Duration.ofMinutes(10))
        .pinnedSendPatience(java.time.Duration.ofMillis(500));
    ExecutorService pool = Executors.newCachedThreadPool();
    try (Served served = Served.start(List.of(volume), config);
        java.nio.channels.SocketChannel stalled = stalledReader(socket, "vol@s", SIZE / (4 * MIB), 4 * MIB)) {
      Thread.sleep(300); // the server's views of the snapshot are pinned, its socket full
      byte[] after = random(5, SIZE);
      long start = System.nanoTime();
      Future<?> writes = pool.submit(() -> {
        for (int off = 0; off < SIZE; off += MIB) { // every block the client asked for
          volume.write(off, ByteBuffer.wrap(after, off, MIB));
        }
        volume.flush();
        return null;
      });
      writes.get(30, TimeUnit.SECONDS); // without the server letting go: 10 minutes
      long ms = (System.nanoTime() - start) / 1_000_000;
      assertTrue(ms < 30_000, "the writes took " + ms + " ms");
      try (BlockSource s = volume.openSnapshot("s")) {
        assertEquals(-1, Served.firstDifference(before, readAll(s)), "the snapshot after the writes");
      }
      assertEquals(-1, Served.firstDifference(after, readAll(volume)), "the origin after the writes");
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * A client on the Unix socket that attaches to {@code export} (NBD_OPT_EXPORT_NAME), sends
   * {@code count} READs of {@code length} bytes and then reads nothing.
   */
  private static java.nio.channels.SocketChannel stalledReader(Path socket, String export, int count, int length)
      throws java.io.IOException {
    java.nio.channels.SocketChannel ch = java.nio.channels.SocketChannel.open(java.net.UnixDomainSocketAddress.of(socket));
    ByteBuffer greeting = ByteBuffer.allocate(18);
    while (greeting.hasRemaining() && ch.read(greeting) >= 0) {
      // the server's magic, IHAVEOPT and handshake flags
    }
    assertEquals(0, greeting.remaining(), "the server's greeting");
    byte[] name = export.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    ByteBuffer hello = ByteBuffer.allocate(4 + 16 + name.length);
    hello.putInt(3); // fixed newstyle, no zeroes
    hello.putLong(0x49484156454F5054L).putInt(1).putInt(name.length).put(name).flip(); // NBD_OPT_EXPORT_NAME
    while (hello.hasRemaining()) {
      ch.write(hello);
    }
    ByteBuffer attached = ByteBuffer.allocate(10); // size, transmission flags
    while (attached.hasRemaining() && ch.read(attached) >= 0) {
      // the export's size and flags
    }
    assertEquals(0, attached.remaining(), "the server attached the export");
    ByteBuffer requests = ByteBuffer.allocate(28 * count);
    for (int i = 0; i < count; i++) {
      requests.putInt(0x25609513).putShort((short) 0).putShort((short) 0).putLong(i).putLong((long) i * length).putInt(length);
    }
    requests.flip();
    while (requests.hasRemaining()) {
      ch.write(requests);
    }
    return ch;
  }

  @Test
  void snapshotExport_sendView_coversCopiedAndUnchangedBlocks() throws Exception {
    byte[] before = random(2, SIZE);
    Volume volume = snapshotted(before);
    try {
      write(volume, MIB, random(3, MIB)); // these blocks now live in the diff area
      volume.flush();
      VolumeExports exports = new VolumeExports(List.of(volume));
      try (NbdExport e = exports.find("vol@s", false)) {
        ByteBuffer copy = ByteBuffer.allocate(4 * MIB);
        e.read(0, copy); // through the mapping: the diff area's copies are in memory after it
        NbdExport.SendView v = e.sendView(0, 4 * MIB);
        assertNotNull(v, "resident snapshot bytes have a view");
        try {
          byte[] got = new byte[4 * MIB];
          int at = 0;
          for (ByteBuffer b : v.buffers()) {
            int n = b.remaining();
            b.duplicate().get(got, at, n);
            at += n;
          }
          assertEquals(4 * MIB, at);
          assertEquals(-1, java.util.Arrays.mismatch(got, 0, 4 * MIB, before, 0, 4 * MIB), "the view is the snapshot's");
          assertTrue(v.buffers().length >= 2, "origin and diff area: " + v.buffers().length + " buffers");
        } finally {
          v.release();
        }
      }
      try (NbdExport origin = exports.find("vol", false)) {
        assertNull(origin.residentView(0, 0), "nothing for an empty range");
      }
    } finally {
      volume.close();
    }
  }

  /** A new volume holding {@code before}, flushed, with snapshot "s" of it. */
  private Volume snapshotted(byte[] before) throws java.io.IOException {
    Volume volume = Volume.create(dir.resolve("vol"), VolumeConfig.of(SIZE).withDiffMax(2L * SIZE));
    write(volume, 0, before);
    volume.flush();
    volume.createSnapshot("s");
    return volume;
  }

  /** Writes {@code size}-byte pieces at random aligned offsets until {@code stop}. */
  private static Void writeLoop(Volume v, AtomicBoolean stop, AtomicLong written, long seed, int size) throws Exception {
    SplittableRandom rnd = new SplittableRandom(seed);
    byte[] data = new byte[size];
    while (!stop.get()) {
      rnd.nextBytes(data);
      long off = (long) rnd.nextInt(SIZE / size) * size;
      v.write(off, ByteBuffer.wrap(data));
      if (rnd.nextInt(8) == 0) {
        v.flush();
      }
      written.addAndGet(size);
    }
    return null;
  }
}
