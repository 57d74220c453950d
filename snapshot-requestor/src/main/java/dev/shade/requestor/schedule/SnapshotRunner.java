package dev.shade.requestor.schedule;

import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * How the scheduler takes, lists and deletes snapshots. The agent's implementation runs the
 * control commands snapshot-create, snapshot-list and snapshot-delete ({@link CommandRunner});
 * tests give one in memory. Implementations are called from the scheduler's threads, one call at
 * a time per schedule but possibly at once for two schedules, so they must be thread-safe.
 */
public interface SnapshotRunner {
  /**
   * A snapshot of a volume, as listed.
   *
   * @param id its id (never reused on its volume)
   * @param name its name
   * @param created when it was taken
   * @param attributes its attributes, or null when the volume's snapshots carry none at all (a
   *     provider older than snapshot attributes)
   */
  record Snapshot(long id, String name, Instant created, Map<String, String> attributes) {}

  /**
   * Takes one snapshot of {@code volumes} as one set (all or none), through {@code writers}, named
   * {@code name} on every volume, carrying {@code attributes}.
   *
   * @throws IOException when it was not taken; the message says why
   */
  void snapshot(List<String> volumes, List<String> writers, String name, Map<String, String> attributes,
      Duration freezeTimeout) throws IOException;

  /** The snapshots of {@code volume}, in any order. */
  List<Snapshot> snapshots(String volume) throws IOException;

  /** Deletes the snapshot named {@code name} of {@code volume}. */
  void delete(String volume, String name) throws IOException;
}
