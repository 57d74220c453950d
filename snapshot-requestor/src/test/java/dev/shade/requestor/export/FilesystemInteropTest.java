package dev.shade.requestor.export;

import static dev.shade.testing.Bytes.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.shade.nbd.server.NbdServer;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.testing.Tools;
import dev.shade.testing.nbd.Exec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real ext4 filesystem on the origin export (nbdfuse, then a loop device), frozen with
 * fsfreeze while a snapshot is taken; the snapshot export, mounted read-only the same way,
 * passes fsck and holds exactly the files of that instant.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class FilesystemInteropTest {
  /*
   * Root only: nbdfuse needs /dev/fuse and the right to mount, losetup and mount need root.
   * Every resource is registered with a Teardown right after it is acquired, so whatever
   * fails (including the JUnit timeout, which interrupts this thread) they are released in
   * reverse order: filesystem mounts, loop devices, nbdfuse mounts, then the server.
   */
  private static final Duration CMD_TIMEOUT = Duration.ofSeconds(30);
  private static final long MIB = 1 << 20;
  private static final long SIZE = 96 * MIB;

  @TempDir Path dir;

  @Test
  void frozenExt4Snapshot_mountsCleanWithTheFilesOfThatInstant() throws Exception {
    assumeRootFuseAndLoop();
    Volume volume = Volume.create(dir.resolve("vol"), VolumeConfig.of(SIZE).withDiffMax(SIZE));
    Path socket = dir.resolve("nbd.sock");
    try (Teardown teardown = new Teardown()) {
      Served served;
      try {
        served = Served.start(List.of(volume), new NbdServer.Config().socket(socket));
      } catch (IOException | RuntimeException e) {
        volume.close();
        throw e;
      }
      teardown.push("stop the NBD server and close the volume", served::close);

      // the origin over the Unix socket: nbdfuse file -> loop device -> ext4
      Path originFile = nbdfuse(teardown, dir.resolve("mnt-origin"), "nbd+unix:///vol?socket=" + socket, false);
      String originDev = losetup(teardown, originFile, false);
      Exec.run(CMD_TIMEOUT, "mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", originDev).assertSuccess();
      Path fs = dir.resolve("fs-origin");
      mount(teardown, originDev, fs, "rw");

      Map<String, byte[]> files = new TreeMap<>();
      files.put("readme.txt", "written before the snapshot\n".getBytes(java.nio.charset.StandardCharsets.UTF_8));
      for (int i = 0; i < 6; i++) {
        files.put("data/blob-" + i + ".bin", random(i, (int) (1000 + i * 517_003L)));
      }
      files.put("to-delete.bin", random(50, (int) (2 * MIB)));
      files.put("to-modify.bin", random(51, (int) MIB + 17));
      writeFiles(fs, files);
      Map<String, String> atSnapshot = hashes(files);

      Exec.run(CMD_TIMEOUT, "sync").assertSuccess();
      Exec.run(CMD_TIMEOUT, "fsfreeze", "-f", fs.toString()).assertSuccess();
      try {
        volume.createSnapshot("s1");
      } finally {
        Exec.run(CMD_TIMEOUT, "fsfreeze", "-u", fs.toString()).assertSuccess();
      }

      // after the snapshot: delete, modify, add
      Files.delete(fs.resolve("to-delete.bin"));
      files.remove("to-delete.bin");
      Map<String, byte[]> later = new TreeMap<>();
      later.put("to-modify.bin", random(52, (int) MIB));
      for (int i = 0; i < 4; i++) {
        later.put("after/new-" + i + ".bin", random(60 + i, (int) (MIB + i * 300_007L)));
      }
      writeFiles(fs, later);
      files.putAll(later);
      Exec.run(CMD_TIMEOUT, "sync").assertSuccess();
      Map<String, String> now = hashes(files);
      assertEquals(now, scan(fs), "files on the origin filesystem");
      assertNotEquals(atSnapshot, now, "the origin changed after the snapshot");

      // the snapshot over TCP, read-only at every layer
      Path snapFile = nbdfuse(teardown, dir.resolve("mnt-snap"), served.uri("vol@s1"), true);
      assertFalse(isWritableByMode(snapFile), "nbdfuse shows the read-only export as a file without write permission: "
          + Files.getPosixFilePermissions(snapFile));
      String snapDev = losetup(teardown, snapFile, true);
      Exec.Result fsck = Exec.run(CMD_TIMEOUT, "fsck.ext4", "-n", "-f", snapDev);
      assertEquals(0, fsck.exitCode(), "fsck.ext4 -n -f of the snapshot finds no problem: " + fsck);
      Path snapFs = dir.resolve("fs-snap");
      mount(teardown, snapDev, snapFs, "ro,noload");
      assertEquals(atSnapshot, scan(snapFs), "files on the snapshot filesystem (name -> SHA-256)");

      // the origin, unmounted cleanly, passes fsck too
      teardown.runNow(fs);
      Exec.Result fsckOrigin = Exec.run(CMD_TIMEOUT, "fsck.ext4", "-n", "-f", originDev);
      assertEquals(0, fsckOrigin.exitCode(), "fsck.ext4 -n -f of the unmounted origin finds no problem: " + fsckOrigin);
    }
  }

  // ------------------------------------------------------------------ preconditions

  private void assumeRootFuseAndLoop() throws Exception {
    Tools.requireRoot("mount, losetup, fsfreeze and nbdfuse");
    Exec.assumeTools("nbdfuse", "losetup", "mkfs.ext4", "fsck.ext4", "fsfreeze", "mount", "umount", "sync");
    Tools.requireFuse();
    Tools.requireLoopDevice();
  }

  private static boolean isWritableByMode(Path p) throws IOException {
    return Files.getPosixFilePermissions(p).stream().anyMatch(x -> x.name().endsWith("_WRITE"));
  }

  // ------------------------------------------------------------------ mounts

  /**
   * Mounts {@code uri} with nbdfuse at {@code mountpoint} and returns the file it shows
   * ({@code mountpoint/nbd}) once nbdfuse is ready.
   */
  private Path nbdfuse(Teardown teardown, Path mountpoint, String uri, boolean readOnly) throws Exception {
    Files.createDirectories(mountpoint);
    Path pidFile = dir.resolve(mountpoint.getFileName() + ".pid");
    Path log = dir.resolve(mountpoint.getFileName() + ".log");
    List<String> cmd = new ArrayList<>(List.of("nbdfuse", "-P", pidFile.toString()));
    if (readOnly) {
      cmd.add("--readonly");
    }
    cmd.addAll(List.of(mountpoint.toString(), uri));
    Process p = Exec.start(log, cmd);
    teardown.push(mountpoint, "unmount nbdfuse at " + mountpoint, () -> {
      try {
        unmount(mountpoint);
      } finally {
        if (!p.waitFor(15, TimeUnit.SECONDS)) {
          Exec.kill(p);
          throw new IOException("nbdfuse at " + mountpoint + " did not exit after the unmount; killed it. Its log:\n" + Files.readString(log));
        }
      }
    });
    Path file = mountpoint.resolve("nbd");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!(Files.exists(pidFile) && isMounted(mountpoint) && Files.exists(file))) {
      if (!p.isAlive()) {
        fail("nbdfuse " + String.join(" ", cmd) + " exited with " + p.exitValue() + ":\n" + Files.readString(log));
      }
      if (System.nanoTime() > deadline) {
        fail("nbdfuse " + String.join(" ", cmd) + " was not ready within 20 s:\n" + Files.readString(log));
      }
      Thread.sleep(50);
    }
    return file;
  }

  /** Attaches {@code file} to a free loop device and returns the device path. */
  private static String losetup(Teardown teardown, Path file, boolean readOnly) throws Exception {
    List<String> cmd = new ArrayList<>(List.of("losetup", "--find", "--show"));
    if (readOnly) {
      cmd.add("--read-only");
    }
    cmd.add(file.toString());
    String dev = Exec.run(CMD_TIMEOUT, cmd).assertSuccess().stdout().trim();
    assertTrue(dev.startsWith("/dev/loop"), "losetup printed a loop device: " + dev);
    teardown.push("detach " + dev, () -> Exec.run(CMD_TIMEOUT, "losetup", "-d", dev).assertSuccess());
    return dev;
  }

  private static void mount(Teardown teardown, String dev, Path at, String options) throws Exception {
    Files.createDirectories(at);
    Exec.run(CMD_TIMEOUT, "mount", "-t", "ext4", "-o", options, dev, at.toString()).assertSuccess();
    teardown.push(at, "unmount " + at, () -> unmount(at));
  }

  /** Unmounts {@code at} if it is mounted; lazily when a plain unmount fails. */
  private static void unmount(Path at) throws Exception {
    if (!isMounted(at)) {
      return;
    }
    Exec.Result r = Exec.run(CMD_TIMEOUT, "umount", at.toString());
    if (r.exitCode() != 0) {
      Exec.run(CMD_TIMEOUT, "umount", "-l", at.toString());
      throw new IOException("unmounting " + at + " failed, unmounted it lazily: " + r);
    }
  }

  private static boolean isMounted(Path at) throws IOException {
    String target = at.toAbsolutePath().toString();
    for (String line : Files.readAllLines(Path.of("/proc/self/mounts"))) {
      String[] f = line.split(" ");
      if (f.length > 1 && f[1].equals(target)) {
        return true;
      }
    }
    return false;
  }

  // ------------------------------------------------------------------ files

  private static void writeFiles(Path root, Map<String, byte[]> files) throws IOException {
    for (Map.Entry<String, byte[]> e : files.entrySet()) {
      Path p = root.resolve(e.getKey());
      Files.createDirectories(p.getParent());
      Files.write(p, e.getValue());
    }
  }

  private static Map<String, String> hashes(Map<String, byte[]> files) {
    Map<String, String> out = new TreeMap<>();
    files.forEach((name, data) -> out.put(name, sha256(data)));
    return out;
  }

  /** Every regular file under {@code root}: relative name -> SHA-256. */
  private static Map<String, String> scan(Path root) throws IOException {
    Map<String, String> out = new TreeMap<>();
    try (Stream<Path> s = Files.walk(root)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        if (Files.isRegularFile(p)) {
          out.put(root.relativize(p).toString(), sha256(Files.readAllBytes(p)));
        }
      }
    }
    return out;
  }

  private static String sha256(byte[] data) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  // ------------------------------------------------------------------ teardown

  /** Releases what a test acquired, newest first, even after a failure or an interrupt. */
  private static final class Teardown implements AutoCloseable {
    /** A step that may fail. */
    interface Step {
      void run() throws Exception;
    }

    /** One registered release. */
    private record Entry(Object key, String what, Step step) {}

    /** Pending steps, newest first. */
    private final Deque<Entry> steps = new ArrayDeque<>();

    void push(String what, Step step) {
      push(null, what, step);
    }

    /** Registers a step that {@link #runNow} can also run early, found by {@code key}. */
    void push(Object key, String what, Step step) {
      steps.push(new Entry(key, what, step));
    }

    /** Runs the step registered with {@code key} now, and forgets it. */
    void runNow(Object key) throws Exception {
      for (Entry e : steps) {
        if (key.equals(e.key())) {
          steps.remove(e);
          e.step().run();
          return;
        }
      }
      throw new IllegalArgumentException("no teardown step for " + key);
    }

    @Override
    public void close() throws Exception {
      boolean interrupted = Thread.interrupted(); // a timeout interrupts us; cleaning up must still work
      Exception first = null;
      try {
        while (!steps.isEmpty()) {
          Entry e = steps.pop();
          try {
            e.step().run();
          } catch (Exception | AssertionError ex) {
            Exception wrapped = new IOException("teardown step failed: " + e.what(), ex);
            if (first == null) {
              first = wrapped;
            } else {
              first.addSuppressed(wrapped);
            }
          }
        }
      } finally {
        if (interrupted) {
          Thread.currentThread().interrupt();
        }
      }
      if (first != null) {
        throw first;
      }
    }
  }
}
