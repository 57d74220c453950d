package dev.shade.offhost.backup;

import java.io.IOException;

/** A backup or restore that cannot be done; the message says why and names the resource. */
public class BackupException extends IOException {
  public BackupException(String message) {
    super(message);
  }

  public BackupException(String message, Throwable cause) {
    super(message, cause);
  }
}
