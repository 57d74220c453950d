package dev.shade.provider;

/** The named (or numbered) snapshot does not exist on the volume. */
public final class SnapshotNotFoundException extends VolumeException {
  private static final long serialVersionUID = 1L;

  public SnapshotNotFoundException(String volume, String name) {
    super("no snapshot named '" + name + "' on volume " + volume);
  }

  public SnapshotNotFoundException(String volume, long id) {
    super("no snapshot with id " + id + " on volume " + volume);
  }
}
