package dev.shade.testing;

import java.util.ArrayDeque;
import java.util.Deque;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * What a test set up and must take down (agents, mounts, namespaces), closed after each test
 * newest first, every one even when an earlier one fails (the first failure fails the test, the
 * others are added to it as suppressed): {@code @RegisterExtension final CloseAfterEach teardown
 * = new CloseAfterEach();}, then {@code teardown.push(fixture)}; or on its own, closed by
 * try-with-resources.
 *
 * <p>Not thread-safe: used by the test's own thread.
 */
public final class CloseAfterEach implements AfterEachCallback, AutoCloseable {
  private final Deque<AutoCloseable> stack = new ArrayDeque<>();

  /** Closes {@code fixture} after the test, before everything pushed earlier; returns it. */
  public <T extends AutoCloseable> T push(T fixture) {
    stack.push(fixture);
    return fixture;
  }

  /** Takes back the fixture pushed last (the test closes it, or it is gone) and returns it. */
  public AutoCloseable pop() {
    return stack.pop();
  }

  @Override
  public void afterEach(ExtensionContext context) throws Exception {
    close();
  }

  /** Closes everything pushed and not taken back, newest first, even when some fail. */
  @Override
  public void close() throws Exception {
    Exception first = null;
    while (!stack.isEmpty()) {
      try {
        stack.pop().close();
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
