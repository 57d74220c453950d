package dev.shade.requestor.lease;

import java.io.IOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps the guard of a finished freeze lease for the next one, so a long-running requestor (the
 * agent, its schedule) starts one guard JVM for many snapshots instead of one per snapshot: the
 * JVM's start (0.3–0.5 s of CPU) then no longer competes with the databases at each snapshot.
 *
 * <p>Only a guard whose lease ended cleanly (thawed, post-snapshot done) comes back: the guard
 * closes and forgets that lease's writers first ({@code reset}). A guard whose lease failed,
 * expired or was aborted is ended, and the next lease starts a fresh one. At most one guard
 * waits here, and each serves at most {@value #MAX_LEASES} leases. An idle guard holds no writer,
 * no database session and no lock; it exits when this process does (its input closes).
 * Thread-safe.
 */
public final class GuardPool implements AutoCloseable {
  /** Leases one guard may serve before it is replaced, so nothing a writer leaks can pile up. */
  static final int MAX_LEASES = 256;
  private static final Logger LOG = LoggerFactory.getLogger(GuardPool.class);

  private final boolean keeps;
  private GuardProcess idle;
  private boolean closed;

  private GuardPool(boolean keeps) {
    this.keeps = keeps;
  }

  /** A pool that keeps one idle guard between leases. */
  public static GuardPool create() {
    return new GuardPool(true);
  }

  /** A pool that keeps nothing: every lease starts its own guard and ends it (one-shot commands). */
  public static GuardPool none() {
    return new GuardPool(false);
  }

  /** An idle guard that is still running, else a newly started one. */
  GuardProcess take() throws IOException {
    GuardProcess g;
    synchronized (this) {
      g = idle;
      idle = null;
    }
    if (g != null && g.isAlive()) {
      return g;
    }
    if (g != null) {
      LOG.warn("the idle freeze lease guard (pid {}) had exited; starting a new one", g.pid());
    }
    return GuardProcess.start();
  }

  /** Gives back a guard whose lease ended cleanly and was reset; ends it if it cannot be kept. */
  void giveBack(GuardProcess g) {
    boolean keep;
    synchronized (this) {
      keep = keeps && !closed && idle == null && g.leases() < MAX_LEASES && g.isAlive();
      if (keep) {
        idle = g;
      }
    }
    if (!keep) {
      g.close();
    }
  }

  /** Whether this pool keeps guards between leases. */
  boolean keeps() {
    return keeps;
  }

  /** Ends the idle guard, if any; later leases start and end their own. */
  @Override
  public void close() {
    GuardProcess g;
    synchronized (this) {
      closed = true;
      g = idle;
      idle = null;
    }
    if (g != null) {
      g.close();
    }
  }
}
