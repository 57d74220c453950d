package dev.shade.offhost.backup;

import dev.shade.nbd.client.NbdClientConfig;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * Where a restore writes a snapshot's image: a file, an NBD export, a volume. A restore calls
 * {@link #start} once with the image's size, then {@link #write} and {@link #zero} on disjoint
 * ranges that together cover the image, in any order, then {@link #finish} when every chunk
 * checked out, or {@link #abort} when anything failed; {@link #close} always, last.
 *
 * <p>After {@code finish} returns, the target reads back exactly the image over {@code [0, size)}:
 * the written bytes, and zeros wherever {@code zero} was called, whatever it held before. Bytes
 * of a larger target past {@code size} are left as they were. A sink that can tell a range
 * already reads as zeros (a file it just created) may leave it alone, as a hole.
 *
 * <p>Left out: reads (a restore never reads its target back; {@code shade verify} reads the
 * tapes, and a caller that wants a comparison reads the target through its own means), and
 * trims, which the NBD protocol never promises to read back as zeros.
 *
 * <p>Implementations need not be thread-safe: a restore makes one call at a time (its checking
 * workers take turns on the sink), each happening-before the next.
 * {@link #write} may return before the bytes reached the target, so a failure may surface on
 * a later call or in {@code finish}; it copies what it needs of {@code src} before returning.
 */
public interface RestoreSink extends Closeable {
  /**
   * Prepares the target for an image of {@code size} bytes, or refuses it (too small, read-only,
   * exists and may not be replaced) with a message naming the target and both sizes where sizes
   * are the cause; {@code notes} hears what a user should know (a target larger than the image).
   */
  void start(long size, Consumer<String> notes) throws IOException;

  /**
   * {@link #start(long, Consumer)} for the image of {@code snapshot}, {@code snapshot.size()}
   * bytes; what restores call. A sink that makes a new volume overrides it to give the volume
   * the backed-up one's block size.
   */
  default void start(SnapshotIdentity snapshot, Consumer<String> notes) throws IOException {
    start(snapshot.size(), notes);
  }

  /**
   * Writes {@code src}'s remaining bytes at {@code offset} (the argument order of
   * {@link java.nio.channels.FileChannel#write(ByteBuffer, long)}); {@code src}'s position is
   * left as it is.
   */
  void write(ByteBuffer src, long offset) throws IOException;

  /** Makes {@code length} bytes at {@code offset} read as zeros. */
  void zero(long offset, long length) throws IOException;

  /** Waits for every write and makes the image durable on the target (fsync, NBD FLUSH). */
  void finish() throws IOException;

  /**
   * Gives up after a failure: drops what was written where that can be done (a file it created
   * is deleted, a volume it created removed) and never throws; the target's state is otherwise
   * undefined. Called at most once, instead of {@code finish}.
   */
  void abort();

  /** The file written, when this sink writes a file; null otherwise. */
  default Path file() {
    return null;
  }

  /** What messages name: the target. */
  @Override
  String toString();

  /**
   * A sparse file at {@code path}, created (replaced when {@code force}, else refused when it
   * exists) and deleted on {@link #abort}.
   */
  static RestoreSink file(Path path, boolean force) {
    return new FileRestoreSink(path, force);
  }

  /**
   * The writable NBD export {@code config} names (nbd://, nbds://, nbd+unix://), written
   * through up to {@code connections} connections when the server allows several
   * ({@code CAN_MULTI_CONN}).
   */
  static RestoreSink nbd(NbdClientConfig config, int connections) {
    return new NbdRestoreSink(config, connections);
  }
}
