package dev.shade.nbd.client;

import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;

/** The one daemon thread that runs every client's connect, handshake and reply deadlines. */
final class Timer {
  private Timer() {}

  /** Shared by all clients; its tasks only close channels and fail requests, never block. */
  static final ScheduledExecutorService SCHEDULER;

  static {
    ScheduledThreadPoolExecutor s = new ScheduledThreadPoolExecutor(1, r -> {
      Thread t = new Thread(r, "nbd-client-timer");
      t.setDaemon(true);
      return t;
    });
    s.setRemoveOnCancelPolicy(true);
    SCHEDULER = s;
  }
}
