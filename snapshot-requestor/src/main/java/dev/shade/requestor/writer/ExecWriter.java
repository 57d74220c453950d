package dev.shade.requestor.writer;

import java.nio.file.Path;

/**
 * The writer of a directory of hook executables, {@code exec:DIR}. Not built yet: a placeholder
 * so that {@link Writers#parse} knows the kind.
 */
final class ExecWriter {
  private ExecWriter() {}

  /** The writer of the hooks in {@code dir}. */
  static Writer of(Path dir) {
    throw new UnsupportedOperationException("exec writers are not built yet");
  }
}
