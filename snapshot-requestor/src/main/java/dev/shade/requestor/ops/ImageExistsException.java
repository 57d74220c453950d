package dev.shade.requestor.ops;

import java.io.IOException;
import java.nio.file.Path;

/** An export's target file exists already (and replacing it was not asked for, or it is not a plain file). */
public final class ImageExistsException extends IOException {
  private static final long serialVersionUID = 1L;

  /** The file that is in the way. */
  private final String file;

  public ImageExistsException(Path file, String message) {
    super(message);
    this.file = file.toString();
  }

  /** The file that is in the way. */
  public String file() {
    return file;
  }
}
