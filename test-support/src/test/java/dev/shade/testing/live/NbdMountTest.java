package dev.shade.testing.live;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.testing.ChildJvm;
import dev.shade.testing.Command;
import dev.shade.testing.Tools;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link NbdMount} on an nbdkit memory export: each piece of the chain comes down and back on its
 * own with the filesystem's contents intact, and nothing is left behind: not by close while the
 * filesystem is busy, not by a JVM that exits without closing.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class NbdMountTest {
  @TempDir Path tmp;
  /** The NBD server. */
  private Background nbdkit;
  private String uri;

  @BeforeEach
  void serve() throws Exception {
    NbdMount.requireTools();
    Tools.require("nbdkit", "nbdkit");
    Path sock = tmp.resolve("nbd.sock");
    nbdkit = Background.start(List.of("nbdkit", "--foreground", "-U", sock.toString(), "memory", "256M"),
        tmp.resolve("nbdkit.log"));
    for (int i = 0; i < 500 && !Files.exists(sock); i++) {
      Thread.sleep(10);
    }
    assertTrue(Files.exists(sock), () -> "nbdkit listens: " + nbdkit.output());
    uri = "nbd+unix:///?socket=" + sock;
  }

  @AfterEach
  void stop() throws InterruptedException {
    if (nbdkit != null) {
      nbdkit.stop(5000);
    }
  }

  @Test
  void pieces_downAndUpAgain_keepTheFilesystem() throws Exception {
    Path mnt = tmp.resolve("mnt");
    Path file;
    try (NbdMount m = NbdMount.open(uri, tmp.resolve("nbd"), mnt, true)) {
      assertTrue(Mounts.mounted(mnt), m::toString);
      file = mnt.resolve("hello");
      Files.writeString(file, "hello");
      Command.run("sync", "-f", file.toString()).requireSuccess();

      assertTrue(m.unmount());
      assertFalse(Mounts.mounted(mnt));
      assertNotNull(m.device(), "the loop device stays attached");
      m.mount();
      assertEquals("hello", Files.readString(file));

      m.detachLoop();
      assertNull(m.device());
      assertFalse(m.mounted());
      m.mount(); // attaches a loop device again
      assertEquals("hello", Files.readString(file));

      m.disconnect();
      assertFalse(m.connected());
      assertFalse(Mounts.mounted(tmp.resolve("nbd/fuse")), "nbdfuse's mount is gone with it");
      m.connect();
      assertTrue(m.connected());
      assertFalse(m.mounted(), "connect brings back nbdfuse only");
      m.mount();
      assertEquals("hello", Files.readString(file));
      String device = m.device();
      m.close();
      assertNothingLeft(mnt, m.file(), device);
    }
  }

  @Test
  void close_whileTheFilesystemIsBusy_detachesItLazilyAndLeavesNothingOnceReleased() throws Exception {
    Path mnt = tmp.resolve("mnt");
    NbdMount m = NbdMount.open(uri, tmp.resolve("nbd"), mnt, true);
    String device = m.device();
    FileChannel open = FileChannel.open(mnt.resolve("busy"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
    try {
      long t0 = System.nanoTime();
      m.close();
      long ms = (System.nanoTime() - t0) / 1_000_000;
      assertTrue(ms >= Mounts.UNMOUNT_WAIT_MILLIS, "it waited for the filesystem first: " + ms + " ms");
      assertFalse(Mounts.mounted(mnt), "detached lazily");
    } finally {
      open.close();
    }
    awaitNothingLeft(mnt, m.file(), device);
  }

  @Test
  void jvmExit_withoutClose_tearsDownInTheShutdownHook() throws Exception {
    Path mnt = tmp.resolve("mnt");
    try (ChildJvm child = ChildJvm.start(tmp, OpenAndWait.class, uri, tmp.resolve("nbd").toString(), mnt.toString())) {
      assertNotNull(child.awaitLine("READY", Duration.ofSeconds(60)), child::output);
      String device = child.linesStartingWith("READY").get(0).split(" ")[1];
      assertTrue(Mounts.mounted(mnt), child::output);
      assertEquals(ChildJvm.SIGTERM_STATUS, child.terminate(), child::output);
      assertNothingLeft(mnt, tmp.resolve("nbd/fuse/disk"), device);
    }
  }

  /** Opens an NbdMount, prints {@code READY DEVICE} and waits for its end. */
  public static final class OpenAndWait {
    public static void main(String[] args) throws Exception {
      NbdMount m = NbdMount.open(args[0], Path.of(args[1]), Path.of(args[2]), true);
      System.out.println("READY " + m.device());
      System.out.flush();
      Thread.sleep(Long.MAX_VALUE);
    }
  }

  private static void awaitNothingLeft(Path mnt, Path file, String device) throws Exception {
    AssertionError last = null;
    for (int i = 0; i < 100; i++) {
      try {
        assertNothingLeft(mnt, file, device);
        return;
      } catch (AssertionError e) {
        last = e;
        Thread.sleep(100);
      }
    }
    throw last;
  }

  private static void assertNothingLeft(Path mnt, Path file, String device) throws IOException, InterruptedException {
    assertFalse(Mounts.mounted(mnt), "no ext4 mount on " + mnt);
    assertFalse(Mounts.mounted(file.getParent()), "no nbdfuse mount on " + file.getParent());
    String loops = Command.run("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").requireSuccess();
    assertFalse(loops.contains(file.toString()), "no loop device on " + file + ": " + loops);
    assertFalse(Files.exists(Path.of("/sys/block", device.substring("/dev/".length()), "loop")),
        device + " is detached");
  }
}
