package dev.shade.cli;

import java.util.ArrayDeque;
import java.util.Deque;

/**
 * What a live test has to take down, newest first: each closer runs once when the test ends
 * (also on failure), and the first failure is thrown with the later ones suppressed.
 *
 * <p>Not thread-safe: one test drives it.
 */
final class CloseStack implements AutoCloseable {
  /** The closers still to run, newest first. */
  private final Deque<AutoCloseable> closers = new ArrayDeque<>();

  /** Adds {@code closer}, to run before every closer pushed earlier; returns it. */
  <T extends AutoCloseable> T push(T closer) {
    closers.push(closer);
    return closer;
  }

  /** Runs every closer, newest first, even when some fail. */
  @Override
  public void close() throws Exception {
    Exception first = null;
    while (!closers.isEmpty()) {
      try {
        closers.pop().close();
      } catch (Exception e) {
        if (first == null) {
          first = e;
        } else {
          first.addSuppressed(e);
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }
}
