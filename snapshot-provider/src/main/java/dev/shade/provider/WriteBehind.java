package dev.shade.provider;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * First writes after a snapshot whose old contents are already copied, held in memory until
 * the journal frame naming the copies is durable, then applied to the origin.
 *
 * <p>Invariant 2 says the origin may not change before the copy of its old contents is
 * durable. Waiting for that inside every write puts a device flush in the path of each first
 * write; holding the new contents here instead, like a database buffer pool holds a dirty
 * page until the log is flushed up to it (PostgreSQL's WAL rule), lets the write return once
 * the copy is written and its record appended. A committer thread syncs the journal for the
 * whole batch at once and then writes the held blocks to the origin. Reads of a held block
 * are served from here. A flush, a snapshot create or delete, a revert and close first commit
 * and apply everything held, so nothing above this class sees the difference except that
 * writes return sooner.
 *
 * <p>Thread-safe. Entries are added by writers holding the block's stripe lock, and applied
 * and removed by the committer holding it too; readers of a held block hold it for reading.
 */
final class WriteBehind implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(WriteBehind.class);

  /** One held block: its copy's location and the block's new contents. */
  static final class Entry {
    final long block;
    final Snapshot snap;
    final int slot;
    final int crc;
    /** Journal sequence of the copy's record. */
    final long seq;
    /** The whole block as it now reads (old contents with the writes laid over them). */
    final ByteBuffer data;
    /** The byte range of {@link #data} written since it was held: what the origin needs. */
    int lo;
    int hi;

    Entry(long block, Snapshot snap, int slot, int crc, long seq, ByteBuffer data) {
      this.block = block;
      this.snap = snap;
      this.slot = slot;
      this.crc = crc;
      this.seq = seq;
      this.data = data;
      this.lo = data.capacity();
      this.hi = 0;
    }

    /** Lays {@code src} over the block at {@code within}. Caller holds the block's stripe. */
    void merge(int within, ByteBuffer src) {
      int n = src.remaining();
      data.put(within, src, src.position(), n);
      lo = Math.min(lo, within);
      hi = Math.max(hi, within + n);
    }
  }

  /** Makes the batch's records durable and applies its entries; see CowWriter#commitHeld. */
  @FunctionalInterface
  interface Committer {
    void commit(List<Entry> batch, long upToSeq) throws IOException;
  }

  private final ConcurrentHashMap<Long, Entry> held = new ConcurrentHashMap<>();
  private final AtomicLong heldBytes = new AtomicLong();
  private final long maxBytes;
  private final int blockSize;
  private final ConcurrentLinkedQueue<ByteBuffer> pool = new ConcurrentLinkedQueue<>();
  private final AtomicLong pooled = new AtomicLong();
  private final Committer committer;
  /**
   * One batch at a time, by the committer thread or by whoever drains. Fair: under a steady
   * stream of first writes the committer takes batch after batch, and a drain (a flush, a
   * snapshot) would otherwise wait behind several of them instead of the one under way.
   */
  private final ReentrantLock commitLock = new ReentrantLock(true);
  private final ExecutorService thread;
  private final AtomicBoolean scheduled = new AtomicBoolean();
  /** Whether the last background commit failed (logged once per run of failures). */
  private volatile boolean failing;

  WriteBehind(String name, int blockSize, long maxBytes, Committer committer) {
    this.blockSize = blockSize;
    this.maxBytes = maxBytes;
    this.committer = committer;
    this.thread = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "volume-commit " + name);
      t.setDaemon(true);
      return t;
    });
  }

  boolean isEmpty() {
    return held.isEmpty();
  }

  /** The held entry of {@code block}, or null. */
  Entry get(long block) {
    return held.get(block);
  }

  /** How many diff slots the held blocks of {@code s} fill (its table does not count them yet). */
  int slotsHeldFor(Snapshot s) {
    if (held.isEmpty()) {
      return 0;
    }
    int n = 0;
    for (Entry e : held.values()) {
      if (e.snap == s && e.slot != Snapshot.ZERO_SLOT && !s.contains(e.block)) { // not yet published
        n++;
      }
    }
    return n;
  }

  /** Whether {@code blocks} more may be held now (otherwise the writer commits by itself). */
  boolean hasRoom(int blocks) {
    return heldBytes.get() + (long) blocks * blockSize <= maxBytes;
  }

  /** A buffer of {@code length} bytes (a block, or the volume's short last block) for a new entry. */
  ByteBuffer buffer(int length) {
    ByteBuffer b = length == blockSize ? pool.poll() : null;
    if (b == null) {
      return ByteBuffer.allocateDirect(length);
    }
    pooled.decrementAndGet();
    return b.clear();
  }

  /** Gives back a buffer from {@link #buffer} that is no longer held. */
  void release(ByteBuffer b) {
    if (b != null && b.capacity() == blockSize && pooled.get() * (long) blockSize < maxBytes) {
      pooled.incrementAndGet();
      pool.add(b);
    }
  }

  /**
   * Holds {@code e}. The caller appended its record and calls this inside
   * {@code synchronized (this)}, so a batch taken under the same monitor holds every entry
   * whose record it syncs.
   */
  void add(Entry e) {
    heldBytes.addAndGet(blockSize);
    held.put(e.block, e);
  }

  /** Forgets an applied entry; caller holds its stripe, so no reader still copies from it. */
  void remove(Entry e) {
    if (held.remove(e.block, e)) {
      heldBytes.addAndGet(-blockSize);
      release(e.data);
    }
  }

  /** Starts a background commit unless one is already on its way. */
  void kick() {
    if (scheduled.compareAndSet(false, true)) {
      try {
        thread.execute(this::background);
      } catch (java.util.concurrent.RejectedExecutionException e) {
        scheduled.set(false); // closing: close drains
      }
    }
  }

  private void background() {
    while (true) {
      try {
        commitOnce();
        failing = false;
      } catch (IOException | RuntimeException e) {
        if (!failing) {
          LOG.warn("committing held writes failed; they stay held and the next flush reports it: {}", e.toString());
        }
        failing = true;
        scheduled.set(false);
        return; // the next write or flush tries again
      }
      scheduled.set(false);
      if (held.isEmpty() || !scheduled.compareAndSet(false, true)) {
        return;
      }
    }
  }

  /**
   * Commits and applies everything held when called. One batch taken after the call began is
   * enough: entries held before it are in that batch unless a commit already applied them.
   * Throws what the commit failed with; the entries then stay held.
   */
  void drain() throws IOException {
    commitOnce();
  }

  private void commitOnce() throws IOException {
    commitLock.lock();
    try {
      List<Entry> batch;
      long upTo = 0;
      synchronized (this) {
        if (held.isEmpty()) {
          return;
        }
        batch = new ArrayList<>(held.values());
        for (Entry e : batch) {
          upTo = Math.max(upTo, e.seq);
        }
      }
      batch.sort(Comparator.comparingLong(e -> e.block));
      committer.commit(batch, upTo);
    } finally {
      commitLock.unlock();
    }
  }

  /** Applies everything held, then stops the committer thread. */
  @Override
  public void close() throws IOException {
    try {
      drain();
    } finally {
      thread.shutdown();
      try {
        if (!thread.awaitTermination(30, TimeUnit.SECONDS)) {
          LOG.warn("the committer thread did not stop within 30 s");
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
