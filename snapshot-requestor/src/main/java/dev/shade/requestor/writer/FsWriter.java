package dev.shade.requestor.writer;

import dev.shade.nativeio.Errno;
import dev.shade.nativeio.ErrnoException;
import dev.shade.nativeio.FsFreeze;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The writer of a mounted filesystem, {@code fs:MOUNTPOINT}: freezes it with {@code FIFREEZE}
 * (the filesystem writes its dirty data and journal out and holds every writer) and thaws it
 * with {@code FITHAW}; for a rollback, unmounts it and mounts it again as it was.
 *
 * <p>Needs root (CAP_SYS_ADMIN) and a filesystem that can freeze (ext4, xfs, btrfs).
 * {@link #prepare} writes the dirty data out ({@code syncfs}) while writers still run, so the
 * freeze (which syncs again, holding them) has little left to write. {@link #postSnapshot}
 * returns no metadata.
 *
 * <p>Thread-safety as {@link Writer} requires: one thread runs the phases; {@link #abort} may
 * come from another thread while {@link #freeze} runs, and then only thaws a freeze that has
 * already succeeded (the ioctl itself cannot be interrupted; the lease thaws after it returns).
 */
final class FsWriter implements Writer {
  private static final Logger LOG = LoggerFactory.getLogger(FsWriter.class);
  /** How long mount and umount may take. */
  private static final Duration MOUNT_TIMEOUT = Duration.ofSeconds(60);

  /** The spec, {@code fs:} and the mount point. */
  private final String spec;
  /** The mount point, absolute and normalized. */
  private final Path mountPoint;
  /** Where mounts are read from ({@code /proc/self/mountinfo} but in tests). */
  private final Path mountInfo;
  /** True from a successful freeze to the thaw that undid it; written by the phase thread. */
  private volatile boolean frozen;
  /**
   * True when our freeze found the filesystem frozen already (EBUSY): someone else's freeze,
   * which our thaw must leave alone.
   */
  private volatile boolean foreignFreeze;
  /** The mount as {@link #stop} found it, for {@link #start}; null before a stop. */
  private MountTable.Mount stopped;

  FsWriter(String spec, Path mountPoint, Path mountInfo) {
    this.spec = spec;
    this.mountPoint = mountPoint.toAbsolutePath().normalize();
    this.mountInfo = mountInfo;
  }

  @Override
  public String spec() {
    return spec;
  }

  @Override
  public boolean isFilesystem() {
    return true;
  }

  /** The mount point this writer freezes. */
  Path mountPoint() {
    return mountPoint;
  }

  /** Facts: {@code mounted}, {@code mountPoint}, {@code fsType}, {@code source}, {@code options}. */
  @Override
  public Map<String, Object> identify() throws IOException {
    MountTable.Mount m = mount();
    Map<String, Object> facts = new LinkedHashMap<>();
    facts.put("mounted", true);
    facts.put("mountPoint", mountPoint.toString());
    facts.put("fsType", m.fsType());
    facts.put("source", m.source());
    facts.put("options", m.remountOptions());
    return facts;
  }

  private MountTable.Mount mount() throws IOException {
    return MountTable.read(mountInfo).at(mountPoint).orElseThrow(() -> new IOException(
        spec + ": " + mountPoint + " is not a mount point (not in " + mountInfo + ")"));
  }

  /** Checks it is still mounted and writes its dirty data out ({@code syncfs}), leaving the freeze less to write. */
  @Override
  public void prepare() throws IOException {
    mount();
    try {
      FsFreeze.sync(mountPoint);
    } catch (ErrnoException e) {
      throw new IOException(spec + ": cannot sync " + mountPoint + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void freeze(Duration limit) throws IOException {
    try {
      FsFreeze.freeze(mountPoint);
      frozen = true;
    } catch (ErrnoException e) {
      if (e.errno() == Errno.EBUSY) {
        foreignFreeze = true;
        throw new IOException(spec + ": " + mountPoint + " is frozen already by someone else (fsfreeze?); "
            + "not taking a snapshot over another freeze", e);
      }
      throw new IOException(spec + ": cannot freeze " + mountPoint + ": " + e.getMessage(), e);
    }
  }

  /**
   * Thaws, unless our freeze found someone else's freeze. A filesystem that is not frozen (the
   * lease thawed it, or the freeze failed) is fine.
   */
  @Override
  public void thaw() throws IOException {
    if (foreignFreeze) {
      return;
    }
    try {
      FsFreeze.thaw(mountPoint);
    } catch (ErrnoException e) {
      if (e.errno() != Errno.EINVAL) { // EINVAL: not frozen
        throw new IOException(spec + ": cannot thaw " + mountPoint + ": " + e.getMessage(), e);
      }
    }
    frozen = false;
  }

  @Override
  public WriterMetadata postSnapshot() {
    return WriterMetadata.none(spec);
  }

  @Override
  public void abort() {
    if (!frozen) {
      return;
    }
    try {
      thaw();
    } catch (IOException | RuntimeException e) {
      LOG.warn("{}: abort could not thaw {}: {}", spec, mountPoint, e.toString());
    }
  }

  /** Unmounts the filesystem, remembering its source, type and options for {@link #start}. */
  @Override
  public void stop() throws IOException {
    MountTable.Mount m = mount();
    ExternalCommand.Result r = ExternalCommand.run(List.of(tool("umount"), mountPoint.toString()), MOUNT_TIMEOUT,
        spec + ": unmount " + mountPoint);
    if (r.exitCode() != 0) {
      throw new IOException(spec + ": cannot unmount " + mountPoint
          + " (when it is busy, `fuser -vm " + mountPoint + "` shows who holds it): " + r);
    }
    stopped = m;
  }

  /** Mounts again what {@link #stop} unmounted: same source, type and options. */
  @Override
  public void start() throws IOException {
    MountTable.Mount m = stopped;
    if (m == null) {
      if (MountTable.read(mountInfo).at(mountPoint).isPresent()) {
        return; // nothing was stopped and it is mounted: as found
      }
      throw new IOException(spec + ": cannot start: " + mountPoint + " was not unmounted by this writer's stop, "
          + "so its source and options are unknown");
    }
    ExternalCommand.require(List.of(tool("mount"), "-t", m.fsType(), "-o", m.remountOptions(), m.source(),
        mountPoint.toString()), MOUNT_TIMEOUT, spec + ": mount " + m.source() + " on " + mountPoint);
    stopped = null;
  }

  private static String tool(String name) {
    return ExternalCommand.find(name).map(Path::toString).orElse(name);
  }

  @Override
  public void close() {
    abort();
  }

  @Override
  public String toString() {
    return spec;
  }
}
