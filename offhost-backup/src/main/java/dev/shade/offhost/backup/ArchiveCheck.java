package dev.shade.offhost.backup;

import dev.shade.offhost.tape.CartridgeInfo;
import dev.shade.offhost.tape.TapeDrive;
import dev.shade.offhost.tape.TapeInputStream;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Reads one job's archive back from its cartridge and checks every chunk's SHA-256 against the
 * catalog and the archive's manifest, and the manifest's against the catalog: what must hold
 * before the production host is told that the snapshot is safely on tape.
 *
 * <p>Not thread-safe: one check at a time per library.
 */
public final class ArchiveCheck {
  /** What a check read: chunks and their bytes (zero chunks have no member and are not counted). */
  public record Result(long jobId, String cartridge, int fileNumber, int chunks, long bytes, double seconds) {}

  private ArchiveCheck() {}

  /**
   * Reads back the archive of job {@code jobId}; fails with a {@link BackupException} naming the
   * cartridge, the tape file and the chunk when anything differs or is missing.
   */
  public static Result check(VirtualTapeLibrary library, Catalog catalog, long jobId) throws IOException {
    long t0 = System.nanoTime();
    Catalog.JobRecord job = catalog.job(jobId).orElseThrow(() -> new BackupException("no job " + jobId
        + " in the catalog of " + library));
    Catalog.ArchiveRecord a = job.archive();
    if (a == null || !Catalog.OK.equals(job.outcome())) {
      throw new BackupException("job " + jobId + " (" + job.snapshot() + ") has no complete archive to check");
    }
    String where = "cartridge " + a.cartridge() + ", tape file " + a.fileNumber() + " (the " + job.level()
        + " archive of " + job.snapshot().volume() + "@" + job.snapshot().snapshot() + ", job " + jobId + ")";
    List<ChunkEntry> listed = catalog.chunks(a.id());
    Map<Long, ChunkEntry> expected = new HashMap<>();
    for (ChunkEntry c : listed) {
      if (!c.zero()) {
        expected.put(c.offset(), c);
      }
    }
    Optional<CartridgeInfo> cart = library.find(a.cartridge());
    if (cart.isEmpty()) {
      throw new BackupException("cannot read back " + where + ": the cartridge is not in " + library);
    }
    int[] got = {0};
    long[] bytes = {0};
    ImageArchiveReader.Contents contents;
    try (TapeDrive d = library.openForReading(cart.get().slot())) {
      d.seekFile(a.fileNumber());
      contents = ImageArchiveReader.read(new TapeInputStream(d), job.chunkSize(), new ImageArchiveReader.Handler() {
        @Override
        public boolean wants(long offset) {
          return true;
        }

        @Override
        public void chunk(long offset, byte[] data, int length, String sha256) throws IOException {
          ChunkEntry e = expected.get(offset);
          if (e == null) {
            throw new ImageArchiveReader.ArchiveException(ChunkEntry.memberName(offset), "chunk "
                + ChunkEntry.memberName(offset) + " is not in the catalog's list of the archive", null);
          }
          if (!sha256.equals(e.sha256()) || length != e.length()) {
            throw new ImageArchiveReader.ArchiveException(e.member(), "chunk " + e.member() + " is damaged: its "
                + length + " bytes have SHA-256 " + sha256 + ", the catalog says " + e.length() + " bytes with "
                + e.sha256(), null);
          }
          got[0]++;
          bytes[0] += length;
        }
      });
    } catch (ImageArchiveReader.ArchiveException e) {
      throw new BackupException("reading back " + where + " failed" + (e.member() != null ? " at " + e.member() : "")
          + ": " + e.getMessage(), e);
    } catch (IOException e) {
      throw new BackupException("reading back " + where + " failed: " + e.getMessage(), e);
    }
    if (!contents.manifestSha256().equals(a.manifestSha256())) {
      throw new BackupException("reading back " + where + ": its manifest has SHA-256 " + contents.manifestSha256()
          + ", the catalog says " + a.manifestSha256());
    }
    if (got[0] != expected.size()) {
      throw new BackupException("reading back " + where + ": it holds " + got[0] + " of the " + expected.size()
          + " chunks the catalog lists");
    }
    return new Result(jobId, a.cartridge(), a.fileNumber(), got[0], bytes[0], (System.nanoTime() - t0) / 1e9);
  }
}
