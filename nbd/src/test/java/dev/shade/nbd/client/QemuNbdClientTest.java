package dev.shade.nbd.client;

import static dev.shade.nbd.protocol.Nbd.*;
import static org.junit.jupiter.api.Assertions.*;

import dev.shade.testing.nbd.Exec;
import dev.shade.testing.nbd.NbdServerProcess;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The client against qemu-nbd on Unix sockets: a sparse raw file and a qcow2 image with
 * unallocated clusters, read back byte for byte (qemu answers holes with OFFSET_HOLE chunks),
 * {@code base:allocation} and {@code qemu:allocation-depth} against what was written, errors,
 * several connections and a sparse copy.
 */
class QemuNbdClientTest {
  static final int MIB = 1 << 20;
  static final String DEPTH = "qemu:allocation-depth";
  @TempDir Path dir;

  private static byte[] random(long seed, int n) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  /** A 16 MiB sparse raw file with data at [1, 2) MiB and [5 MiB, +64 KiB); returns its contents. */
  private byte[] sparseRaw(Path file) throws Exception {
    byte[] model = new byte[16 * MIB];
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      ch.write(ByteBuffer.wrap(new byte[1]), 16L * MIB - 1);
      ch.truncate(16L * MIB);
      byte[] a = random(1, MIB);
      byte[] b = random(2, 64 << 10);
      ch.write(ByteBuffer.wrap(a), MIB);
      ch.write(ByteBuffer.wrap(b), 5L * MIB);
      System.arraycopy(a, 0, model, MIB, a.length);
      System.arraycopy(b, 0, model, 5 * MIB, b.length);
    }
    return model;
  }

  @Test
  void raw_readsAndExtentsMatchTheFile() throws Exception {
    Exec.assumeTools("qemu-nbd");
    Path raw = dir.resolve("disk.raw");
    byte[] model = sparseRaw(raw);
    try (NbdServerProcess s = NbdServerProcess.qemuNbd(dir, "-r", "-x", "snap", "-f", "raw", raw.toString());
        NbdClient c = NbdClient.connect(NbdClientConfig.builder(s.uri("snap")).metaContexts(CONTEXT_ALLOCATION).build())) {
      assertTrue(c.info().readOnly());
      assertEquals(16L * MIB, c.size());
      ByteBuffer all = ByteBuffer.allocateDirect(16 * MIB);
      for (int i = 0; i < all.capacity(); i++) {
        all.put(i, (byte) 0x5a); // holes must come back as zeroes, not as what was there
      }
      c.read(0, all);
      byte[] got = new byte[16 * MIB];
      all.get(got);
      assertArrayEquals(model, got);
      List<Extent> e = c.extents(CONTEXT_ALLOCATION, 0, 16L * MIB);
      for (long off = 0; off < 16L * MIB; off += 64 << 10) {
        boolean data = (off >= MIB && off < 2L * MIB) || off == 5L * MIB;
        int flags = NbdkitClientTest.flagsAt(e, off);
        assertEquals(data, (flags & STATE_ZERO) == 0, "offset " + off + " in " + e);
      }
      // errors: qemu 7.2 answers a write to a read-only export with EINVAL ("Export is
      // read-only"), where nbdkit says EPERM; EINVAL past the end
      NbdErrorException ro = assertThrows(NbdErrorException.class, () -> c.write(0, new byte[512]));
      assertTrue(ro.errnoName().equals("EPERM") || ro.serverMessage().contains("read-only"), ro.getMessage());
      assertEquals(CMD_WRITE, ro.command());
      NbdErrorException past = assertThrows(NbdErrorException.class, () -> c.read(16L * MIB, 512));
      assertEquals("EINVAL", past.errnoName());
      assertTrue(past.getMessage().contains("snap"), past.getMessage());
    }
  }

  @Test
  void qcow2_allocationDepthAndHoles() throws Exception {
    Exec.assumeTools("qemu-nbd", "qemu-img");
    Path qcow = dir.resolve("disk.qcow2");
    Process p = new ProcessBuilder("qemu-img", "create", "-f", "qcow2", qcow.toString(), "32M").redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    assertEquals(0, p.waitFor(), out);
    byte[] model = new byte[32 * MIB];
    try (NbdServerProcess s = NbdServerProcess.qemuNbd(dir, "-x", "vol", "-f", "qcow2", qcow.toString());
        NbdClient c = NbdClient.connect(s.uri("vol"))) {
      assertFalse(c.info().readOnly());
      byte[] a = random(3, 3 * MIB);
      c.write(4L * MIB, ByteBuffer.wrap(a), true);
      System.arraycopy(a, 0, model, 4 * MIB, a.length);
      byte[] b = random(4, 4096);
      c.write(20L * MIB + 65536, b);
      System.arraycopy(b, 0, model, 20 * MIB + 65536, b.length);
      c.flush();
      c.writeZeroes(30L * MIB, MIB, false, false);
    }
    try (NbdServerProcess s = NbdServerProcess.qemuNbd(dir, "-r", "-A", "-x", "vol", "-f", "qcow2", qcow.toString())) {
      List<String> available = NbdClient.listMetaContexts(NbdClientConfig.builder(s.uri("vol")).build());
      assertTrue(available.contains(CONTEXT_ALLOCATION) && available.contains(DEPTH), available.toString());
      NbdClientConfig cfg = NbdClientConfig.builder(s.uri("vol")).metaContexts(CONTEXT_ALLOCATION, DEPTH).build();
      try (NbdClient c = NbdClient.connect(cfg)) {
        assertEquals(List.of(CONTEXT_ALLOCATION, DEPTH), c.metaContexts());
        assertArrayEquals(model, c.read(0, 32 * MIB));
        List<Extent> depth = c.extents(DEPTH, 0, 32L * MIB);
        List<Extent> alloc = c.extents(CONTEXT_ALLOCATION, 0, 32L * MIB);
        for (long off = 0; off < 32L * MIB; off += 65536) {
          boolean written = (off >= 4L * MIB && off < 7L * MIB) || off == 20L * MIB + 65536;
          assertEquals(written ? 1 : 0, NbdkitClientTest.flagsAt(depth, off) == 0 ? 0 : 1, "depth at " + off + ": " + depth);
          assertEquals(!written, (NbdkitClientTest.flagsAt(alloc, off) & STATE_ZERO) != 0, "allocation at " + off + ": " + alloc);
        }
        Map<String, List<Extent>> both = c.blockStatus(4L * MIB, MIB, false);
        assertEquals(2, both.size());
      }
      Path copy = dir.resolve("copy.img");
      ExportCopier.Result r = ExportCopier.builder(cfg).connections(2).build().copyTo(copy);
      assertArrayEquals(model, Files.readAllBytes(copy));
      assertTrue(r.bytesSkipped() >= 28L * MIB, r.toString());
      assertTrue(NbdkitClientTest.allocatedBytes(copy) < 8L * MIB, "copy not sparse");
    }
  }

  @Test
  void sharedReadOnly_severalConnections() throws Exception {
    Exec.assumeTools("qemu-nbd");
    Path raw = dir.resolve("disk.raw");
    byte[] model = sparseRaw(raw);
    try (NbdServerProcess s = NbdServerProcess.qemuNbd(dir, "-r", "-e", "4", "-x", "snap", "-f", "raw", raw.toString())) {
      List<NbdClient> cs = NbdClient.connectMultiConn(NbdClientConfig.builder(s.uri("snap")).build(), 4);
      try {
        assertEquals(4, cs.size(), "qemu-nbd -r -e 4 advertises CAN_MULTI_CONN");
        for (int i = 0; i < 4; i++) {
          byte[] got = cs.get(i).read((long) i * 4 * MIB, 4 * MIB);
          assertArrayEquals(java.util.Arrays.copyOfRange(model, i * 4 * MIB, (i + 1) * 4 * MIB), got, "quarter " + i);
        }
      } finally {
        for (NbdClient c : cs) {
          c.close();
        }
      }
    }
  }
}
