package dev.shade.offhost.agent;

import java.io.IOException;

/** An error reply of the agent: its class (e.g. {@code PermissionDenied}) and description. */
public final class AgentException extends IOException {
  private static final long serialVersionUID = 1L;

  /** The reply's error class, as the agent sent it. */
  private final String errorClass;

  public AgentException(String errorClass, String message) {
    super(message);
    this.errorClass = errorClass;
  }

  /** The error's class: {@code PermissionDenied}, {@code SnapshotNotFound}, {@code GenericError}, ... */
  public String errorClass() {
    return errorClass;
  }
}
