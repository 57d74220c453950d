package dev.shade.offhost.backup;

import dev.shade.offhost.tape.VirtualTapeLibrary;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
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
 * order; every chunk's SHA-256 is checked against the catalog and the archive's manifest, and
 * the manifest's against the catalog. One thread reads the tape; {@code RestoreChunks} checks and
 * writes the chunks on a pool of workers, and {@code WriteBehind} starts the image's writeback
 * as it goes.
 *
 * <p>Not thread-safe: one restore at a time per library.
 */
public final class RestoreService {
  /**
   * What a restore did. {@code chain}: the jobs read, full first; {@code writerMetadata}: the
   * writer metadata in the manifest of the snapshot's own archive (the last of the chain), or null.
   */
  public record Result(SnapshotIdentity snapshot, List<Catalog.JobRecord> chain, Path file, long bytesWritten,
      int chunksWritten, double seconds, com.fasterxml.jackson.databind.JsonNode writerMetadata) {}

  private RestoreService() {}

  /**
   * Restores snapshot {@code snapshot} (name, id or {@code id=N}) of volume {@code volume} (uuid or
   * name) to the new file {@code to} (replaced with {@code force}); on failure the file is deleted.
   */
  public static Result restore(VirtualTapeLibrary library, Catalog catalog, String volume, String snapshot, Path to,
      boolean force, BackupProgress progress) throws IOException {
    return restore(library, catalog, volume, snapshot, to, force, progress, n -> { });
  }

  /**
   * {@link #restore(VirtualTapeLibrary, Catalog, String, String, Path, boolean, BackupProgress)},
   * telling {@code notes} which cartridge each piece needs, in order, as it asks for it.
   */
  public static Result restore(VirtualTapeLibrary library, Catalog catalog, String volume, String snapshot, Path to,
      boolean force, BackupProgress progress, Consumer<String> notes) throws IOException {
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
    if (Files.exists(to) && !force) {
      throw new BackupException("restore target exists (replace it with --force): " + to);
    }
    long written = 0;
    int chunks = 0;
    com.fasterxml.jackson.databind.JsonNode writerMetadata = null;
    boolean ok = false;
    // one pool for the whole chain: no threads started and ended per archive
    ExecutorService workers = ImageArchiveReader.workers(RestoreChunks.THREADS);
    try (FileChannel out = FileChannel.open(to, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING); WriteBehind behind = new WriteBehind(to)) {
      out.truncate(0);
      if (id.size() > 0) {
        out.write(ByteBuffer.allocate(1), id.size() - 1); // the size; zeros stay holes
      }
      RestoreChunks.Output output = (offset, data) -> {
        int length = data.remaining();
        while (data.hasRemaining()) {
          out.write(data, offset + data.position());
        }
        behind.written(length);
      };
      for (int i = 0; i < chain.size(); i++) {
        Catalog.JobRecord job = chain.get(i);
        Catalog.ArchiveRecord a = job.archive();
        String where = "cartridge " + a.cartridge() + ", tape file " + a.fileNumber() + " (the " + job.level()
            + " archive of " + job.snapshot().volume() + "@" + job.snapshot().snapshot() + ", job " + job.id() + ")";
        List<PieceEntry> pieces = catalog.pieces(a);
        RestoreChunks handler = new RestoreChunks(i, winner, entries, output, progress, written, total);
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
      behind.finish();
      out.force(true);
      ok = true;
    } finally {
      workers.shutdownNow(); // idle: a read returns only when none of its chunks is in flight
      if (!ok) {
        Files.deleteIfExists(to);
      }
    }
    return new Result(id, chain, to, written, chunks, (System.nanoTime() - t0) / 1e9, writerMetadata);
  }
}
