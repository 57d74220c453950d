package dev.shade.cli;

import dev.shade.offhost.backup.RestoreSink;
import dev.shade.offhost.backup.SnapshotIdentity;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.provider.VolumeException;
import dev.shade.requestor.agent.AgentMarker;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * A restore into a shade volume: a new one, created in an empty or missing directory with the
 * image's size, or (when the caller allows it) an existing one at least that large, written
 * through its copy-on-write path so that its snapshots keep what they hold.
 *
 * <p>Not thread-safe (see {@link RestoreSink}).
 */
final class VolumeRestoreSink implements RestoreSink {
  /*
   * A new volume's origin is a sparse file of zeros, so zero() has nothing to do there; an
   * existing volume's zero ranges go through Volume.writeZeroes (copy-on-write first, as for any
   * production write). abort() removes a volume this sink created (and the directory when it
   * made it); an existing volume keeps what was written so far, as after a failed import.
   * A volume that another process holds (an agent announces itself with agent.json; the
   * volume's lock is the proof) is refused with the way to reach it instead.
   */

  /** The volume's directory. */
  private final Path dir;
  /** Block size of a new volume as given (--block-size); 0: the backed-up volume's. */
  private final int blockSize;
  /** The open volume, from start to close. */
  private Volume volume;
  /** True when start created the volume: zeros are holes, and abort removes it. */
  private boolean created;
  /** True when start created the directory itself. */
  private boolean createdDir;

  /**
   * A sink for {@code dir}, which {@link #check} let through; a new volume gets {@code blockSize},
   * or with 0 the backed-up volume's block size (the default, 64K, when the backup does not say).
   */
  VolumeRestoreSink(Path dir, int blockSize) {
    this.dir = dir;
    this.blockSize = blockSize;
  }

  /**
   * Refuses early what {@link #start} would refuse without reading the catalog: a directory that
   * holds other files and no volume, an existing volume without {@code force}.
   */
  static void check(Path dir, boolean force) throws IOException, CommandException {
    if (!Files.exists(dir)) {
      return;
    }
    if (!Files.isDirectory(dir)) {
      throw new CommandException("not a directory: " + dir);
    }
    if (Volume.isVolume(dir)) {
      if (!force) {
        throw new CommandException("a volume already exists in " + dir + "; pass --force to restore into it (its "
            + "snapshots are kept: the restore writes through copy-on-write)");
      }
      return;
    }
    if (!ShadeCommand.isEmptyDirectory(dir)) {
      throw new CommandException("directory " + dir + " holds other files and no shade volume; restore to a new or "
          + "empty directory");
    }
  }

  @Override
  public void start(long size, Consumer<String> notes) throws IOException {
    start(size, 0, notes);
  }

  @Override
  public void start(SnapshotIdentity snapshot, Consumer<String> notes) throws IOException {
    start(snapshot.size(), snapshot.blockSize(), notes);
  }

  /** Opens the existing volume, or creates one of {@code size} bytes ({@code backedUpBlockSize}: 0 when not known). */
  private void start(long size, int backedUpBlockSize, Consumer<String> notes) throws IOException {
    if (Files.exists(dir) && Volume.isVolume(dir)) {
      volume = openExisting();
      if (volume.size() < size) {
        throw new VolumeException("volume " + dir + " holds " + volume.size() + " bytes, less than the image's " + size
            + " bytes");
      }
      if (volume.size() > size) {
        notes.accept("volume " + dir + " holds " + volume.size() + " bytes, more than the image's " + size
            + ": the image goes at offset 0 and the last " + (volume.size() - size) + " bytes are left as they are");
      }
      return;
    }
    int block;
    String why;
    if (blockSize > 0) {
      block = blockSize;
      why = "--block-size";
    } else if (VolumeConfig.isBlockSize(backedUpBlockSize)) {
      block = backedUpBlockSize;
      why = "the backed-up volume's";
    } else {
      block = VolumeConfig.DEFAULT_BLOCK_SIZE;
      why = "the default: the backup does not record the volume's";
    }
    createdDir = !Files.exists(dir);
    try {
      volume = Volume.create(dir, new VolumeConfig(size, block, VolumeConfig.defaultDiffMax(size, block), null, null));
    } catch (IOException | RuntimeException e) {
      removeDir(e);
      throw e;
    }
    created = true;
    notes.accept("created volume '" + volume.name() + "' (" + volume.uuid() + ") in " + dir + ": " + Sizes.format(size)
        + " (" + size + " bytes), block size " + Sizes.format(block) + " (" + why + ")");
  }

  private Volume openExisting() throws IOException {
    try {
      return Volume.open(dir);
    } catch (VolumeException e) {
      Optional<AgentMarker.Holder> h = AgentMarker.read(dir);
      if (e.getMessage() != null && e.getMessage().contains("in use") && h.isPresent()) {
        throw new VolumeException("volume " + dir + " is held by the shade agent (pid " + h.get().pid()
            + ", control socket " + h.get().controlSocket() + "); restore into it through the agent's writable "
            + "export of it (--to nbd+unix:///NAME?socket=...), or detach it from the agent first", e);
      }
      throw e;
    }
  }

  @Override
  public void write(ByteBuffer src, long offset) throws IOException {
    volume.write(offset, src.duplicate());
  }

  @Override
  public void zero(long offset, long length) throws IOException {
    if (!created && length > 0) {
      volume.writeZeroes(offset, length);
    }
  }

  @Override
  public void finish() throws IOException {
    volume.flush();
  }

  @Override
  public void abort() {
    try {
      close();
    } catch (IOException ignored) {
      // removed below anyway, or left as a failed import leaves it
    }
    if (created) {
      removeDir(null);
    }
  }

  /** Removes what a failed creation or restore left in the directory (the directory too when this sink made it). */
  private void removeDir(Exception failure) {
    try {
      if (Files.exists(dir)) {
        ShadeCommand.deleteTree(dir, !createdDir);
      }
    } catch (IOException e) {
      if (failure != null) {
        failure.addSuppressed(e);
      }
    }
  }

  @Override
  public void close() throws IOException {
    Volume v = volume;
    volume = null;
    if (v != null) {
      v.close();
    }
  }

  @Override
  public String toString() {
    return "volume " + dir;
  }
}
