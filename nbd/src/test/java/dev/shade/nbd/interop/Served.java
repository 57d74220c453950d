package dev.shade.nbd.interop;

import dev.shade.nbd.server.NbdServer;
import dev.shade.nbd.testing.TestCatalog;
import dev.shade.testing.nbd.Uris;
import java.io.IOException;
import java.net.InetSocketAddress;

/** A {@link TestCatalog} served by an in-process NBD server on loopback, with byte helpers for the tests. */
final class Served implements AutoCloseable {
  /** What is served. */
  final TestCatalog catalog;
  /** The server. */
  final NbdServer server;

  private Served(TestCatalog catalog, NbdServer server) {
    this.catalog = catalog;
    this.server = server;
  }

  /** Serves {@code catalog} on 127.0.0.1 at a free port, plus whatever {@code config} adds. */
  static Served start(TestCatalog catalog, NbdServer.Config config) throws IOException {
    NbdServer s = NbdServer.start(catalog, config.listen(new InetSocketAddress("127.0.0.1", 0)));
    return new Served(catalog, s);
  }

  /** Serves {@code catalog} on 127.0.0.1 at a free port. */
  static Served start(TestCatalog catalog) throws IOException {
    return start(catalog, new NbdServer.Config());
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
    server.close();
  }

  // ------------------------------------------------------------------ bytes

  /** Copies {@code data} into {@code disk} at {@code offset}. */
  static void write(byte[] disk, long offset, byte[] data) {
    System.arraycopy(data, 0, disk, (int) offset, data.length);
  }

  /** {@code length} bytes of {@code disk} at {@code offset}. */
  static byte[] read(byte[] disk, long offset, int length) {
    return java.util.Arrays.copyOfRange(disk, (int) offset, (int) offset + length);
  }

  /** The first offset where {@code a} and {@code b} differ, or -1 when they are equal. */
  static long firstDifference(byte[] a, byte[] b) {
    return java.util.Arrays.mismatch(a, b);
  }
}
