package dev.shade.provider;

import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * One snapshot's state inside a volume: identity plus its exception table.
 *
 * <p>Thread-safe: the table is guarded by this object's monitor; identity fields are final.
 */
final class Snapshot {
  final long id;
  final String name;
  final long createdMillis;
  /** Set id shared by the members of one snapshot set, or null. */
  final String setId;
  /**
   * Uuids of every volume of this snapshot's set, in commit order; empty for a single snapshot
   * and for a set taken before sets recorded their members (such a set is never reconciled).
   */
  final List<String> members;
  /**
   * Whether every member of the set is known to hold its snapshot: journaled once the set's
   * commit had written all members' records (or reconciliation found them all). Always true
   * without members. Written under the volume's exclusive hold, read without locks.
   */
  private volatile boolean setComplete;
  /**
   * The snapshot's attributes (checked, unmodifiable, in their given order). Replaced, once its
   * record is durable, under the volume's exclusive hold (or by the opening thread); read
   * without locks.
   */
  private volatile Map<String, String> attributes;
  /**
   * Blocks whose old contents this snapshot holds: block → {@link #pack}(slot, crc). Guarded by
   * this.
   */
  private final BlockTable table;

  Snapshot(long id, String name, long createdMillis, String setId, List<String> members, boolean setComplete,
      Map<String, String> attributes, BlockTable table) {
    this.id = id;
    this.name = name;
    this.createdMillis = createdMillis;
    this.setId = setId;
    this.members = List.copyOf(members);
    this.setComplete = setComplete || this.members.isEmpty();
    this.attributes = attributes.isEmpty() ? Map.of() : attributes;
    this.table = table;
  }

  Map<String, String> attributes() {
    return attributes;
  }

  /** Replaces the attributes with {@code checked} (from {@link Attributes#checked}). */
  void setAttributes(Map<String, String> checked) {
    attributes = checked;
  }

  boolean setComplete() {
    return setComplete;
  }

  void markSetComplete() {
    setComplete = true;
  }

  /**
   * The slot of an entry whose old contents were all zeros: nothing was copied, a read gives
   * zeros. Saves diff space and I/O for blocks first written after a snapshot (new files on a
   * fresh filesystem, trimmed space).
   */
  static final int ZERO_SLOT = -1;

  /** True for an entry that holds zeros without a diff slot. */
  static boolean isZero(long packed) {
    return slot(packed) == ZERO_SLOT;
  }

  static long pack(int slot, int crc) {
    return ((long) slot << 32) | (crc & 0xFFFFFFFFL);
  }

  static int slot(long packed) {
    return (int) (packed >>> 32);
  }

  static int crc(long packed) {
    return (int) packed;
  }

  synchronized long get(long block) {
    return table.get(block);
  }

  synchronized boolean contains(long block) {
    return table.contains(block);
  }

  synchronized long put(long block, long packed) {
    return table.put(block, packed);
  }

  synchronized int entries() {
    return table.size();
  }

  synchronized long[] sortedBlocks() {
    return table.sortedBlocks();
  }

  synchronized void forEach(BlockTable.Entry action) {
    table.forEach(action);
  }

  synchronized void clear() {
    table.clear();
  }

  /** Entries that occupy a diff slot. */
  synchronized int slotsUsed() {
    int[] n = {0};
    table.forEach((block, packed) -> {
      if (!isZero(packed)) {
        n[0]++;
      }
    });
    return n[0];
  }

  SnapshotInfo info(int blockSize) {
    return new SnapshotInfo(id, name, Instant.ofEpochMilli(createdMillis), (long) slotsUsed() * blockSize, setId,
        attributes);
  }

  @Override
  public String toString() {
    return "snapshot " + name + " (id " + id + ")";
  }
}
