package dev.shade.nativeio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * sd_notify against a real AF_UNIX datagram socket, as systemd's notify socket is: a path and
 * an abstract name, the exact datagram received, and the case without NOTIFY_SOCKET.
 */
class SdNotifyTest {
  /** The receiving end, which shade itself never needs: bind and recv, through JNA directly. */
  static final class Receiver {
    static {
      Native.register(Receiver.class, NativeLibrary.getInstance("c"));
    }

    static native int socket(int domain, int type, int protocol) throws LastErrorException;

    static native int bind(int fd, byte[] addr, int len) throws LastErrorException;

    static native long recv(int fd, byte[] buf, long len, int flags) throws LastErrorException;

    static native int close(int fd) throws LastErrorException;
  }

  private static final int MSG_DONTWAIT = 0x40;

  @TempDir Path tmp;

  @Test
  void notify_path_sendsTheStateAsOneDatagram() throws ErrnoException {
    String path = tmp.resolve("notify").toString();
    int fd = bound(path.getBytes(StandardCharsets.UTF_8), false);
    try {
      assertTrue(SdNotify.notify(path, "READY=1\nSTATUS=serving"));
      assertEquals("READY=1\nSTATUS=serving", receive(fd));
    } finally {
      Receiver.close(fd);
    }
  }

  @Test
  void notify_abstractName_sendsToTheAbstractNamespace() throws ErrnoException {
    String name = "shade-test-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
    int fd = bound(name.getBytes(StandardCharsets.UTF_8), true);
    try {
      assertTrue(SdNotify.notify("@" + name, "READY=1"));
      assertEquals("READY=1", receive(fd));
    } finally {
      Receiver.close(fd);
    }
  }

  @Test
  void notify_withoutSocket_doesNothing() throws ErrnoException {
    assertFalse(SdNotify.notify(null, "READY=1"));
    assertFalse(SdNotify.notify("", "READY=1"));
  }

  @Test
  void notify_nobodyListening_failsWithTheCallAndPath() {
    String path = tmp.resolve("absent").toString();
    ErrnoException e = assertThrows(ErrnoException.class, () -> SdNotify.notify(path, "READY=1"));
    assertTrue(e.getMessage().contains("sendto") && e.getMessage().contains(path), e.getMessage());
  }

  /** A datagram socket bound to {@code name} (abstract: in the abstract namespace). */
  private static int bound(byte[] name, boolean isAbstract) {
    int fd = Receiver.socket(1, 2, 0); // AF_UNIX, SOCK_DGRAM
    byte[] addr = new byte[110];
    addr[0] = 1; // AF_UNIX, little-endian
    int off = isAbstract ? 3 : 2; // abstract: a NUL first
    System.arraycopy(name, 0, addr, off, name.length);
    int len = isAbstract ? 3 + name.length : 2 + name.length + 1;
    Receiver.bind(fd, addr, len);
    return fd;
  }

  private static String receive(int fd) {
    byte[] buf = new byte[4096];
    long n = Receiver.recv(fd, buf, buf.length, MSG_DONTWAIT);
    return new String(Arrays.copyOf(buf, (int) n), StandardCharsets.UTF_8);
  }
}
