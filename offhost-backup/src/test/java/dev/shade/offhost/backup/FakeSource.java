package dev.shade.offhost.backup;

import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** A snapshot held in memory; {@code earlier} are the snapshots still "on the production host". */
final class FakeSource implements SnapshotSource {
  static final int BLOCK = 4096;
  private final SnapshotIdentity identity;
  private final byte[] data;
  private final Map<Long, byte[]> earlier;
  long bytesRead;
  /** The volume block size the source's snapshots say they have. */
  static final int BLOCK_SIZE = 16 * 1024;

  FakeSource(String name, long id, byte[] data, Map<Long, byte[]> earlier) {
    // a volume of 16 KiB blocks, as the export's description tells it, so the block size has to survive every copy
    this.identity = new SnapshotIdentity("db", "uuid-1", name, id, Instant.parse("2026-12-01T10:00:00Z"), data.length,
        BLOCK_SIZE);
    this.data = data;
    this.earlier = earlier;
  }

  @Override
  public SnapshotIdentity identity() {
    return identity;
  }

  @Override
  public List<Range> allocated() {
    List<Range> out = new ArrayList<>();
    for (int b = 0; b < data.length; b += BLOCK) {
      if (!ImageArchiveWriter.isZero(java.util.Arrays.copyOfRange(data, b, b + BLOCK), BLOCK)) {
        out.add(new Range(b, BLOCK));
      }
    }
    return out;
  }

  @Override
  public Optional<List<Range>> changedSince(long baseSnapshotId) {
    byte[] base = earlier.get(baseSnapshotId);
    if (base == null) {
      return Optional.empty();
    }
    List<Range> out = new ArrayList<>();
    for (int b = 0; b < data.length; b += BLOCK) {
      if (!java.util.Arrays.equals(data, b, b + BLOCK, base, b, b + BLOCK)) {
        out.add(new Range(b, BLOCK));
      }
    }
    return Optional.of(out);
  }

  @Override
  public void read(long offset, ByteBuffer dst) {
    int n = dst.remaining();
    dst.put(data, (int) offset, n);
    bytesRead += n;
  }

  @Override
  public void close() {}
}
