package dev.shade.nbd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.nbd.client.NbdClient;
import dev.shade.nbd.testing.TestCatalog;
import dev.shade.testing.nbd.Uris;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A socket file left by a server that is gone (as SIGKILL leaves it) does not stop the next
 * server; a live server's socket, a directory and a plain file are refused, each named.
 */
class UnixSocketPathsTest {
  @TempDir Path dir;

  /** Binds {@code path} and closes the channel without removing the file, as a killed process does. */
  private static void leaveStaleSocket(Path path) throws IOException {
    ServerSocketChannel ch = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    ch.bind(UnixDomainSocketAddress.of(path));
    ch.close();
    assertTrue(Files.exists(path, LinkOption.NOFOLLOW_LINKS), "the closed socket's file stays, as after SIGKILL");
  }

  @Test
  void aServerStartsOverTheSocketFileOfAKilledOne() throws IOException {
    Path socket = dir.resolve("nbd.sock");
    leaveStaleSocket(socket);
    TestCatalog catalog = new TestCatalog("vol", 1 << 20);
    try (NbdServer server = NbdServer.start(catalog, new NbdServer.Config().socket(socket));
        NbdClient client = NbdClient.connect(Uris.unix(socket, "vol", null))) {
      assertEquals(1 << 20, client.size());
    }
  }

  @Test
  void aLiveServersSocketIsRefusedAndKeepsServing() throws IOException {
    Path socket = dir.resolve("nbd.sock");
    TestCatalog catalog = new TestCatalog("vol", 1 << 20);
    try (NbdServer first = NbdServer.start(catalog, new NbdServer.Config().socket(socket))) {
      IOException e = assertThrows(IOException.class,
          () -> NbdServer.start(catalog, new NbdServer.Config().socket(socket)).close());
      assertTrue(e.getMessage().contains("another server is listening on NBD socket " + socket), e.getMessage());
      try (NbdClient client = NbdClient.connect(Uris.unix(socket, "vol", null))) {
        assertEquals(1 << 20, client.size());
      }
    }
  }

  @Test
  void aDirectoryOrAPlainFileIsNotTakenForASocket() throws IOException {
    Path d = Files.createDirectory(dir.resolve("d"));
    Path f = Files.writeString(dir.resolve("f"), "data");
    IOException e1 = assertThrows(IOException.class, () -> UnixSocketPaths.removeStale(d, "NBD socket"));
    assertTrue(e1.getMessage().contains("existing directory, not a socket: " + d), e1.getMessage());
    IOException e2 = assertThrows(IOException.class, () -> UnixSocketPaths.removeStale(f, "NBD socket"));
    assertTrue(e2.getMessage().contains("existing file, not a socket: " + f), e2.getMessage());
    assertEquals("data", Files.readString(f));
  }
}
