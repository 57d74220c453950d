package dev.shade.nbd.client;

import static dev.shade.nbd.protocol.Nbd.*;
import static org.junit.jupiter.api.Assertions.*;

import dev.shade.testing.nbd.Exec;
import dev.shade.testing.nbd.NbdServerProcess;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The client against real nbdkit servers on Unix sockets: data, extents, errors, pipelining, copies. */
class NbdkitClientTest {
  @TempDir Path dir;

  private static byte[] random(long seed, int n) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  @Test
  void readWrite_memory_byteForByte() throws Exception {
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "memory", "64M"); NbdClient c = NbdClient.connect(s.uri(""))) {
      assertEquals(64 << 20, c.size());
      assertTrue(c.structuredReplies());
      assertTrue(c.info().canFlush() && c.info().canTrim() && c.info().canWriteZeroes() && c.info().canMultiConn(), c.info().toString());
      byte[] model = new byte[64 << 20];
      long[] offsets = {0, 4095, 4096, (1 << 20) - 1, 33 << 20};
      int[] lengths = {1, 4097, 65536, 3, 40 << 20}; // 40 MiB: more than the 32 MiB payload, so split
      for (int i = 0; i < offsets.length; i++) {
        int n = (int) Math.min(lengths[i], model.length - offsets[i]);
        byte[] d = random(i, n);
        c.write(offsets[i], d);
        System.arraycopy(d, 0, model, (int) offsets[i], n);
      }
      c.flush();
      ByteBuffer all = ByteBuffer.allocateDirect(model.length);
      c.read(0, all);
      assertEquals(0, all.position(), "position left as it was");
      byte[] got = new byte[model.length];
      all.get(got);
      assertArrayEquals(model, got);
      assertArrayEquals(java.util.Arrays.copyOfRange(model, 4095, 4095 + 10), c.read(4095, 10));
    }
  }

  @Test
  void pattern_readsMatchAtOddOffsets() throws Exception {
    // nbdkit pattern: each 8-byte word holds its own offset, big-endian
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "pattern", "8M"); NbdClient c = NbdClient.connect(s.uri(""))) {
      for (long off : new long[] {0, 1, 7, 4093, (8 << 20) - 17}) {
        byte[] b = c.read(off, 17);
        for (int i = 0; i < b.length; i++) {
          long p = off + i;
          long word = p & ~7L;
          int expect = (int) (word >>> (8 * (7 - (p & 7)))) & 0xff;
          assertEquals(expect, b[i] & 0xff, "byte at " + p);
        }
      }
    }
  }

  @Test
  void data_plugin_bytesAndExtents() throws Exception {
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "data", "1 2 3 @4093 4 5 6 @65536 ( 0x55 0xAA )*16", "size=131072");
        NbdClient c = NbdClient.connect(NbdClientConfig.builder(s.uri("")).metaContexts(CONTEXT_ALLOCATION).build())) {
      byte[] expect = new byte[131072];
      expect[0] = 1;
      expect[1] = 2;
      expect[2] = 3;
      expect[4093] = 4;
      expect[4094] = 5;
      expect[4095] = 6;
      for (int i = 0; i < 32; i += 2) {
        expect[65536 + i] = 0x55;
        expect[65537 + i] = (byte) 0xAA;
      }
      assertArrayEquals(expect, c.read(0, expect.length));
      List<Extent> e = c.extents(CONTEXT_ALLOCATION, 0, 131072);
      assertEquals(0, flagsAt(e, 0));
      assertEquals(0, flagsAt(e, 65536 + 31));
      assertEquals(STATE_HOLE | STATE_ZERO, flagsAt(e, 131071));
    }
  }

  @Test
  void pipelined_manyThreads_allCorrect() throws Exception {
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "memory", "32M");
        NbdClient c = NbdClient.connect(NbdClientConfig.builder(s.uri("")).maxInFlight(8).build())) {
      int block = 64 << 10;
      int blocks = (32 << 20) / block;
      List<CompletableFuture<Void>> writes = new ArrayList<>();
      for (int i = 0; i < blocks; i++) {
        writes.add(c.writeAsync((long) i * block, ByteBuffer.wrap(random(i, block)), false));
      }
      CompletableFuture.allOf(writes.toArray(new CompletableFuture<?>[0])).get();
      assertEquals(0, c.inFlight());
      ExecutorService pool = Executors.newFixedThreadPool(6);
      try {
        List<Future<?>> fs = new ArrayList<>();
        for (int t = 0; t < 6; t++) {
          int first = t;
          fs.add(pool.submit(() -> {
            for (int i = first; i < blocks; i += 6) {
              assertArrayEquals(random(i, block), c.read((long) i * block, block), "block " + i);
            }
            return null;
          }));
        }
        for (Future<?> f : fs) {
          f.get();
        }
      } finally {
        pool.shutdown();
      }
    }
  }

  @Test
  void pipelined_requestsOverlap_andInFlightIsBounded() throws Exception {
    // every read takes 400 ms in the server: 12 in flight at once take about 400 ms, not 4.8 s
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "--filter=delay", "memory", "1M", "rdelay=400ms")) {
      try (NbdClient c = NbdClient.connect(s.uri(""))) {
        long t0 = System.nanoTime();
        List<CompletableFuture<Void>> fs = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
          fs.add(c.readAsync(i * 4096L, ByteBuffer.allocate(4096)));
        }
        assertTrue(c.inFlight() > 1, "in flight: " + c.inFlight());
        CompletableFuture.allOf(fs.toArray(new CompletableFuture<?>[0])).get();
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms < 2400, "12 pipelined reads of 400 ms took " + ms + " ms");
      }
      // at most 2 in flight: 6 reads take at least 3 rounds
      try (NbdClient c = NbdClient.connect(NbdClientConfig.builder(s.uri("")).maxInFlight(2).build())) {
        long t0 = System.nanoTime();
        List<CompletableFuture<Void>> fs = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
          fs.add(c.readAsync(i * 4096L, ByteBuffer.allocate(4096)));
          assertTrue(c.inFlight() <= 2, "in flight: " + c.inFlight());
        }
        CompletableFuture.allOf(fs.toArray(new CompletableFuture<?>[0])).get();
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms >= 1100, "6 reads 2 at a time took only " + ms + " ms");
      }
    }
  }

  @Test
  void blockStatus_matchesWhatWasWritten() throws Exception {
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "memory", "16M");
        NbdClient c = NbdClient.connect(NbdClientConfig.builder(s.uri("")).metaContexts(CONTEXT_ALLOCATION).build())) {
      assertEquals(List.of(CONTEXT_ALLOCATION), c.metaContexts());
      int mib = 1 << 20;
      c.write(2L * mib, random(1, mib));
      c.write(5L * mib, random(2, 2 * mib));
      List<Extent> e = c.extents(CONTEXT_ALLOCATION, 0, 16L * mib);
      assertEquals(0, e.get(0).offset());
      assertEquals(16L * mib, e.get(e.size() - 1).end());
      for (long m = 0; m < 16; m++) {
        boolean written = m == 2 || m == 5 || m == 6;
        assertEquals(!written, flagsAt(e, m * mib) == (STATE_HOLE | STATE_ZERO), "MiB " + m + " in " + e);
        assertEquals(!written, flagsAt(e, m * mib + mib - 1) == (STATE_HOLE | STATE_ZERO), "end of MiB " + m + " in " + e);
      }
      // trim and zero turn data back into holes
      c.trim(5L * mib, mib, false);
      c.writeZeroes(6L * mib, mib, false, false);
      List<Extent> after = c.extents(CONTEXT_ALLOCATION, 5L * mib, 2L * mib);
      for (Extent x : after) {
        assertTrue(x.zero(), "zeroed range still data: " + after);
      }
      assertArrayEquals(new byte[mib], c.read(6L * mib, mib));
      // REQ_ONE: one extent per context
      Map<String, List<Extent>> one = c.blockStatus(0, 16L * mib, true);
      assertEquals(1, one.get(CONTEXT_ALLOCATION).size(), one.toString());
    }
  }

  static int flagsAt(List<Extent> extents, long offset) {
    for (Extent x : extents) {
      if (offset >= x.offset() && offset < x.end()) {
        return x.flags();
      }
    }
    throw new AssertionError("offset " + offset + " not covered by " + extents);
  }

  @Test
  void blockStatus_shortReplies_areFollowedUp() throws Exception {
    // the eval plugin answers every extents call with one 4 KiB extent: much less than asked
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "eval", "get_size=echo 1048576", "pread=dd if=/dev/zero count=$3 iflag=count_bytes",
        "can_extents=exit 0",
        "extents=if [ $(( $4 / 4096 % 2 )) = 0 ]; then echo $4 4096 hole,zero; else echo $4 4096 0; fi");
        NbdClient c = NbdClient.connect(NbdClientConfig.builder(s.uri("")).metaContexts(CONTEXT_ALLOCATION).build())) {
      Map<String, List<Extent>> one = c.blockStatus(0, 1 << 20, false);
      assertTrue(one.get(CONTEXT_ALLOCATION).stream().mapToLong(Extent::length).sum() < 1 << 20, "server answered short: " + one);
      List<Extent> e = c.extents(CONTEXT_ALLOCATION, 0, 1 << 20);
      assertEquals(256, e.size(), e.toString());
      for (int i = 0; i < 256; i++) {
        assertEquals(new Extent(i * 4096L, 4096, i % 2 == 0 ? STATE_HOLE | STATE_ZERO : 0), e.get(i));
      }
    }
  }

  @Test
  void errors_areTypedWithErrnoOffsetAndUri() throws Exception {
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "-r", "memory", "1M"); NbdClient c = NbdClient.connect(s.uri(""))) {
      assertTrue(c.info().readOnly());
      NbdErrorException e = assertThrows(NbdErrorException.class, () -> c.write(4096, new byte[512]));
      assertEquals("EPERM", e.errnoName());
      assertEquals(CMD_WRITE, e.command());
      assertEquals(4096, e.offset());
      assertEquals(512, e.length());
      assertTrue(e.getMessage().contains(s.uri("")), e.getMessage());
      NbdErrorException past = assertThrows(NbdErrorException.class, () -> c.read(1 << 20, 512));
      assertEquals("EINVAL", past.errnoName());
      assertEquals(1 << 20, past.offset());
      // the connection survives request errors
      assertEquals(16, c.read(0, 16).length);
    }
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "--filter=error", "memory", "1M", "error=EIO", "error-pread-rate=100%");
        NbdClient c = NbdClient.connect(s.uri(""))) {
      NbdErrorException e = assertThrows(NbdErrorException.class, () -> c.read(8192, 4096));
      assertEquals(EIO, e.errno());
      assertEquals(CMD_READ, e.command());
    }
  }

  @Test
  void list_namesAndDescriptions() throws Exception {
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "--filter=exportname", "memory", "1M", "exportname=snap-1", "exportname=snap-2",
        "exportdesc=fixed:nightly", "exportname-list=explicit")) {
      List<ListedExport> l = NbdClient.list(NbdClientConfig.builder(s.uri("")).build());
      assertEquals(List.of(new ListedExport("snap-1", "nightly"), new ListedExport("snap-2", "nightly")), l);
      ExportInfo info = NbdClient.info(NbdClientConfig.builder(s.uri("snap-1")).build());
      assertEquals(1 << 20, info.size());
      assertEquals("snap-1", info.name());
      List<String> ctx = NbdClient.listMetaContexts(NbdClientConfig.builder(s.uri("snap-1")).build());
      assertTrue(ctx.contains(CONTEXT_ALLOCATION), ctx.toString());
    }
  }

  @Test
  void blockSizes_areHonoured() throws Exception {
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "--filter=blocksize-policy", "memory", "4M", "blocksize-minimum=4096",
        "blocksize-preferred=65536", "blocksize-maximum=1M", "blocksize-error-policy=error");
        NbdClient c = NbdClient.connect(s.uri(""))) {
      assertEquals(4096, c.info().minimumBlock());
      assertEquals(65536, c.info().preferredBlock());
      assertEquals(1 << 20, c.info().maximumPayload());
      byte[] d = random(3, 3 << 20);
      c.write(0, d); // split into 1 MiB writes, which the server accepts
      assertArrayEquals(d, c.read(0, 3 << 20));
      assertThrows(IllegalArgumentException.class, () -> c.read(1, 4096));
    }
  }

  @Test
  void oldstyle_isRefusedClearly() throws Exception {
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "--oldstyle", "memory", "1M")) {
      NbdHandshakeException e = assertThrows(NbdHandshakeException.class, () -> NbdClient.connect(s.uri("")));
      assertTrue(e.getMessage().contains("oldstyle"), e.getMessage());
    }
  }

  @Test
  void unknownExport_isRefused() throws Exception {
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "--filter=exportname", "memory", "1M", "exportname=a", "exportname-strict=true")) {
      NbdHandshakeException e = assertThrows(NbdHandshakeException.class, () -> NbdClient.connect(s.uri("b")));
      assertEquals(OPT_GO, e.option());
      assertTrue(e.getMessage().contains("b"), e.getMessage());
    }
  }

  @Test
  void noStructuredReplies_simpleRepliesWork() throws Exception {
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "--no-sr", "memory", "1M");
        NbdClient c = NbdClient.connect(s.uri(""))) {
      assertFalse(c.structuredReplies());
      c.write(100, new byte[] {1, 2, 3});
      assertArrayEquals(new byte[] {0, 1, 2, 3, 0}, c.read(99, 5));
      NbdErrorException e = assertThrows(NbdErrorException.class, () -> c.read(1 << 20, 1));
      assertEquals("EINVAL", e.errnoName());
    }
  }

  @Test
  void replyTimeout_failsThenClosed() throws Exception {
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "--filter=delay", "memory", "1M", "rdelay=5");
        NbdClient c = NbdClient.connect(NbdClientConfig.builder(s.uri("")).replyTimeout(Duration.ofMillis(500)).build())) {
      long t0 = System.nanoTime();
      assertThrows(NbdTimeoutException.class, () -> c.read(0, 512));
      assertTrue(System.nanoTime() - t0 < 4_000_000_000L, "timed out late");
      NbdClosedException closed = assertThrows(NbdClosedException.class, () -> c.read(0, 512));
      assertInstanceOf(NbdTimeoutException.class, closed.getCause());
    }
  }

  @Test
  void close_thenRequests_areClosed() throws Exception {
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "memory", "1M")) {
      NbdClient c = NbdClient.connect(s.uri(""));
      assertTrue(c.toString().contains(s.uri("")), c.toString());
      c.close();
      c.close();
      NbdClosedException e = assertThrows(NbdClosedException.class, () -> c.read(0, 1));
      assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }
  }

  @Test
  void multiConn_writesOnOneSeenOnOthers() throws Exception {
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "memory", "8M")) {
      List<NbdClient> cs = NbdClient.connectMultiConn(NbdClientConfig.builder(s.uri("")).build(), 4);
      try {
        assertEquals(4, cs.size());
        for (int i = 0; i < 4; i++) {
          cs.get(i).write(i << 20, random(i, 1 << 20));
        }
        cs.get(0).flush();
        for (int i = 0; i < 4; i++) {
          assertArrayEquals(random(i, 1 << 20), cs.get((i + 1) % 4).read(i << 20, 1 << 20));
        }
      } finally {
        for (NbdClient c : cs) {
          c.close();
        }
      }
    }
    // without CAN_MULTI_CONN: one connection only
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "--filter=multi-conn", "memory", "8M", "multi-conn-mode=disable")) {
      List<NbdClient> cs = NbdClient.connectMultiConn(NbdClientConfig.builder(s.uri("")).build(), 4);
      assertEquals(1, cs.size());
      cs.get(0).close();
    }
  }

  @Test
  void copy_wholeExport_sparseAndExact() throws Exception {
    int mib = 1 << 20;
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "memory", "64M")) {
      byte[] model = new byte[64 * mib];
      try (NbdClient c = NbdClient.connect(s.uri(""))) {
        for (int m : new int[] {0, 3, 17, 40, 63}) {
          byte[] d = random(m, mib);
          c.write((long) m * mib, d);
          System.arraycopy(d, 0, model, m * mib, mib);
        }
        c.write(20L * mib + 12345, new byte[] {9, 9, 9});
        model[20 * mib + 12345] = model[20 * mib + 12346] = model[20 * mib + 12347] = 9;
      }
      Path file = dir.resolve("copy.img");
      Files.write(file, random(99, 70 * mib)); // old contents, longer: all replaced
      AtomicLong last = new AtomicLong();
      ExportCopier.Result r = ExportCopier.builder(NbdClientConfig.builder(s.uri("")).build())
          .connections(3).requestSize(128 << 10).window(8).progress((done, total) -> last.set(done)).build().copyTo(file);
      assertEquals(64L * mib, r.bytesTotal());
      assertEquals(3, r.connections());
      assertEquals(64L * mib, last.get());
      assertTrue(r.bytesSkipped() >= 50L * mib, r.toString());
      assertArrayEquals(model, Files.readAllBytes(file));
      long allocated = allocatedBytes(file);
      assertTrue(allocated < 16L * mib, "copy is not sparse: " + allocated + " bytes allocated");
    }
  }

  @Test
  void copy_ranges_overwriteOnlyThose() throws Exception {
    int mib = 1 << 20;
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "memory", "8M")) {
      try (NbdClient c = NbdClient.connect(s.uri(""))) {
        c.write(mib, random(1, mib));
      }
      Path file = dir.resolve("inc.img");
      byte[] old = random(7, 8 * mib);
      Files.write(file, old);
      try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
        ExportCopier.builder(NbdClientConfig.builder(s.uri("")).build()).build()
            .copyRanges(List.of(new Extent(mib, mib, 0), new Extent(4L * mib, mib, 0)), ch);
      }
      byte[] expect = old.clone();
      System.arraycopy(random(1, mib), 0, expect, mib, mib);
      java.util.Arrays.fill(expect, 4 * mib, 5 * mib, (byte) 0); // a zero range of the export, written as zeroes
      assertArrayEquals(expect, Files.readAllBytes(file));
    }
  }

  @Test
  void copy_withoutBaseAllocation_readsEverything() throws Exception {
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "--filter=noextents", "pattern", "6M")) {
      Path file = dir.resolve("all.img");
      ExportCopier.Result r = ExportCopier.builder(NbdClientConfig.builder(s.uri("")).build()).connections(2).build().copyTo(file);
      assertEquals(6L << 20, r.bytesRead());
      assertEquals(0, r.bytesSkipped());
      try (NbdClient c = NbdClient.connect(s.uri(""))) {
        assertArrayEquals(c.read(0, 6 << 20), Files.readAllBytes(file));
      }
    }
  }

  @Test
  void copy_serverError_failsWithIt() throws Exception {
    try (NbdServerProcess s = NbdServerProcess.nbdkit(dir, "--filter=error", "memory", "4M", "error=EIO", "error-pread-rate=100%")) {
      NbdErrorException e = assertThrows(NbdErrorException.class,
          () -> ExportCopier.builder(NbdClientConfig.builder(s.uri("")).build()).skipZeroes(false).build().copyTo(dir.resolve("x.img")));
      assertEquals("EIO", e.errnoName());
    }
  }

  static long allocatedBytes(Path file) throws Exception {
    Exec.assumeTools("stat");
    Process p = new ProcessBuilder("stat", "-c", "%b %B", file.toString()).start();
    String[] out = new String(p.getInputStream().readAllBytes()).trim().split(" ");
    p.waitFor();
    return Long.parseLong(out[0]) * Long.parseLong(out[1]);
  }
}
