package dev.shade.offhost.backup;

import dev.shade.offhost.tape.TapeLibrary;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.function.Consumer;

/**
 * Restores a snapshot's image from its backup chain (the full and the incrementals up to it):
 * each chunk is taken from the newest archive that has it and written once; only the tape files
 * of the chain are read, each archive's pieces in order, asking for their cartridges in that
 * order; every chunk's checksum (CRC-32C, or SHA-256 in older archives) is checked against the catalog and the archive's manifest, and
 * the manifest's against the catalog. One thread reads the tape; {@code RestoreChunks} checks the
 * chunks on a pool of workers, which hand them to the {@link RestoreSink} one at a time (a file
 * sink starts its writeback as it goes, {@code WriteBehind}).
 *
 * <p>Not thread-safe: one restore at a time per library.
 */
public final class RestoreService {
  /**
   * What a restore did. {@code chain}: the jobs read, full first; {@code writerMetadata}: the
   * writer metadata in the manifest of the snapshot's own archive (the last of the chain), or null;
   * {@code file}: the file written, null when the target was not a file ({@link RestoreSink#file()}).
   */
  public record Result(SnapshotIdentity snapshot, List<Catalog.JobRecord> chain, Path file, long bytesWritten,
      int chunksWritten, double seconds, com.fasterxml.jackson.databind.JsonNode writerMetadata) {}

  private RestoreService() {}

  /**
   * Restores snapshot {@code snapshot} (name, id or {@code id=N}) of volume {@code volume} (uuid or
   * name) to the new file {@code to} (replaced with {@code force}); on failure the file is deleted.
   */
  public static Result restore(TapeLibrary library, Catalog catalog, String volume, String snapshot, Path to,
      boolean force, BackupProgress progress) throws IOException {
    return restore(library, catalog, volume, snapshot, to, force, progress, n -> { });
  }

  /**
   * {@link #restore(TapeLibrary, Catalog, String, String, Path, boolean, BackupProgress)},
   * telling {@code notes} which cartridge each piece needs, in order, as it asks for it.
   */
  public static Result restore(TapeLibrary library, Catalog catalog, String volume, String snapshot, Path to,
      boolean force, BackupProgress progress, Consumer<String> notes) throws IOException {
    return restore(library, catalog, volume, snapshot, RestoreSink.file(to, force), progress, notes);
  }

  /**
   * Restores snapshot {@code snapshot} (name, id or {@code id=N}) of volume {@code volume} (uuid or
   * name) into {@code sink}: started with the image's size, every chunk of the image written or
   * zeroed, finished when all checked out, aborted on any failure, and closed.
   */
  public static Result restore(TapeLibrary library, Catalog catalog, String volume, String snapshot,
      RestoreSink sink, BackupProgress progress, Consumer<String> notes) throws IOException {
    try (sink) {
      return restoreInto(library, catalog, volume, snapshot, sink, progress, notes);
    }
  }

