package dev.shade.nativeio;

import com.sun.jna.LastErrorException;
import java.nio.charset.StandardCharsets;

/**
 * systemd's readiness notification ({@code sd_notify(3)}): a datagram of {@code KEY=VALUE}
 * lines sent to the socket named by {@code $NOTIFY_SOCKET}, so a {@code Type=notify} unit is
 * reported started only once the service really serves.
 */
public final class SdNotify {
  /*
   * Java cannot send a datagram on an AF_UNIX socket (DatagramChannel is IP only in Java 17),
   * hence libc: socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC), sendto with a struct sockaddr_un,
   * close. A name starting with '@' is in the abstract namespace: its first byte becomes NUL and
   * the address length covers the name only (no terminating NUL), as sd_notify does.
   */
  private static final short AF_UNIX = 1;
  private static final int SOCK_DGRAM = 2;
  private static final int SOCK_CLOEXEC = 0x80000;
  /** sizeof(sun_path) on Linux. */
  private static final int SUN_PATH = 108;

  private SdNotify() {}

  /**
   * Sends {@code state} (e.g. {@code "READY=1"}) to the notify socket; returns false without
   * doing anything when {@code $NOTIFY_SOCKET} is not set (not started by systemd).
   */
  public static boolean notify(String state) throws ErrnoException {
    return notify(System.getenv("NOTIFY_SOCKET"), state);
  }

  /** As {@link #notify(String)}, to the socket {@code socket} (a path, or {@code @name}). */
  public static boolean notify(String socket, String state) throws ErrnoException {
    if (socket == null || socket.isEmpty()) {
      return false;
    }
    byte[] path = socket.getBytes(StandardCharsets.UTF_8);
    boolean isAbstract = path[0] == '@';
    if (path.length >= SUN_PATH) {
      throw ErrnoException.of("sd_notify", socket, Errno.ENAMETOOLONG, "NOTIFY_SOCKET is longer than a socket path");
    }
    byte[] addr = new byte[2 + SUN_PATH];
    addr[0] = (byte) AF_UNIX; // sa_family_t, little-endian on the supported ABIs
    addr[1] = (byte) (AF_UNIX >> 8);
    System.arraycopy(path, 0, addr, 2, path.length);
    int len = 2 + path.length;
    if (isAbstract) {
      addr[2] = 0;
    } else {
      len += 1; // the terminating NUL
    }
    byte[] msg = state.getBytes(StandardCharsets.UTF_8);
    int fd;
    try {
      fd = LibC.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    } catch (LastErrorException e) {
      throw ErrnoException.of("socket", socket, e.getErrorCode(), null);
    }
    try {
      LibC.sendto(fd, msg, msg.length, 0, addr, len);
      return true;
    } catch (LastErrorException e) {
      throw ErrnoException.of("sendto", socket, e.getErrorCode(), null);
    } finally {
      try {
        LibC.close(fd);
      } catch (LastErrorException ignored) {
        // a datagram socket that was only sent on: nothing is lost
      }
    }
  }
}
