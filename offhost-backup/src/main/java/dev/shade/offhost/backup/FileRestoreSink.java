package dev.shade.offhost.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.function.Consumer;

/**
 * A restore into a new sparse file: truncated to nothing, extended to the image's size, so
 * every range the image has as zeros stays a hole; deleted when the restore fails.
 *
 * <p>Not thread-safe (see {@link RestoreSink}).
 */
final class FileRestoreSink implements RestoreSink {
  /** The file. */
  private final Path path;
  /** Replace an existing file. */
  private final boolean force;
  /** Open from start to close; null before start. */
  private FileChannel out;
  /** The image's size, once started. */
  private long size = -1;
  /** True once this sink opened (created or truncated) the file: abort deletes it only then. */
  private boolean opened;
  /** Starts the file's writeback while the restore goes on, so that finish has little left to write. */
  private WriteBehind behind;

  FileRestoreSink(Path path, boolean force) {
    this.path = path;
    this.force = force;
  }

  @Override
  public void start(long size, Consumer<String> notes) throws IOException {
    if (Files.exists(path) && !force) {
      throw new BackupException("restore target exists (replace it with --force): " + path);
    }
    out = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING);
    opened = true;
    out.truncate(0);
    if (size > 0) {
      out.write(ByteBuffer.allocate(1), size - 1); // the size; zeros stay holes
    }
    this.size = size;
    behind = new WriteBehind(path);
  }

  @Override
  public void write(ByteBuffer src, long offset) throws IOException {
    ByteBuffer b = src.duplicate();
    long at = offset;
    while (b.hasRemaining()) {
      at += out.write(b, at);
    }
    behind.written(at - offset);
  }

  /** The file was created empty and extended: every range not written is a hole of zeros already. */
  @Override
  public void zero(long offset, long length) throws IOException {
    if (offset < 0 || length < 0 || offset + length > size) {
      throw new IllegalArgumentException("zero range [" + offset + ", +" + length + ") outside the image of "
          + size + " bytes: " + this);
    }
  }

  @Override
  public void finish() throws IOException {
    behind.finish();
    out.force(true);
  }

  @Override
  public void abort() {
    try {
      close();
    } catch (IOException ignored) {
      // the file goes anyway
    }
    if (!opened) {
      return; // refused or never started: the file there is not ours
    }
    try {
      Files.deleteIfExists(path);
    } catch (IOException ignored) {
      // nothing more to do: the restore's own failure is what the caller reports
    }
  }

  @Override
  public Path file() {
    return path;
  }

  @Override
  public void close() throws IOException {
    FileChannel c = out;
    out = null;
    WriteBehind w = behind;
    behind = null;
    try {
      if (w != null) {
        w.close();
      }
    } finally {
      if (c != null) {
        c.close();
      }
    }
  }

  @Override
  public String toString() {
    return "file " + path;
  }
}
