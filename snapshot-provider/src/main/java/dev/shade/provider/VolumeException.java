package dev.shade.provider;

import java.io.IOException;

/**
 * A volume cannot do what was asked: it is damaged, busy, misconfigured, or the request names
 * something that does not exist. The message names the volume and, for damage, the file.
 */
public class VolumeException extends IOException {
  private static final long serialVersionUID = 1L;

  public VolumeException(String message) {
    super(message);
  }

  public VolumeException(String message, Throwable cause) {
    super(message, cause);
  }
}
