package dev.shade.provider.reliability;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a volume should hold after a script, kept in plain byte arrays with no code shared with
 * the implementation under test.
 *
 * <p>Not thread-safe.
 */
final class VolumeModel {
  /** The origin's bytes now. */
  private byte[] origin;
  /** Each live snapshot's bytes, oldest first. */
  private final LinkedHashMap<String, byte[]> snapshots = new LinkedHashMap<>();

  VolumeModel(long size) {
    this.origin = new byte[Math.toIntExact(size)];
  }

  /** An independent copy of this model. */
  VolumeModel copy() {
    VolumeModel c = new VolumeModel(origin.length);
    c.origin = origin.clone();
    for (Map.Entry<String, byte[]> e : snapshots.entrySet()) {
      c.snapshots.put(e.getKey(), e.getValue().clone());
    }
    return c;
  }

  /** Applies {@code op} as a perfect volume would. */
  void apply(Op op) {
    switch (op.kind()) {
      case WRITE:
        System.arraycopy(op.data(), 0, origin, (int) op.offset(), (int) op.length());
        break;
      case TRIM:
      case ZERO:
        Arrays.fill(origin, (int) op.offset(), (int) (op.offset() + op.length()), (byte) 0);
        break;
      case CREATE:
        if (snapshots.putIfAbsent(op.name(), origin.clone()) != null) {
          throw new IllegalStateException("script creates snapshot '" + op.name() + "' twice");
        }
        break;
      case DELETE:
        if (snapshots.remove(op.name()) == null) {
          throw new IllegalStateException("script deletes missing snapshot '" + op.name() + "'");
        }
        break;
      case FLUSH:
        break;
      default:
        throw new AssertionError(op);
    }
  }

  byte[] origin() {
    return origin;
  }

  /** Replaces the origin with what a recovered volume actually holds. */
  void rebase(byte[] actualOrigin) {
    if (actualOrigin.length != origin.length) {
      throw new IllegalArgumentException("origin size " + actualOrigin.length + " != " + origin.length);
    }
    origin = actualOrigin.clone();
  }

  /** Live snapshot names, oldest first. */
  List<String> snapshotNames() {
    return new ArrayList<>(snapshots.keySet());
  }

  /** The bytes of snapshot {@code name}, or null if it is not live. */
  byte[] snapshot(String name) {
    return snapshots.get(name);
  }

  Map<String, byte[]> snapshots() {
    return snapshots;
  }

  /** The digest {@link VolumeImages#digest} computes for a volume in this state. */
  long digest() {
    return VolumeImages.digest(origin, snapshotNames(), snapshots::get);
  }
}
