package dev.shade.requestor.schedule;

import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Snapshots in memory, as the scheduler would take them on real volumes: per volume, unique names,
 * ids never reused. A run can be made to take simulated time or to fail.
 */
final class MemoryRunner implements SnapshotRunner {
  private final Clock clock;
  /** Snapshots per volume; guarded by this. */
  private final Map<String, List<Snapshot>> volumes = new HashMap<>();
  /** The next id; guarded by this. */
  private long nextId = 1;
  /** Whether snapshots carry attributes (false: a provider without them). */
  private final boolean attributes;

  /** Names of every snapshot taken through {@link #snapshot}, in order. */
  final List<String> taken = new ArrayList<>();
  /** Names deleted, in order. */
  final List<String> deleted = new ArrayList<>();
  /** Runs under way now, and the most ever at once. */
  final AtomicInteger active = new AtomicInteger();
  final AtomicInteger maxActive = new AtomicInteger();
  /** The next this many runs fail. */
  final AtomicInteger failNext = new AtomicInteger();
  /** Simulated time each run takes (on a {@link FakeTime}), or zero. */
  volatile Duration runTime = Duration.ZERO;

  MemoryRunner(Clock clock, boolean attributes, String... volumes) {
    this.clock = clock;
    this.attributes = attributes;
    for (String v : volumes) {
      this.volumes.put(v, new ArrayList<>());
    }
  }

  /** Adds a snapshot as if made earlier (by hand, or by a schedule before a restart). */
  synchronized void add(String volume, String name, Instant created, Map<String, String> attrs) {
    volumes.get(volume).add(new Snapshot(nextId++, name, created, attributes ? Map.copyOf(attrs) : null));
  }

  synchronized List<String> names(String volume) {
    return volumes.get(volume).stream().map(Snapshot::name).toList();
  }

  @Override
  public void snapshot(List<String> vs, List<String> writers, String name, Map<String, String> attrs, Duration freeze)
      throws IOException {
    int n = active.incrementAndGet();
    maxActive.accumulateAndGet(n, Math::max);
    try {
      if (!runTime.isZero()) {
        ((FakeTime) clock).advance(runTime);
      }
      if (failNext.getAndUpdate(x -> Math.max(0, x - 1)) > 0) {
        throw new IOException("diff area full (simulated)");
      }
      synchronized (this) {
        Instant now = clock.instant();
        for (String v : vs) {
          List<Snapshot> list = volumes.get(v);
          if (list == null) {
            throw new IOException("no volume " + v);
          }
          if (list.stream().anyMatch(s -> s.name().equals(name))) {
            throw new IOException("snapshot exists: " + name);
          }
        }
        for (String v : vs) {
          volumes.get(v).add(new Snapshot(nextId++, name, now, attributes ? Map.copyOf(attrs) : null));
        }
        taken.add(name);
      }
    } finally {
      active.decrementAndGet();
    }
  }

  @Override
  public synchronized List<Snapshot> snapshots(String volume) throws IOException {
    List<Snapshot> list = volumes.get(volume);
    if (list == null) {
      throw new IOException("no volume " + volume);
    }
    return List.copyOf(list);
  }

  @Override
  public synchronized void delete(String volume, String name) throws IOException {
    if (!volumes.get(volume).removeIf(s -> s.name().equals(name))) {
      throw new IOException("no snapshot " + name + " on " + volume);
    }
    deleted.add(volume + "/" + name);
  }

  static Map<String, String> by(String schedule) {
    Map<String, String> m = new HashMap<>();
    if (schedule != null) {
      m.put(Ownership.ATTRIBUTE, schedule);
    }
    return m;
  }
}
