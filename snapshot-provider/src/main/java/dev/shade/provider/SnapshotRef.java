package dev.shade.provider;

/**
 * Names one snapshot of a volume, by its name or by its id (stable, never reused within the
 * volume, see {@link SnapshotInfo#id()}).
 *
 * @param name the snapshot's name, or null when it is named by id
 * @param id the snapshot's id, or -1 when it is named by name
 */
public record SnapshotRef(String name, long id) {
  public SnapshotRef {
    if (name == null ? id < 1 : id != -1) {
      throw new IllegalArgumentException("a snapshot reference is a name or an id >= 1, not both: name=" + name + " id=" + id);
    }
  }

  /** The snapshot named {@code name}. */
  public static SnapshotRef ofName(String name) {
    if (name == null) {
      throw new IllegalArgumentException("snapshot name is null");
    }
    return new SnapshotRef(name, -1);
  }

  /** The snapshot with id {@code id}. */
  public static SnapshotRef ofId(long id) {
    return new SnapshotRef(null, id);
  }

  /** The reference for {@code name}, or null (the origin, where a method allows it) for null. */
  static SnapshotRef nameOrNull(String name) {
    return name == null ? null : ofName(name);
  }

  public boolean isId() {
    return name == null;
  }

  @Override
  public String toString() {
    return name != null ? "'" + name + "'" : "id " + id;
  }
}
