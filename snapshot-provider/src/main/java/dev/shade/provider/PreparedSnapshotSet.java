package dev.shade.provider;

import dev.shade.nativeio.AlreadyClosedException;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A snapshot set between its two phases: the volumes were flushed by {@link
 * SnapshotSet#prepare}, the caller now freezes its applications, then {@link #commit}s (or
 * {@link #abort}s). One-shot: after a commit, successful or not, or an abort, every further
 * commit throws {@link IllegalStateException}.
 *
 * <p>Thread-safe: commit and abort are serialised; a commit holds the I/O of every member.
 */
public final class PreparedSnapshotSet implements AutoCloseable {
  /*
   * Commit: hold the I/O of every member (write-lock each hold, in the order of the volumes'
   * directories, within one deadline), flush what was written since prepare, commit one
   * Create record per member (same snapshot id, name, set id; each record names the uuids of
   * all members), release, then journal "set complete" on every member. A crash between two
   * members' creates leaves the set on some members only, with no "set complete" anywhere:
   * SnapshotSet.reconcile removes it when the volumes are opened together. A crash after the
   * last create leaves the set on all members, which reconcile finds and marks complete.
   */
  private static final Logger LOG = LoggerFactory.getLogger(PreparedSnapshotSet.class);
  /**
   * Test hook: milliseconds to sleep between two members' create records, so that a crash test
   * can kill the process there. 0 (no pause) unless the system property is set.
   */
  static final long MEMBER_PAUSE_MS = Long.getLong("shade.test.setMemberPauseMs", 0);

  private enum State { PREPARED, COMMITTED, FAILED, ABORTED }

  /** The members in the caller's order. */
  private final List<Volume> volumes;
  /** The members in hold order (by normalised directory). */
  private final List<Volume> ordered;
  /** Guarded by this. */
  private State state = State.PREPARED;
  /** How long prepare's flush took, for the DEBUG line of the commit. */
  private final long prepareNanos;
  /** The part of it spent committing held writes. */
  private final long prepareDrainNanos;
  /**
   * After {@link #commitDeferringDurability}: per member in hold order, the journal sequence
   * number that {@link #makeDurable} syncs to; null when there is nothing left to make durable.
   * Guarded by this.
   */
  private long[] deferredSeq;
  /** After {@link #commitDeferringDurability} of a set: its members' snapshots, in hold order, to mark complete. */
  private List<Snapshot> deferredSet;

  PreparedSnapshotSet(List<Volume> volumes, long prepareNanos, long prepareDrainNanos) {
    this.prepareNanos = prepareNanos;
    this.prepareDrainNanos = prepareDrainNanos;
    this.volumes = List.copyOf(volumes);
    List<Volume> o = new ArrayList<>(volumes);
    o.sort(Comparator.comparing(v -> v.directory().toAbsolutePath().normalize().toString()));
    this.ordered = List.copyOf(o);
  }

  /** The member volumes, in the order given to prepare. */
  public List<Volume> volumes() {
    return volumes;
  }

  /**
   * Takes the snapshots: holds all I/O of every member within {@code holdTimeout}, flushes
   * what was written since prepare, commits every member's record, and releases. Returns each
   * member's snapshot (one id, name, creation time and set id for all) in the order of
   * {@link #volumes()}. {@code name} null gives {@code s<id>}. An invalid name or a negative
   * timeout is rejected before anything happens, and the set stays prepared. Any other failure
   * leaves no member with the snapshot (those already committed are deleted again) and the set
   * cannot be committed again.
   *
   * @throws IllegalStateException when already committed (or a commit failed) or aborted
   * @throws AlreadyClosedException when a member was closed since prepare
   * @throws VolumeException when the I/O could not be held in time, a member already has a
   *     snapshot of that name, or a record could not be written
   */
  public List<SnapshotInfo> commit(String name, Duration holdTimeout) throws IOException {
    return commit(name, holdTimeout, Map.of());
  }

  /**
   * {@link #commit(String, Duration)} giving every member's snapshot {@code attributes} (null:
   * none), in the same durable create record as the snapshot itself: after a crash a member
   * has the snapshot with its attributes or no snapshot. Invalid attributes (see {@link
   * Volume#setSnapshotAttributes}) are rejected before anything happens, and the set stays
   * prepared.
   *
   * @throws IllegalArgumentException when a key is invalid or the encoded map is over 256 KiB
   */
  public synchronized List<SnapshotInfo> commit(String name, Duration holdTimeout, Map<String, String> attributes)
      throws IOException {
    return commit(name, holdTimeout, attributes, true);
  }

  /**
   * As {@link #commit(String, Duration, Map)}, but the I/O is held only for the switch: the
   * members' create records are appended, not yet made durable, and the origins are not flushed
   * in the hold. {@link #makeDurable} does both afterwards. This is for a requestor whose writers
   * are frozen while the I/O is held (their freeze flushed the filesystems already) and who marks
   * the snapshots unfinished in {@code attributes} until it has made them durable and confirmed
   * them: a crash before {@link #makeDurable} returns may lose the snapshots, or leave them with
   * origin blocks that were not durable yet, and the mark tells whoever opens the volumes next
   * to discard them. The copy-on-write of a later write still makes the snapshot's old block
   * durable before the origin changes, and its journal record carries the create record with it.
   */
  public synchronized List<SnapshotInfo> commitDeferringDurability(String name, Duration holdTimeout,
      Map<String, String> attributes) throws IOException {
    return commit(name, holdTimeout, attributes, false);
  }

  /**
   * Makes the snapshots of a {@link #commitDeferringDurability} durable: flushes every member's
   * origin (what the snapshots read through to) and syncs every member's journal up to its create
   * and set-complete records. Returns at once after {@link #commit}, whose snapshots are durable
   * already.
   *
   * @throws IllegalStateException unless committed
   */
  public synchronized void makeDurable() throws IOException {
    if (state != State.COMMITTED) {
      throw new IllegalStateException("snapshot set of " + names() + " was not committed");
    }
    if (deferredSeq == null) {
      return;
    }
    for (int i = 0; i < ordered.size(); i++) {
      ordered.get(i).writer().flush();
      ordered.get(i).journal().sync(deferredSeq[i]);
    }
    if (deferredSet != null) {
      // only once every member's create is durable, as a durable commit does after its hold
      for (int i = 0; i < ordered.size(); i++) {
        Volume v = ordered.get(i);
        long seq;
        v.locks().hold.writeLock().lock();
        try {
          v.locks().ensureOpen();
          seq = v.chain().markSetComplete(deferredSet.get(i));
        } finally {
          v.locks().hold.writeLock().unlock();
        }
        v.journal().sync(seq);
      }
    }
    deferredSeq = null;
    deferredSet = null;
  }

  private List<SnapshotInfo> commit(String name, Duration holdTimeout, Map<String, String> attributes, boolean durable)
      throws IOException {
    if (state != State.PREPARED) {
      throw new IllegalStateException("snapshot set of " + names() + " was already "
          + (state == State.ABORTED ? "aborted" : state == State.COMMITTED ? "committed" : "committed, and that commit failed")
          + "; prepare a new one");
    }
    if (name != null) {
      Volume.checkName(name);
    }
    if (holdTimeout.isNegative()) {
      throw new IllegalArgumentException("hold timeout is negative: " + holdTimeout);
    }
    Map<String, String> attrs = Attributes.checked(attributes);
    state = State.FAILED; // until it succeeds: one attempt only
    for (Volume v : ordered) {
      if (v.isClosed()) {
        throw new AlreadyClosedException("volume was closed after the snapshot set was prepared: " + v);
      }
    }
    long t0 = System.nanoTime();
    long deadline = t0 + holdTimeout.toNanos();
    List<Volume> held = new ArrayList<>();
    List<Snapshot> created = new ArrayList<>();
    long id = 0;
    try {
      for (Volume v : ordered) {
        boolean got;
        try {
          got = v.locks().hold.writeLock().tryLock(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new VolumeException("interrupted while holding writes on " + v.directory());
        }
        if (!got) {
          throw new VolumeException("could not hold the I/O of " + v.directory() + " within " + holdTimeout.toMillis()
              + " ms; no snapshot was taken");
        }
        held.add(v);
        v.locks().ensureOpen();
      }
      for (Volume v : ordered) {
        id = Math.max(id, v.chain().nextId());
      }
      String snapName = name != null ? name : "s" + id;
      for (Volume v : ordered) {
        if (v.chain().find(snapName) != null) {
          throw new VolumeException("volume " + v.name() + " already has a snapshot named '" + snapName + "'");
        }
      }
      boolean isSet = ordered.size() > 1;
      String setId = isSet ? UUID.randomUUID().toString() : null;
      List<String> members = new ArrayList<>();
      if (isSet) {
        for (Volume v : ordered) {
          members.add(v.uuid());
        }
      }
      long now = System.currentTimeMillis();
      long tHeld = System.nanoTime();
      for (Volume v : ordered) {
        v.writeBehind().drain();
      }
      long tDrained = System.nanoTime();
      if (durable) {
        for (Volume v : ordered) {
          v.writer().flushOrigin(); // what was written since the early flush
        }
      }
      long tFlushed = System.nanoTime();
      long[] createSeq = new long[ordered.size()];
      try {
        for (int i = 0; i < ordered.size(); i++) {
          if (i > 0 && MEMBER_PAUSE_MS > 0) {
            pause();
          }
          JournalRecord.Create rec = new JournalRecord.Create(id, now, snapName, setId, members, attrs);
          if (durable) {
            created.add(ordered.get(i).chain().create(rec));
          } else {
            created.add(ordered.get(i).chain().createNotDurable(rec, createSeq, i));
          }
        }
      } catch (IOException | RuntimeException e) {
        for (int i = 0; i < created.size(); i++) {
          try {
            ordered.get(i).chain().delete(created.get(i));
          } catch (IOException | RuntimeException suppressed) {
            e.addSuppressed(suppressed);
          }
        }
        created.clear();
        throw e;
      }
      long[] completeSeq = new long[ordered.size()];
      if (isSet && durable) {
        for (int i = 0; i < ordered.size(); i++) {
          completeSeq[i] = ordered.get(i).chain().markSetComplete(created.get(i));
        }
      }
      List<SnapshotInfo> out = new ArrayList<>();
      for (Volume v : volumes) {
        out.add(v.chain().info(v.chain().byId(id)));
      }
      long tRecorded = System.nanoTime();
      release(held);
      held.clear();
      long tReleased = System.nanoTime();
      if (LOG.isDebugEnabled()) {
        LOG.debug("snapshot {} of {}: prepare flush {} us (drain {} us), hold wait {} us, write-behind drain {} us,"
            + " origin flush {} us, record {} us, fold and release {} us", snapName, names(), prepareNanos / 1000,
            prepareDrainNanos / 1000, (tHeld - t0) / 1000, (tDrained - tHeld) / 1000, (tFlushed - tDrained) / 1000,
            (tRecorded - tFlushed) / 1000, (tReleased - tRecorded) / 1000);
      }
      if (!durable) {
        // "set complete" waits for makeDurable: a crash before it must find no member marked
        // complete, or a member whose create became durable alone (with a copy-on-write
        // record) would be kept without the others
        deferredSeq = createSeq;
        deferredSet = isSet ? List.copyOf(created) : null;
      } else if (isSet) {
        // after the hold: make "set complete" durable before anyone may delete a member on purpose
        for (int i = 0; i < ordered.size(); i++) {
          try {
            ordered.get(i).journal().sync(completeSeq[i]);
          } catch (IOException e) {
            LOG.warn("{}: could not record that snapshot set {} is complete (a later open of all its volumes does): {}",
                ordered.get(i).name(), setId, e.toString());
          }
        }
      }
      state = State.COMMITTED;
      return out;
    } finally {
      release(held);
    }
  }

  private static void pause() throws VolumeException {
    try {
      Thread.sleep(MEMBER_PAUSE_MS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new VolumeException("interrupted between the members of a snapshot set");
    }
  }

  /** Folds where due and releases the holds of {@code held}. */
  private static void release(List<Volume> held) {
    for (Volume v : held) {
      try {
        v.chain().maybeFold();
      } catch (IOException e) {
        LOG.warn("{}: could not fold the journal into the checkpoint: {}", v.directory(), e.getMessage());
      } finally {
        v.locks().hold.writeLock().unlock();
      }
    }
  }

  /**
   * Gives the set up without taking a snapshot; nothing is held between prepare and commit, so
   * there is nothing to undo. Idempotent; after a commit it does nothing.
   */
  public synchronized void abort() {
    if (state == State.PREPARED) {
      state = State.ABORTED;
    }
  }

  /** Aborts unless committed: for try-with-resources around prepare and commit. */
  @Override
  public void close() {
    abort();
  }

  private String names() {
    List<String> n = new ArrayList<>();
    for (Volume v : volumes) {
      n.add(v.name());
    }
    return n.toString();
  }

  @Override
  public synchronized String toString() {
    return "PreparedSnapshotSet(" + names() + ", " + state.name().toLowerCase() + ")";
  }
}
