package dev.shade.nbd.server;

import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;

/**
 * Logs the faults of misbehaving clients (bad magic, timeouts, failed TLS, ...) so that a flood
 * of them leaves a readable log: the first of each kind from each peer in full, the repeats as
 * one count per kind and interval.
 *
 * <p>Thread-safe: every method synchronizes on this object (faults are rare next to requests,
 * and a flood costs one short critical section per connection).
 */
final class FaultLog {
  /*
   * Per kind of fault, per interval (a window that starts at the kind's first fault after a
   * quiet one): the first fault of each peer (host, without the port) is logged in full, for at
   * most FULL_PEERS peers; every other one is counted, with its peer, and when the interval is
   * over one line says "N more connections closed for KIND from M peers in the last S s". Then the
   * window starts afresh, so a flood that goes on shows one full line and one count per kind and
   * interval, and a fault that returns after a quiet interval is logged in full again.
   *
   * A flood of 70,000 bad connections in 3 minutes from a few hosts made 70,000 lines before;
   * with a 60 s interval it makes about two lines per kind and minute.
   */
  /** Peers whose first fault of a kind is logged in full, per interval. */
  static final int FULL_PEERS = 10;
  /** Distinct peers remembered for a summary's count; past it the count says "at least". */
  static final int COUNTED_PEERS = 10_000;

  /** Where the lines go. */
  private final Logger log;
  /** Length of one summary window, ms. */
  private final long intervalMillis;
  /** The window of each kind that had a fault in it, in order of first appearance. Guarded by this. */
  private final Map<String, Window> windows = new LinkedHashMap<>();

  /** One kind's current window. */
  private static final class Window {
    /** When the window started (ms). */
    final long started;
    /** Peers logged in full in this window. */
    final Set<String> logged = new HashSet<>();
    /** Faults counted, not logged, in this window. */
    long repeats;
    /** Distinct peers of those repeats (at most COUNTED_PEERS). */
    final Set<String> repeatPeers = new HashSet<>();
    /** True when more peers repeated than repeatPeers holds. */
    boolean peersOverflowed;

    Window(long started) {
      this.started = started;
    }
  }

  FaultLog(Logger log, long intervalMillis) {
    if (intervalMillis <= 0) {
      throw new IllegalArgumentException("fault summary interval must be positive: " + intervalMillis + " ms");
    }
    this.log = log;
    this.intervalMillis = intervalMillis;
  }

  /**
   * A client fault of {@code kind} (a fixed phrase, no numbers: "bad request magic") from
   * {@code peer} (its host); {@code line} is the full message, logged when this is the peer's
   * first fault of that kind in the window.
   */
  void fault(String kind, String peer, String line) {
    boolean full;
    synchronized (this) {
      long now = System.currentTimeMillis();
      Window w = windows.get(kind);
      if (w != null && now - w.started >= intervalMillis) {
        summarise(kind, w, now); // the window is over: report it before starting a new one
        windows.remove(kind);
        w = null;
      }
      if (w == null) {
        w = new Window(now);
        windows.put(kind, w);
      }
      full = !w.logged.contains(peer) && w.logged.size() < FULL_PEERS;
      if (full) {
        w.logged.add(peer);
      } else {
        w.repeats++;
        if (w.repeatPeers.size() < COUNTED_PEERS) {
          w.repeatPeers.add(peer);
        } else if (!w.repeatPeers.contains(peer)) {
          w.peersOverflowed = true;
        }
      }
    }
    if (full) {
      log.warn("{}", line);
    }
  }

  /** Reports and closes every window that is over; the server's watchdog calls it every second. */
  synchronized void tick() {
    long now = System.currentTimeMillis();
    for (Iterator<Map.Entry<String, Window>> it = windows.entrySet().iterator(); it.hasNext(); ) {
      Map.Entry<String, Window> e = it.next();
      if (now - e.getValue().started >= intervalMillis) {
        summarise(e.getKey(), e.getValue(), now);
        it.remove();
      }
    }
  }

  /** Reports every window now, over or not (the server is stopping). */
  synchronized void flush() {
    long now = System.currentTimeMillis();
    windows.forEach((kind, w) -> summarise(kind, w, now));
    windows.clear();
  }

  private void summarise(String kind, Window w, long now) {
    if (w.repeats == 0) {
      return;
    }
    int peers = w.repeatPeers.size();
    log.warn("{} more connection{} closed for {} from {}{} peer{} in the last {} s", w.repeats, w.repeats == 1 ? "" : "s", kind,
        w.peersOverflowed ? "at least " : "", peers, peers == 1 ? "" : "s", Math.max(1, (now - w.started + 500) / 1000));
  }
}
