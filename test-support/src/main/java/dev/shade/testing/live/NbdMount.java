package dev.shade.testing.live;

import dev.shade.testing.Tools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * An NBD export (a shade volume the agent serves) with an ext4 filesystem on it, mounted: the
 * chain {@code nbdfuse} (the export as a file) → loop device → mount, as a test puts a real
 * filesystem and a real database on a shade volume.
 *
 * <p>The pieces can be taken down and brought back one at a time, in order: {@link #unmount}
 * and {@link #mount}; {@link #detachLoop} and {@link #attachLoop}; {@link #disconnect} (nbdfuse
 * stops, the NBD connection closes) and {@link #connect}; a rollback test takes the application
 * off the volume, disconnects, reverts the volume, and brings the chain back. {@link #close}
 * takes down whatever is still up, and a JVM shutdown hook does the same for a test that never
 * got to close it.
 *
 * <p>Not thread-safe: one test drives it (the shutdown hook runs when the test no longer does).
 */
public final class NbdMount implements AutoCloseable {
  /*
   * nbdfuse MOUNTPOINT/FILENAME URI mounts a FUSE filesystem on MOUNTPOINT holding the single
   * file FILENAME, whose reads, writes and fsync become NBD reads, writes and flushes; it runs
   * in the foreground until SIGTERM, when it unmounts itself (as root it needs no fusermount3).
   * The loop device sits on that file with buffered I/O (--direct-io=off: FUSE files refuse
   * O_DIRECT here); a flush of the loop device (the filesystem's commit, a database's fsync)
   * becomes an fsync of the file, which nbdfuse turns into an NBD FLUSH, so what a database
   * acknowledged is on the volume when the agent acknowledges the flush.
   *
   * Order matters when taking the chain down: the filesystem first, then the loop device (it
   * holds the FUSE file open, so nbdfuse could not unmount), then nbdfuse.
   */

  /** How long nbdfuse may take to connect and show its file. */
  private static final long CONNECT_WAIT_MILLIS = 30_000;
  /** The name of the file nbdfuse shows. */
  private static final String FILE = "disk";

  /** The export's NBD URI. */
  private final String uri;
  /** The directory nbdfuse mounts on. */
  private final Path fuseDir;
  /** Where nbdfuse's output goes. */
  private final Path log;
  /** The loop device and the ext4 mount on nbdfuse's file. */
  private final LoopMount loop;
  /** nbdfuse while connected, else null. */
  private Background nbdfuse;

  private NbdMount(String uri, Path fuseDir, Path log, LoopMount loop) {
    this.uri = uri;
    this.fuseDir = fuseDir;
    this.log = log;
    this.loop = loop;
  }

  /**
   * Skips the calling test (fails it under {@code CI=true}) unless this process is root and has
   * nbdfuse, a usable {@code /dev/fuse}, losetup, mkfs.ext4, e2fsck, mount and a free loop device.
   */
  public static void requireTools() throws IOException, InterruptedException {
    Tools.require("nbdfuse", "libnbd-bin");
    Tools.requireFuse();
    LoopMount.requireTools();
  }

  /**
   * Connects to the export {@code uri} ({@code nbd+unix:///NAME?socket=PATH}, as the agent
   * serves a volume NAME on its NBD Unix socket) with nbdfuse on {@code workDir/fuse} (the file
   * {@code workDir/fuse/disk}, nbdfuse's output in {@code workDir/nbdfuse.log}), attaches a loop
   * device to it, makes an ext4 filesystem when {@code format}, and mounts it on
   * {@code mountPoint}. On failure, undoes what it did.
   */
  public static NbdMount open(String uri, Path workDir, Path mountPoint, boolean format)
      throws IOException, InterruptedException {
    return open(uri, workDir, mountPoint, format, List.of(), "");
  }

  /**
   * The same, making the filesystem with the extra {@code mkfs.ext4} options {@code mkfsOptions}
   * (when {@code format}) and mounting it with the extra {@code mount -o} {@code mountOptions} (""
   * for none): e.g. {@code -O ^has_journal} and {@code errors=continue} for a test that kills the
   * agent under a mounted filesystem and checks that it still takes writes into the page cache
   * (a journaled ext4 aborts its journal and turns read-only at the first failed write of its
   * journal or superblock).
   */
  public static NbdMount open(String uri, Path workDir, Path mountPoint, boolean format, List<String> mkfsOptions,
      String mountOptions) throws IOException, InterruptedException {
    Path fuseDir = workDir.toAbsolutePath().resolve("fuse");
    Files.createDirectories(fuseDir);
    NbdMount m = new NbdMount(uri, fuseDir, workDir.toAbsolutePath().resolve("nbdfuse.log"),
        LoopMount.unmounted(fuseDir.resolve(FILE), mountPoint, mountOptions));
    Teardown.register(m);
    try {
      m.connect();
      m.loop.attach();
      if (format) {
        LoopMount.mkfs(m.loop.device(), mkfsOptions);
      }
      m.loop.mount();
      return m;
    } catch (IOException | InterruptedException | RuntimeException | Error e) {
      try {
        m.close();
      } catch (Exception suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }
  }

  /** Starts nbdfuse on the export and waits for its file; nothing when connected. */
  public void connect() throws IOException, InterruptedException {
    if (nbdfuse != null) {
      return;
    }
    Background b = Background.start(List.of("nbdfuse", fuseDir.resolve(FILE).toString(), uri), log);
    nbdfuse = b;
    long deadline = System.nanoTime() + CONNECT_WAIT_MILLIS * 1_000_000;
    while (!(Mounts.mounted(fuseDir) && Files.exists(fuseDir.resolve(FILE)))) {
      if (!b.alive() || System.nanoTime() > deadline) {
        disconnect();
        throw new IOException("nbdfuse did not show " + uri + " as " + fuseDir.resolve(FILE) + " within "
            + CONNECT_WAIT_MILLIS / 1000 + " s: " + b + ": " + b.output().strip());
      }
      Thread.sleep(20);
    }
  }

  /** Attaches the loop device (connecting first if needed). */
  public void attachLoop() throws IOException, InterruptedException {
    connect();
    loop.attach();
  }

  /** Mounts the filesystem (connecting and attaching first if needed). */
  public void mount() throws IOException, InterruptedException {
    attachLoop();
    loop.mount();
  }

  /** Unmounts the filesystem; false when it had to be detached lazily (see {@link LoopMount#unmount}). */
  public boolean unmount() throws IOException, InterruptedException {
    return loop.unmount();
  }

  /** Detaches the loop device (unmounting first if needed). */
  public void detachLoop() throws IOException, InterruptedException {
    loop.detach();
  }

  /**
   * Stops nbdfuse (detaching the loop device first if needed), so the NBD connection to the agent
   * is closed; its FUSE mount is gone afterwards (unmounted lazily if nbdfuse left it behind).
   */
  public void disconnect() throws IOException, InterruptedException {
    loop.detach();
    Background b = nbdfuse;
    if (b == null) {
      return;
    }
    nbdfuse = null;
    b.stop(10_000);
    Mounts.unmount(fuseDir, "nbdfuse's FUSE mount of " + uri);
  }

  /** Where the filesystem is mounted. */
  public Path mountPoint() {
    return loop.mountPoint();
  }

  /** The file nbdfuse shows the export as. */
  public Path file() {
    return fuseDir.resolve(FILE);
  }

  /** The loop device while attached, such as {@code /dev/loop3}; null when detached. */
  public String device() {
    return loop.device();
  }

  /** The export's NBD URI. */
  public String uri() {
    return uri;
  }

  /** True while the filesystem is mounted. */
  public boolean mounted() {
    return loop.mounted();
  }

  /** True while nbdfuse runs. */
  public boolean connected() {
    return nbdfuse != null && nbdfuse.alive();
  }

  /** Takes down whatever is still up: the mount, the loop device, nbdfuse. */
  @Override
  public void close() throws IOException, InterruptedException {
    try {
      disconnect();
    } finally {
      Teardown.done(loop);
      Teardown.done(this);
    }
  }

  @Override
  public String toString() {
    return uri + " through nbdfuse " + (nbdfuse == null ? "(disconnected)" : "pid " + nbdfuse.pid()) + ", " + loop;
  }
}
