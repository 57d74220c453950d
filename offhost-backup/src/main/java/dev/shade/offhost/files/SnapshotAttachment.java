package dev.shade.offhost.files;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A snapshot's read-only NBD export attached on the backup server, its filesystem mounted
 * read-only: {@code nbdfuse -r} (the export as one file), a read-only loop device on that file,
 * and {@code mount -o ro,noload} (ext2/3/4; {@code ro,norecovery} for xfs). {@link #close}
 * takes the chain down in order, also after a failure halfway up.
 *
 * <p>One backup attaches, reads and closes it; {@link #close} is synchronized because a JVM
 * shutdown hook may call it too (the chain comes down on Ctrl-C or SIGTERM; after a SIGKILL the
 * operator unmounts the work directory's {@code root}, detaches the loop device and stops
 * nbdfuse). Needs root (loop devices, mount).
 */
public final class SnapshotAttachment implements AutoCloseable {
  /*
   * noload and norecovery keep the mount from replaying the journal: the snapshot is read-only
   * (the export refuses writes, the loop device is read-only), so the filesystem is read as the
   * snapshot holds it; a snapshot taken with the filesystem writer (FIFREEZE) has a clean
   * journal, a crash-consistent one may show the state before its last transactions.
   *
   * Taking down: umount (retried while something still holds it, then lazily), losetup -d of
   * this one device (never -D), then SIGTERM to nbdfuse, which unmounts its FUSE mount itself
   * as root; fusermount3 -u (or umount -l) if it left the mount behind.
   */

  /** How long nbdfuse may take to connect and show its file. */
  private static final long CONNECT_MILLIS = 30_000;
  /** The file nbdfuse shows. */
  private static final String FILE = "snapshot";

  /** The export, for messages. */
  private final String uri;
  /** Where nbdfuse mounts. */
  private final Path fuseDir;
  /** Where the filesystem is mounted. */
  private final Path mountPoint;
  /** nbdfuse's output. */
  private final Path log;
  /** nbdfuse, or null. */
  private Process nbdfuse;
  /** The loop device, or null. */
  private String device;
  /** The filesystem type, once known. */
  private String type;
  /** True while mounted. */
  private boolean mounted;
  /** Takes the chain down when the JVM exits without {@link #close} (Ctrl-C, SIGTERM; not SIGKILL). */
  private final Thread hook = new Thread(this::closeQuietly, "shade-snapshot-attachment-teardown");

  private SnapshotAttachment(String uri, Path workDir) {
    this.uri = uri;
    this.fuseDir = workDir.resolve("nbd");
    this.mountPoint = workDir.resolve("root");
    this.log = workDir.resolve("nbdfuse.log");
  }

  /**
   * Attaches the export {@code uri} (as libnbd takes it: {@code nbd://}, {@code nbds://...?tls-certificates=DIR},
   * {@code nbd+unix:///NAME?socket=PATH}) under {@code workDir} (an empty directory) and mounts
   * its filesystem read-only on {@code workDir/root}.
   */
  public static SnapshotAttachment attach(String uri, Path workDir) throws IOException {
    SnapshotAttachment a = new SnapshotAttachment(uri, workDir.toAbsolutePath());
    Runtime.getRuntime().addShutdownHook(a.hook);
    try {
      a.up();
      return a;
    } catch (IOException | RuntimeException | Error e) {
      try {
        a.close();
      } catch (IOException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }
  }

  private void up() throws IOException {
    Files.createDirectories(fuseDir);
    Files.createDirectories(mountPoint);
    ProcessBuilder pb = new ProcessBuilder("nbdfuse", "-r", fuseDir.resolve(FILE).toString(), uri)
        .redirectErrorStream(true).redirectOutput(log.toFile());
    try {
      nbdfuse = pb.start();
    } catch (IOException e) {
      throw new IOException("cannot start nbdfuse to attach " + uri + ": " + e.getMessage()
          + " (install nbdfuse: Debian's libnbd-bin or nbdfuse package)", e);
    }
    long deadline = System.nanoTime() + CONNECT_MILLIS * 1_000_000;
    while (!(Files.exists(fuseDir.resolve(FILE)) && fuseMounted())) {
      if (!nbdfuse.isAlive() || System.nanoTime() > deadline) {
        throw new IOException("nbdfuse did not attach " + uri + " as " + fuseDir.resolve(FILE) + " within "
            + CONNECT_MILLIS / 1000 + " s" + (nbdfuse.isAlive() ? "" : " (it exited with " + nbdfuse.exitValue() + ")")
            + ": " + readLog() + " (is /dev/fuse there, and are we root?)");
      }
      sleep(20);
    }
    String out = run(List.of("losetup", "--find", "--show", "--read-only", "--direct-io=off",
        fuseDir.resolve(FILE).toString()), "attach a read-only loop device to " + fuseDir.resolve(FILE)
        + " (root is needed, and a free loop device)");
    device = out.strip();
    // blkid exits with 2 when it finds nothing it knows
    type = run(List.of("blkid", "-p", "-o", "value", "-s", "TYPE", device), "find the filesystem on " + uri
        + " (" + device + ")", 2).strip();
    if (type.isEmpty()) {
      throw new IOException("no filesystem found on " + uri + " (" + device + "): blkid knows no signature on it");
    }
    String options = switch (type) {
      case "ext3", "ext4" -> "ro,noload";
      case "xfs" -> "ro,norecovery";
      default -> "ro";
    };
    run(List.of("mount", "-t", type, "-o", options, device, mountPoint.toString()), "mount the " + type
        + " filesystem of " + uri + " (" + device + ") read-only on " + mountPoint);
    mounted = true;
  }

  /** Where the snapshot's filesystem is mounted. */
  public Path root() {
    return mountPoint;
  }

  /** The filesystem type ({@code ext4}, {@code xfs}, ...). */
  public String filesystem() {
    return type;
  }

  /** Unmounts, detaches the loop device and stops nbdfuse: whatever of that is up. */
  @Override
  public synchronized void close() throws IOException {
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException | IllegalArgumentException e) {
      // the JVM is exiting (this is the hook), or the hook is gone already
    }
    IOException first = null;
    if (mounted) {
      try {
        unmount(mountPoint);
        mounted = false;
      } catch (IOException e) {
        first = e;
      }
    }
    if (device != null && !mounted) {
      try {
        run(List.of("losetup", "--detach", device), "detach loop device " + device + " of " + uri);
        device = null;
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    if (nbdfuse != null) {
      nbdfuse.destroy(); // SIGTERM: nbdfuse unmounts its FUSE mount and exits
      try {
        if (!nbdfuse.waitFor(10, TimeUnit.SECONDS)) {
          nbdfuse.destroyForcibly();
          nbdfuse.waitFor(10, TimeUnit.SECONDS);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      nbdfuse = null;
      if (fuseMounted()) {
        try {
          run(List.of("umount", "--lazy", fuseDir.toString()), "unmount nbdfuse's " + fuseDir);
        } catch (IOException e) {
          first = first == null ? e : first;
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }

  private void closeQuietly() {
    try {
      close();
    } catch (IOException e) {
      System.err.println("shade: could not take down " + this + ": " + e.getMessage());
    }
  }

  private void unmount(Path p) throws IOException {
    IOException last = null;
    for (int i = 0; i < 50; i++) {
      try {
        run(List.of("umount", p.toString()), "unmount " + p + " (the snapshot " + uri + ")");
        return;
      } catch (IOException e) {
        last = e; // busy: something still has a file open there
        sleep(100);
      }
    }
    run(List.of("umount", "--lazy", p.toString()), "unmount " + p + " lazily after: " + last.getMessage());
  }

  private boolean fuseMounted() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
        String[] f = line.split(" ");
        if (f.length > 4 && f[4].equals(fuseDir.toString())) {
          return true;
        }
      }
    } catch (IOException e) {
      return false;
    }
    return false;
  }

  private String readLog() {
    try {
      return Files.readString(log).strip();
    } catch (IOException e) {
      return "(no output)";
    }
  }

  private static void sleep(long ms) throws IOException {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException("interrupted");
    }
  }

  private static String run(List<String> cmd, String what) throws IOException {
    return run(cmd, what, 0);
  }

  /** Runs {@code cmd}; its output, when it exits with 0 or {@code alsoOk}. */
  private static String run(List<String> cmd, String what, int alsoOk) throws IOException {
    Process p;
    try {
      p = new ProcessBuilder(new ArrayList<>(cmd)).redirectErrorStream(true).start();
    } catch (IOException e) {
      throw new IOException("cannot " + what + ": " + cmd.get(0) + " is missing: " + e.getMessage(), e);
    }
    try (InputStream o = p.getInputStream()) {
      p.getOutputStream().close();
      String out = new String(o.readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(120, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException("cannot " + what + ": " + cmd.get(0) + " did not finish in 120 s");
      }
      if (p.exitValue() != 0 && p.exitValue() != alsoOk) {
        throw new IOException("cannot " + what + ": " + String.join(" ", cmd) + " exited with " + p.exitValue() + ": "
            + out.strip());
      }
      return p.exitValue() == 0 ? out : "";
    } catch (InterruptedException e) {
      p.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException("interrupted: " + what);
    }
  }

  @Override
  public String toString() {
    return uri + " attached through nbdfuse on " + fuseDir + (device == null ? "" : ", " + device)
        + (mounted ? ", " + type + " mounted read-only on " + mountPoint : "");
  }
}
