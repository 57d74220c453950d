package dev.shade.offhost.backup;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.offhost.tape.CartridgeInfo;
import dev.shade.offhost.tape.EarlyWarningException;
import dev.shade.offhost.tape.EndOfMediumException;
import dev.shade.offhost.tape.TapeDrive;
import dev.shade.offhost.tape.TapeFileInfo;
import dev.shade.offhost.tape.TapeLabel;
import dev.shade.offhost.tape.TapeOutputStream;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import java.io.IOException;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.function.Consumer;

/**
 * Runs one image backup: decides full or incremental, picks (or labels) a cartridge of the pool,
 * appends one archive as a new tape file in drive 0 and records the job in the catalog.
 *
 * <p>Not thread-safe: one backup at a time per library (the library allows one process anyway).
 */
public final class BackupService {
  /** Default bytes per chunk. */
  public static final int DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;
  /** The pool when none is given. */
  public static final String DEFAULT_POOL = "default";

  /** What to back up how: {@code level} is {@code full}, {@code incremental} or {@code auto}. */
  public record Request(String pool, String level, int chunkSize, JsonNode writerMetadata) {
    public Request {
      TapeLabel.requireName("pool", pool);
      if (!List.of("full", "incremental", "auto").contains(level)) {
        throw new IllegalArgumentException("level must be full, incremental or auto: " + level);
      }
      if (chunkSize < 4096 || chunkSize > 64 * 1024 * 1024 || Integer.bitCount(chunkSize) != 1) {
        throw new IllegalArgumentException("chunk size must be a power of two from 4 KiB to 64 MiB: " + chunkSize);
      }
    }
  }

  /**
   * What a backup did.
   *
   * @param fallback why a full was written where an incremental was asked for (or could have
   *     been, with {@code auto}); null when there was nothing to say
   * @param labelled the label given to a blank cartridge for this backup, or null
   */
  public record Result(long jobId, SnapshotIdentity snapshot, String level, String requestedLevel, String fallback,
      long baseSnapshotId, String baseSnapshot, String cartridge, String labelled, int fileNumber, long archiveBytes,
      long dataBytes, int chunks, int zeroChunks, long bytesRead, double seconds) {}

  private BackupService() {}

