package dev.shade.testing.live;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The backstop that undoes what the live fixtures set up (mounts, loop devices, nbdfuse and
 * PostgreSQL processes) when the JVM exits without the test having closed them: one JVM
 * shutdown hook closes every fixture still registered, newest first.
 *
 * <p>Thread-safe: the registry is guarded by the class lock.
 */
final class Teardown {
  /** Fixtures opened and not yet closed, oldest first; guarded by the class lock. */
  private static final Set<AutoCloseable> OPEN = new LinkedHashSet<>();
  /** True once the hook is installed; guarded by the class lock. */
  private static boolean hooked;

  private Teardown() {}

  /** Registers {@code fixture} to be closed at JVM exit unless {@link #done} is called first. */
  static synchronized void register(AutoCloseable fixture) {
    if (!hooked) {
      Runtime.getRuntime().addShutdownHook(new Thread(Teardown::closeAll, "shade-live-teardown"));
      hooked = true;
    }
    OPEN.add(fixture);
  }

  /** Forgets {@code fixture}: it was closed. */
  static synchronized void done(AutoCloseable fixture) {
    OPEN.remove(fixture);
  }

  private static void closeAll() {
    List<AutoCloseable> all;
    synchronized (Teardown.class) {
      all = new ArrayList<>(OPEN);
    }
    for (int i = all.size() - 1; i >= 0; i--) {
      AutoCloseable f = all.get(i);
      try {
        System.err.println("shade live fixtures: at JVM exit, tearing down " + f);
        f.close();
      } catch (Exception e) {
        System.err.println("shade live fixtures: tearing down " + f + " failed: " + e);
      }
    }
  }
}
