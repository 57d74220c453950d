package dev.shade.requestor.control;

import dev.shade.provider.SnapshotNotFoundException;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;

/** Turns exceptions into the error classes and one-line descriptions of the control protocol. */
public final class ControlErrors {
  private ControlErrors() {}

  /** {@code t} as a control error: its class from its type, its description from {@link #describe}. */
  public static ControlException of(Throwable t) {
    if (t instanceof ControlException ce) {
      return ce;
    }
    if (t instanceof UncheckedIOException && t.getCause() != null) {
      return of(t.getCause());
    }
    String cls;
    if (t instanceof SnapshotNotFoundException) {
      cls = ControlException.SNAPSHOT_NOT_FOUND;
    } else if (t instanceof dev.shade.requestor.ops.ImageExistsException) {
      cls = ControlException.FILE_EXISTS;
    } else if (t instanceof IllegalArgumentException) {
      cls = ControlException.INVALID_ARGUMENT;
    } else {
      cls = ControlException.GENERIC;
    }
    return new ControlException(cls, describe(t));
  }

  /**
   * The message of {@code t} as one line an operator can act on; file-system errors without a
   * reason say what happened to which file. The command line prints the same line whether a
   * command ran in its own process or in the agent.
   */
  public static String describe(Throwable t) {
    if (t instanceof UncheckedIOException && t.getCause() != null) {
      return describe(t.getCause());
    }
    if (t instanceof FileSystemException fse && fse.getReason() == null) {
      String file = fse.getFile();
      if (t instanceof NoSuchFileException) {
        return "no such file or directory: " + file;
      } else if (t instanceof AccessDeniedException) {
        return "permission denied: " + file;
      } else if (t instanceof FileAlreadyExistsException) {
        return "already exists: " + file;
      } else if (t instanceof NotDirectoryException) {
        return "not a directory: " + file;
      } else if (t instanceof DirectoryNotEmptyException) {
        return "directory not empty: " + file;
      }
    }
    String message = t.getMessage();
    if (message == null || message.isBlank()) {
      message = t.getClass().getSimpleName() + (t.getCause() == null ? "" : ": " + describe(t.getCause()));
    }
    return oneLine(message);
  }

  /** {@code s} on one line: line breaks and the blanks around them become "; ". */
  public static String oneLine(String s) {
    return s.strip().replaceAll("\\s*\\R\\s*", "; ");
  }
}