  /**
   * Backs up {@code source} to {@code library}, recording it in {@code catalog}; {@code notes}
   * hears decisions worth telling a user (a fallback to full, a cartridge labelled).
   */
  public static Result run(VirtualTapeLibrary library, Catalog catalog, SnapshotSource source, Request request,
      BackupProgress progress, Consumer<String> notes) throws IOException {
    long t0 = System.nanoTime();
    Instant started = Instant.ofEpochMilli(System.currentTimeMillis());
    SnapshotIdentity id = source.identity();
    String level = ImageManifest.FULL;
    String fallback = null;
    Catalog.JobRecord base = null;
    List<Range> ranges = null;
    int chunkSize = request.chunkSize();
    if (!request.level().equals("full")) {
      Optional<Catalog.JobRecord> last = catalog.lastBackup(id.volumeUuid());
      if (last.isEmpty()) {
        fallback = "no earlier backup of volume " + id.volume() + " (" + id.volumeUuid() + ") in the catalog";
      } else if (last.get().snapshot().size() != id.size()) {
        fallback = "the volume's size changed since the last backup (snapshot " + last.get().snapshot().snapshot()
            + ", id " + last.get().snapshot().snapshotId() + ")";
      } else {
        Optional<List<Range>> changed = source.changedSince(last.get().snapshot().snapshotId());
        if (changed.isEmpty()) {
          fallback = "the base snapshot " + last.get().snapshot().snapshot() + " (id " + last.get().snapshot().snapshotId()
              + ") of the last backup no longer exists on the production host";
        } else {
          base = last.get();
          ranges = changed.get();
          level = ImageManifest.INCREMENTAL;
          chunkSize = base.chunkSize();
        }
      }
      if (fallback != null && request.level().equals("auto") && last.isEmpty()) {
        fallback = null; // a first backup is a full without anything to explain
      }
      if (fallback != null) {
        notes.accept("writing a full backup instead of an incremental: " + fallback);
      }
    }
    if (ranges == null) {
      ranges = source.allocated();
    }
    List<Long> offsets = ImageArchiveWriter.chunksOf(ranges, chunkSize, id.size());

    int slot = chooseCartridge(library, request.pool());
    String labelled = null;
    CartridgeInfo info = library.cartridgeInfo(slot);
    if (info.blank()) {
      TapeLabel l = library.writeLabel(slot, newLabel(library, slot), request.pool(), false);
      labelled = l.label();
      notes.accept("labelled the blank cartridge of slot " + slot + " '" + l.label() + "' into pool " + request.pool());
      info = library.cartridgeInfo(slot);
    }
    String cartridge = info.label();
    OptionalInt inDrive = library.loadedSlot(0);
    if (inDrive.isPresent() && inDrive.getAsInt() != slot) {
      library.unload(0);
    }
    int elsewhere = library.driveOf(slot);
    if (elsewhere > 0) {
      library.unload(elsewhere);
    }
    TapeDrive drive = library.load(0, slot);
    drive.seekEndOfData();
    List<TapeFileInfo> files = library.cartridgeInfo(slot).files();
    if (!files.isEmpty() && !files.get(files.size() - 1).closed()) {
      drive.writeFilemarks(1); // an archive cut short by a crash: end its file
      files = library.cartridgeInfo(slot).files();
    }
    int fileNumber = files.size();

    ImageManifest header = new ImageManifest(id, level, base == null ? -1 : base.snapshot().snapshotId(),
        base == null ? null : base.snapshot().snapshot(), chunkSize, drive.blockSize(), started, null,
        request.writerMetadata(), List.of());
    long jobId = catalog.startJob(id, level, base == null ? -1 : base.id(), base == null ? -1 : base.snapshot().snapshotId(),
        request.pool(), chunkSize, started);
    ImageArchiveWriter.Result written;
    try {
      TapeOutputStream out = new TapeOutputStream(drive);
      try {
        written = ImageArchiveWriter.write(out, drive.blockSize(), header, offsets, source, progress);
        out.close();
      } catch (EarlyWarningException | EndOfMediumException e) {
        try {
          drive.writeFilemarks(1);
        } catch (IOException ignored) {
          e.addSuppressed(ignored);
        }
        throw new BackupException("archive does not fit on cartridge " + cartridge + " (tape file " + fileNumber
            + " reached the end of the medium after " + out.bytes() + " bytes); spanning cartridges is not built yet",
            e);
      }
    } catch (IOException | RuntimeException e) {
      catalog.failJob(jobId, String.valueOf(e.getMessage()), Instant.ofEpochMilli(System.currentTimeMillis()));
      throw e;
    }
    int zero = 0;
    for (ChunkEntry c : written.manifest().chunks()) {
      zero += c.zero() ? 1 : 0;
    }
    catalog.completeJob(jobId, cartridge, fileNumber, written.archiveBytes(), written.manifestSha256(),
        written.manifest().chunks(), written.dataBytes(), fallback, written.manifest().ended());
    long bytesRead = 0;
    for (long o : offsets) {
      bytesRead += Math.min(chunkSize, id.size() - o);
    }
    return new Result(jobId, id, level, request.level(), fallback, header.baseSnapshotId(), header.baseSnapshot(),
        cartridge, labelled, fileNumber, written.archiveBytes(), written.dataBytes(),
        written.manifest().chunks().size() - zero, zero, bytesRead, (System.nanoTime() - t0) / 1e9);
  }

  /**
   * The cartridge the next archive of {@code pool} goes to: the pool's newest labelled cartridge
   * short of its early warning, else the first blank one. Fails when there is neither.
   */
  static int chooseCartridge(VirtualTapeLibrary library, String pool) throws IOException {
    CartridgeInfo best = null;
    int blank = -1;
    for (CartridgeInfo c : library.list()) {
      if (c.blank()) {
        if (blank < 0) {
          blank = c.slot();
        }
      } else if (c.pool().equals(pool) && !c.earlyWarning() && (best == null || c.sequence() > best.sequence())) {
        best = c;
      }
    }
    if (best != null) {
      return best.slot();
    }
    if (blank >= 0) {
      return blank;
    }
    throw new BackupException("no cartridge for pool " + pool + " in " + library
        + ": every cartridge of the pool is full and none is blank");
  }

  /** {@code SHD} and the slot in three digits (as 'shade tape label --all-blank --label SHD'), or a free variant. */
  static String newLabel(VirtualTapeLibrary library, int slot) throws IOException {
    String label = String.format("SHD%03d", slot);
    for (int n = 2; library.find(label).isPresent(); n++) {
      label = String.format("SHD%03d-%d", slot, n);
    }
    return label;
  }
}