  private static Result restoreInto(TapeLibrary library, Catalog catalog, String volume, String snapshot,
      RestoreSink out, BackupProgress progress, Consumer<String> notes) throws IOException {
    long t0 = System.nanoTime();
    Catalog.JobRecord target = catalog.find(volume, snapshot).orElseThrow(() -> new BackupException(
        "no backup of snapshot " + snapshot + " of volume " + volume + " in the catalog of " + library));
    List<Catalog.JobRecord> chain = new ArrayList<>();
    for (Catalog.JobRecord j = target; ; ) {
      chain.add(j);
      if (!ImageManifest.INCREMENTAL.equals(j.level())) {
        break;
      }
      long baseId = j.baseJobId();
      Optional<Catalog.JobRecord> b = catalog.job(baseId);
      if (b.isEmpty() || !Catalog.OK.equals(b.get().outcome()) || b.get().archive() == null) {
        throw new BackupException("the incremental backup " + j.id() + " of " + j.snapshot() + " needs job " + baseId
            + ", which the catalog does not have as a successful backup");
      }
      j = b.get();
    }
    Collections.reverse(chain);
    // newest piece wins: archive index of each chunk offset
    Map<Long, Integer> winner = new HashMap<>();
    Map<Long, ChunkEntry> entries = new HashMap<>();
    int[] wanted = new int[chain.size()];
    long total = 0;
    for (int i = chain.size() - 1; i >= 0; i--) {
      for (ChunkEntry c : catalog.chunks(chain.get(i).archive().id())) {
        if (winner.putIfAbsent(c.offset(), i) == null) {
          entries.put(c.offset(), c);
          if (!c.zero()) {
            wanted[i]++;
            total += c.length();
          }
        }
      }
    }
    SnapshotIdentity id = target.snapshot();
    int chunkSize = target.chunkSize();
    long written = 0;
    int chunks = 0;
    com.fasterxml.jackson.databind.JsonNode writerMetadata = null;
    boolean ok = false;
    // one pool for the whole chain: no threads started and ended per archive
    ExecutorService workers = ImageArchiveReader.workers(RestoreChunks.THREADS);
    try {
      out.start(id, notes);
      zeroRanges(out, id.size(), entries);
      // the chunks are checked on several threads; a sink takes one write at a time
      RestoreChunks.Output output = (offset, data) -> {
        synchronized (out) {
          out.write(data, offset);
        }
      };
      for (int i = 0; i < chain.size(); i++) {
        Catalog.JobRecord job = chain.get(i);
        Catalog.ArchiveRecord a = job.archive();
        String where = "cartridge " + a.cartridge() + ", tape file " + a.fileNumber() + " (the " + job.level()
            + " archive of " + job.snapshot().volume() + "@" + job.snapshot().snapshot() + ", job " + job.id() + ")";
        List<PieceEntry> pieces = catalog.pieces(a);
        RestoreChunks handler = new RestoreChunks(i, winner, entries, output, progress, written, total,
            a.chunkChecksum());
        ImageArchiveReader.Contents contents;
        PieceReader reader = new PieceReader(library, job, pieces, notes);
        try (reader) {
          contents = ImageArchiveReader.read(pieces.size(), reader, chunkSize, handler, workers);
          reader.finish();
        } catch (ImageArchiveReader.ArchiveException e) {
          throw new BackupException("restore of " + id.volume() + "@" + id.snapshot() + " failed: " + reader.where()
              + (e.member() != null ? ", chunk " + e.member() : "") + ": " + e.getMessage() + reader.truncation(), e);
        } catch (BackupException e) {
          throw new BackupException("restore of " + id.volume() + "@" + id.snapshot() + " failed: " + e.getMessage(), e);
        } catch (IOException e) {
          throw new BackupException("restore of " + id.volume() + "@" + id.snapshot() + " failed: " + reader.where()
              + ": " + e.getMessage() + reader.truncation(), e);
        }
        if (!contents.manifestSha256().equals(a.manifestSha256())) {
          throw new BackupException("restore of " + id.volume() + "@" + id.snapshot() + " failed: " + where
              + ": its manifest has SHA-256 " + contents.manifestSha256() + ", the catalog says " + a.manifestSha256());
        }
        if (handler.chunks() != wanted[i]) {
          throw new BackupException("restore of " + id.volume() + "@" + id.snapshot() + " failed: " + where + " holds "
              + handler.chunks() + " of the " + wanted[i] + " chunks the catalog lists");
        }
        written = handler.bytes();
        chunks += handler.chunks();
        writerMetadata = contents.manifest().writerMetadata();
      }
      out.finish();
      ok = true;
    } catch (BackupException e) {
      throw e;
    } catch (IOException e) {
      // a FileSystemException's message is only its path: say what happened to it too
      String why = e instanceof java.nio.file.FileSystemException ? e.getClass().getSimpleName() + ": " + e.getMessage()
          : e.getMessage();
      throw new BackupException("restore of " + id.volume() + "@" + id.snapshot() + " to " + out + " failed: " + why,
          e);
    } finally {
      workers.shutdownNow(); // idle: a read returns only when none of its chunks is in flight
      if (!ok) {
        out.abort();
      }
    }
    return new Result(id, chain, out.file(), written, chunks, (System.nanoTime() - t0) / 1e9, writerMetadata);
  }

  /**
   * Zeros every range of the image that no winning chunk holds data for: zero chunks of the
   * incrementals, and what the full left out as zeros. The target may hold anything there.
   */
  private static void zeroRanges(RestoreSink out, long size, Map<Long, ChunkEntry> winners) throws IOException {
    long[] data = winners.values().stream().filter(c -> !c.zero()).mapToLong(ChunkEntry::offset).sorted().toArray();
    long at = 0;
    for (long offset : data) {
      if (offset > at) {
        out.zero(at, offset - at);
      }
      at = Math.max(at, offset + winners.get(offset).length());
    }
    if (at < size) {
      out.zero(at, size - at);
    }
  }
}
