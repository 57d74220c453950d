package dev.shade.provider;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Snapshots of several volumes at one instant, in two phases ({@link #prepare}, then {@link
 * PreparedSnapshotSet#commit}), and the reconciliation that keeps a set all-or-none across a
 * crash ({@link #reconcile}).
 *
 * <p>Thread-safe: every method takes the locks it needs on each volume.
 */
public final class SnapshotSet {
  /*
   * Each member's create record names the set id and the uuids of all members. Once the commit
   * has written every member's record it journals "set complete" on each. Reconcile looks at
   * the members of each set that lacks that mark: if a member among the given volumes lacks
   * the snapshot, the commit never reached it (a crash between the members' records), and the
   * set is deleted from the members that have it; if every member is there, the set is marked
   * complete; if some member is not among the given volumes, nothing can be decided and the set
   * is kept and reported. A set that is marked complete is never touched: deleting one member
   * on purpose later (by hand or to make room in a diff area) leaves the others alone.
   */
  private static final Logger LOG = LoggerFactory.getLogger(SnapshotSet.class);

  private SnapshotSet() {}

  /**
   * Phase one: checks the volumes (at least one, none twice, all open) and flushes each, so
   * that the commit's hold only waits for what is written after this. Nothing is held
   * afterwards: the caller may now freeze its applications and commit.
   *
   * @throws IllegalArgumentException when {@code volumes} is empty or names a volume twice
   */
  public static PreparedSnapshotSet prepare(List<Volume> volumes) throws IOException {
    if (volumes.isEmpty()) {
      throw new IllegalArgumentException("a snapshot set needs at least one volume");
    }
    Set<Object> dirs = new HashSet<>();
    Set<String> uuids = new HashSet<>();
    for (Volume v : volumes) {
      if (!dirs.add(v.directory().toAbsolutePath().normalize()) || !uuids.add(v.uuid())) {
        throw new IllegalArgumentException("volume named twice in one snapshot set: " + v.directory());
      }
    }
    long t0 = System.nanoTime();
    long drain = 0;
    for (Volume v : volumes) {
      v.flush(); // flush ahead of the hold, so the hold only waits for what is written meanwhile
      drain += v.writer().lastDrainNanos;
    }
    return new PreparedSnapshotSet(volumes, System.nanoTime() - t0, drain);
  }

  /**
   * One snapshot set as reconciliation saw it.
   *
   * @param setId the set's id
   * @param snapshotId the members' snapshot id
   * @param snapshotName the members' snapshot name
   * @param members uuids of every volume of the set, as its records name them
   * @param presentOn uuids of the given volumes that held the set's snapshot
   * @param missingFrom uuids of members that lack it (for a removed set) or that were not
   *     among the given volumes (for an unverified one)
   */
  public record SetReport(String setId, long snapshotId, String snapshotName, List<String> members,
      List<String> presentOn, List<String> missingFrom) {}

  /**
   * What {@link #reconcile} did.
   *
   * @param removed sets that a crash had left on some of the given members only, now deleted
   *     from all of them
   * @param unverified sets kept although not every member was checked: some of their members
   *     were not among the given volumes (a caller should warn, and reconcile again with all
   *     of them)
   */
  public record Reconciliation(List<SetReport> removed, List<SetReport> unverified) {}

  /**
   * Makes every snapshot set on {@code volumes} all-or-none: a set whose commit did not reach
   * all of its members among {@code volumes} (a crash between the members' records) is deleted
   * from those that have it (journaled; WARN log with the set id and the volumes). A set with
   * members that are not among {@code volumes} is kept and reported as unverified. A set found
   * whole is marked complete and not looked at again. Idempotent.
   */
  public static Reconciliation reconcile(List<Volume> volumes) throws IOException {
    Map<String, Volume> byUuid = new LinkedHashMap<>();
    for (Volume v : volumes) {
      v.locks().ensureOpen();
      byUuid.put(v.uuid(), v);
    }
    // set id -> (volume uuid -> its member snapshot), for members not marked complete
    Map<String, Map<String, Snapshot>> open = new LinkedHashMap<>();
    for (Volume v : volumes) {
      for (Snapshot s : v.chain().list()) {
        if (s.setId != null && !s.members.isEmpty() && !s.setComplete()) {
          open.computeIfAbsent(s.setId, k -> new LinkedHashMap<>()).put(v.uuid(), s);
        }
      }
    }
    List<SetReport> removed = new ArrayList<>();
    List<SetReport> unverified = new ArrayList<>();
    for (Map.Entry<String, Map<String, Snapshot>> e : open.entrySet()) {
      String setId = e.getKey();
      Map<String, Snapshot> present = e.getValue();
      Snapshot any = present.values().iterator().next();
      List<String> lacking = new ArrayList<>();
      List<String> unopened = new ArrayList<>();
      boolean marked = false;
      for (String m : any.members) {
        Volume v = byUuid.get(m);
        if (v == null) {
          unopened.add(m);
        } else if (!present.containsKey(m)) {
          Snapshot there = findSet(v, setId);
          if (there == null) {
            lacking.add(m);
          } else {
            marked = true; // marked complete there: the commit reached every member
          }
        }
      }
      List<String> presentOn = List.copyOf(present.keySet());
      if (marked || lacking.isEmpty() && unopened.isEmpty()) {
        for (Map.Entry<String, Snapshot> p : present.entrySet()) {
          markComplete(byUuid.get(p.getKey()), p.getValue());
        }
      } else if (!lacking.isEmpty()) {
        SetReport r = new SetReport(setId, any.id, any.name, any.members, presentOn, List.copyOf(lacking));
        LOG.warn("snapshot set {} ('{}') is on volumes {} but not on {}: its commit was interrupted; deleting it from {}",
            setId, any.name, describe(byUuid, presentOn), describe(byUuid, lacking), describe(byUuid, presentOn));
        for (Map.Entry<String, Snapshot> p : present.entrySet()) {
          deleteMember(byUuid.get(p.getKey()), p.getValue());
        }
        removed.add(r);
      } else {
        unverified.add(new SetReport(setId, any.id, any.name, any.members, presentOn, List.copyOf(unopened)));
        LOG.info("snapshot set {} ('{}'): members {} were not opened with {}; it is kept unverified",
            setId, any.name, unopened, describe(byUuid, presentOn));
      }
    }
    return new Reconciliation(List.copyOf(removed), List.copyOf(unverified));
  }

  private static Snapshot findSet(Volume v, String setId) {
    for (Snapshot s : v.chain().list()) {
      if (setId.equals(s.setId)) {
        return s;
      }
    }
    return null;
  }

  private static String describe(Map<String, Volume> byUuid, List<String> uuids) {
    List<String> out = new ArrayList<>();
    for (String u : uuids) {
      Volume v = byUuid.get(u);
      out.add(v == null ? u : v.name() + " (" + u + ")");
    }
    return out.toString();
  }

  private static void markComplete(Volume v, Snapshot s) throws IOException {
    v.locks().hold.writeLock().lock();
    try {
      v.locks().ensureOpen();
      if (v.chain().list().contains(s) && !s.setComplete()) {
        v.journal().sync(v.chain().markSetComplete(s));
      }
    } finally {
      v.locks().hold.writeLock().unlock();
    }
  }

  private static void deleteMember(Volume v, Snapshot s) throws IOException {
    v.locks().hold.writeLock().lock();
    try {
      v.locks().ensureOpen();
      if (v.chain().list().contains(s)) {
        v.writeBehind().drain();
        v.chain().delete(s);
        v.chain().maybeFold();
      }
    } finally {
      v.locks().hold.writeLock().unlock();
    }
  }
}
