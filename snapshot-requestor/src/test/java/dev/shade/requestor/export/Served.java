package dev.shade.requestor.export;

import dev.shade.nbd.server.NbdServer;
import dev.shade.provider.BlockDevice;
import dev.shade.provider.BlockSource;
import dev.shade.provider.Volume;
import dev.shade.testing.nbd.Uris;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.List;

/** Volumes served through {@link VolumeExports} by an in-process NBD server on loopback, with byte helpers for the tests. */
final class Served implements AutoCloseable {
  /** The volumes served; closed after the server. */
  final List<Volume> volumes;
  /** What the server serves. */
  final VolumeExports exports;
  /** The server; closed first. */
  final NbdServer server;

  private Served(List<Volume> volumes, VolumeExports exports, NbdServer server) {
    this.volumes = volumes;
    this.exports = exports;
    this.server = server;
  }

  /** Serves {@code volumes} on 127.0.0.1 at a free port, plus whatever {@code config} adds. */
  static Served start(List<Volume> volumes, NbdServer.Config config) throws IOException {
    VolumeExports exports = new VolumeExports(volumes);
    NbdServer s = NbdServer.start(exports, config.listen(new InetSocketAddress("127.0.0.1", 0)));
    return new Served(List.copyOf(volumes), exports, s);
  }

  /** Serves {@code volumes} on 127.0.0.1 at a free port. */
  static Served start(Volume... volumes) throws IOException {
    return start(List.of(volumes), new NbdServer.Config());
  }

  /** The first volume. */
  Volume volume() {
    return volumes.get(0);
  }

  /** The TCP address of the server. */
  InetSocketAddress address() {
    return server.tcpAddress();
  }

  /** The NBD URI of {@code export} over TCP, as libnbd and qemu take it. */
  String uri(String export) {
    return Uris.tcp(address(), export);
  }

  @Override
  public void close() throws IOException {
    IOException first = null;
    try {
      server.close();
    } catch (IOException e) {
      first = e;
    }
    for (Volume v : volumes) {
      try {
        v.close();
      } catch (IOException e) {
        if (first == null) {
          first = e;
        } else {
          first.addSuppressed(e);
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }

  // ------------------------------------------------------------------ bytes

  static void write(BlockDevice d, long offset, byte[] data) throws IOException {
    d.write(offset, ByteBuffer.wrap(data));
  }

  static byte[] read(BlockSource s, long offset, int length) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(length);
    s.read(offset, b); // fills all of it or throws, as BlockSource promises
    return b.array();
  }

  /** The whole content of {@code s}; for volumes of a few tens of MiB. */
  static byte[] readAll(BlockSource s) throws IOException {
    long size = s.size();
    if (size > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("too large to read into one array: " + size + " bytes of " + s);
    }
    return read(s, 0, (int) size);
  }

  /** The first offset where {@code a} and {@code b} differ, or -1 when they are equal. */
  static long firstDifference(byte[] a, byte[] b) {
    return java.util.Arrays.mismatch(a, b);
  }
}
