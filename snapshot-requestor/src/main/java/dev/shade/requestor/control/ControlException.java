package dev.shade.requestor.control;

import java.io.IOException;

/**
 * An error answered by the control protocol: a class that scripts can branch on and a
 * description for people, as in QMP's {@code {"error": {"class", "desc"}}}.
 */
public final class ControlException extends IOException {
  private static final long serialVersionUID = 1L;

  /** The request was malformed: not JSON, not an object, missing or wrong arguments. */
  public static final String INVALID_ARGUMENT = "InvalidArgument";
  /** No such command. */
  public static final String COMMAND_NOT_FOUND = "CommandNotFound";
  /** A command other than {@code capabilities} before capabilities were negotiated. */
  public static final String NOT_NEGOTIATED = "CommandNotAllowed";
  /** The volume named is not held by the agent. */
  public static final String VOLUME_NOT_FOUND = "VolumeNotFound";
  /** The snapshot named does not exist on the volume. */
  public static final String SNAPSHOT_NOT_FOUND = "SnapshotNotFound";
  /** The volume is busy or held elsewhere, or the operation conflicts with clients attached. */
  public static final String IN_USE = "InUse";
  /** The file an export was to write exists already. */
  public static final String FILE_EXISTS = "FileExists";
  /** The peer's user may not use this agent. */
  public static final String PERMISSION_DENIED = "PermissionDenied";
  /** The operation was tried and failed (I/O error, full disk, refused revert, ...). */
  public static final String GENERIC = "GenericError";

  /** One of the constants above, or another class a newer agent sends. */
  private final String errorClass;

  public ControlException(String errorClass, String description) {
    super(description);
    this.errorClass = errorClass;
  }

  /** The error's class, e.g. {@value #SNAPSHOT_NOT_FOUND}. */
  public String errorClass() {
    return errorClass;
  }
}
