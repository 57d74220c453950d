package dev.shade.offhost.backup;

import java.io.IOException;
import java.io.OutputStream;

/** A record that goes on tape as a tape file of its own (a job's, verifications', a drill's). */
@FunctionalInterface
interface TapeRecord {
  /** Writes the record as a tar to {@code out} (a tape file's stream, which the caller ends). */
  void write(OutputStream out, int blockSize) throws IOException;
}
