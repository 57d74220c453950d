package dev.shade.nbd.server;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Makes a Unix socket path ready to bind: a socket file that nobody accepts on any more (a
 * server killed with SIGKILL leaves one) is removed; a live server there, a directory or a plain
 * file is an error naming the path. Servers of every kind use this one rule, so a restart after
 * a crash never needs a hand-removed file, and a second server never steals a first one's path.
 *
 * <p>Thread-safe (stateless). Two processes preparing the same stale path at once may both
 * remove it; the binder's atomic rename then decides which one holds it.
 */
public final class UnixSocketPaths {
  private static final Logger LOG = LoggerFactory.getLogger(UnixSocketPaths.class);

  private UnixSocketPaths() {}

  /**
   * Prepares {@code socket} for binding. {@code what} names it in messages ("NBD socket",
   * "control socket").
   *
   * @throws IOException when a server accepts connections there, or the path is a directory or
   *     a plain file
   */
  public static void removeStale(Path socket, String what) throws IOException {
    if (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    if (Files.isDirectory(socket, LinkOption.NOFOLLOW_LINKS) || Files.isRegularFile(socket, LinkOption.NOFOLLOW_LINKS)) {
      throw new IOException(what + " path is an existing "
          + (Files.isDirectory(socket, LinkOption.NOFOLLOW_LINKS) ? "directory" : "file") + ", not a socket: " + socket
          + " (choose another path)");
    }
    if (answers(socket)) {
      throw new IOException("another server is listening on " + what + " " + socket);
    }
    LOG.info("removing stale {} {} (nothing accepts connections on it)", what, socket);
    Files.deleteIfExists(socket);
  }

  /** Whether a server accepts connections on {@code socket}. */
  public static boolean answers(Path socket) {
    try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      probe.connect(UnixDomainSocketAddress.of(socket));
      return true;
    } catch (IOException e) {
      return false;
    }
  }
}
