package dev.shade.provider;

/** The named snapshot does not exist on the volume. */
public final class SnapshotNotFoundException extends VolumeException {
  private static final long serialVersionUID = 1L;

  public SnapshotNotFoundException(String volume, String name) {
    super("no snapshot named '" + name + "' on volume " + volume);
  }
}
