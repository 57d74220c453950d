package dev.shade.provider;

import dev.shade.nativeio.AtomicFile;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.nativeio.AlreadyClosedException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The phases of a snapshot set, their misuse, and reconciliation of sets a crash left incomplete. */
class SnapshotSetTest {
  private static final long SIZE = 1 << 20;
  private static final Duration HOLD = Duration.ofSeconds(5);

  @TempDir Path tmp;
  private final List<Volume> open = new ArrayList<>();

  @AfterEach
  void closeAll() throws IOException {
    for (Volume v : open) {
      v.close();
    }
  }

  private Volume create(String name) throws IOException {
    Volume v = Volume.create(tmp.resolve(name), VolumeConfig.of(SIZE).withBlockSize(4096).withDiffMax(4 * SIZE));
    open.add(v);
    return v;
  }

  private List<Volume> reopen(List<Volume> vols, boolean together) throws IOException {
    List<Path> dirs = new ArrayList<>();
    for (Volume v : vols) {
      dirs.add(v.directory());
      v.close();
    }
    open.clear();
    List<Volume> out = together ? Volume.openAll(dirs) : new ArrayList<>();
    if (!together) {
      for (Path d : dirs) {
        out.add(Volume.open(d));
      }
    }
    open.addAll(out);
    return out;
  }

  private static void write(Volume v, long offset, int value) throws IOException {
    byte[] b = new byte[4096];
    java.util.Arrays.fill(b, (byte) value);
    v.write(offset, ByteBuffer.wrap(b));
  }

  private static byte[] read(BlockSource s, long offset) throws IOException {
    byte[] b = new byte[4096];
    s.read(offset, ByteBuffer.wrap(b));
    return b;
  }

  @Test
  void commit_returnsOneSnapshotPerMemberInCallerOrder() throws IOException {
    Volume b = create("b");
    Volume a = create("a");
    write(a, 0, 1);
    PreparedSnapshotSet set = SnapshotSet.prepare(List.of(b, a));
    write(a, 0, 2); // after prepare, before commit: the set holds it
    write(b, 0, 3);
    List<SnapshotInfo> infos = set.commit("nightly", HOLD);
    assertEquals(2, infos.size());
    assertEquals(b.snapshot("nightly"), infos.get(0), "first result is the first volume's");
    assertEquals(a.snapshot("nightly"), infos.get(1));
    assertEquals(infos.get(0).id(), infos.get(1).id(), "one id for the set");
    assertEquals(infos.get(0).created(), infos.get(1).created());
    assertNotNull(infos.get(0).setId());
    assertEquals(infos.get(0).setId(), infos.get(1).setId());
    write(a, 0, 4);
    try (BlockSource s = a.openSnapshot("nightly")) {
      assertEquals(2, read(s, 0)[0], "the set holds what was written between prepare and commit");
    }
    try (BlockSource s = b.openSnapshot("nightly")) {
      assertEquals(3, read(s, 0)[0]);
    }
  }

  @Test
  void commitDeferringDurability_writesNothingInTheHoldAndMakeDurableKeepsTheSet() throws IOException {
    Volume b = create("b");
    Volume a = create("a");
    write(a, 0, 1);
    write(b, 4096, 2);
    PreparedSnapshotSet set = SnapshotSet.prepare(List.of(a, b));
    long journalA = a.journal().size();
    long journalB = b.journal().size();
    List<SnapshotInfo> infos = set.commitDeferringDurability("s1", HOLD, java.util.Map.of("shade.requestor", "pending"));
    assertEquals(journalA, a.journal().size(), "nothing written to a's journal in the hold");
    assertEquals(journalB, b.journal().size(), "nothing written to b's journal in the hold");
    assertEquals("pending", a.snapshot("s1").attributes().get("shade.requestor"));
    write(a, 0, 3); // copy-on-write of the deferred snapshot: its record goes with the copy's
    set.makeDurable();
    assertTrue(b.journal().size() > journalB, "b's create record written by makeDurable");
    set.makeDurable(); // nothing left: returns
    List<Volume> again = reopen(List.of(a, b), true);
    try (BlockSource s = again.get(0).openSnapshot("s1")) {
      assertEquals(1, read(s, 0)[0], "the snapshot holds what was there before the commit");
    }
    try (BlockSource s = again.get(1).openSnapshot("s1")) {
      assertEquals(2, read(s, 4096)[0]);
    }
    assertEquals(infos.get(0).id(), again.get(0).snapshot("s1").id());
    assertEquals(3, read(again.get(0), 0)[0], "the origin has the write after the commit");
    assertNotNull(again.get(1).snapshot("s1").setId(), "the set is complete on both members");
  }

  @Test
  void makeDurable_beforeCommit_throws_afterADurableCommit_returns() throws IOException {
    Volume a = create("a");
    PreparedSnapshotSet set = SnapshotSet.prepare(List.of(a));
    assertThrows(IllegalStateException.class, set::makeDurable);
    long before = a.journal().size();
    set.commit("s1", HOLD);
    assertTrue(a.journal().size() > before, "a plain commit writes its record in the hold");
    set.makeDurable();
  }

  @Test
  void commit_twice_throws() throws IOException {
    Volume a = create("a");
    PreparedSnapshotSet set = SnapshotSet.prepare(List.of(a));
    set.commit("one", HOLD);
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> set.commit("two", HOLD));
    assertTrue(e.getMessage().contains("already committed"), e.getMessage());
    assertEquals(List.of("one"), names(a));
  }

  @Test
  void commit_afterAbort_throws() throws IOException {
    Volume a = create("a");
    PreparedSnapshotSet set = SnapshotSet.prepare(List.of(a));
    set.abort();
    set.abort(); // idempotent
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> set.commit("one", HOLD));
    assertTrue(e.getMessage().contains("aborted"), e.getMessage());
    assertEquals(List.of(), names(a));
  }

  @Test
  void commit_volumeClosedSincePrepare_throwsAndTakesNothing() throws IOException {
    Volume a = create("a");
    Volume b = create("b");
    PreparedSnapshotSet set = SnapshotSet.prepare(List.of(a, b));
    b.close();
    AlreadyClosedException e = assertThrows(AlreadyClosedException.class, () -> set.commit("x", HOLD));
    assertTrue(e.getMessage().contains(b.directory().toString()), e.getMessage());
    assertEquals(List.of(), names(a));
    assertThrows(IllegalStateException.class, () -> set.commit("x", HOLD), "one-shot even after a failure");
  }

  @Test
  void commit_holdTimeout_takesNothing() throws Exception {
    Volume a = create("a");
    Volume b = create("b");
    CountDownLatch holding = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    Thread reader = new Thread(() -> {
      b.locks().hold.readLock().lock(); // an I/O that does not finish
      holding.countDown();
      try {
        release.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      } finally {
        b.locks().hold.readLock().unlock();
      }
    });
    reader.start();
    holding.await();
    PreparedSnapshotSet set = SnapshotSet.prepare(List.of(a, b));
    VolumeException e = assertThrows(VolumeException.class, () -> set.commit("x", Duration.ofMillis(100)));
    assertTrue(e.getMessage().contains("could not hold the I/O of " + b.directory()), e.getMessage());
    release.countDown();
    reader.join();
    assertEquals(List.of(), names(a));
    assertEquals(List.of(), names(b));
    write(a, 0, 1); // both volumes work on
    write(b, 0, 1);
  }

  @Test
  void close_uncommitted_aborts() throws IOException {
    Volume a = create("a");
    PreparedSnapshotSet kept;
    try (PreparedSnapshotSet set = SnapshotSet.prepare(List.of(a))) {
      kept = set;
    }
    assertThrows(IllegalStateException.class, () -> kept.commit("x", HOLD));
    assertEquals(List.of(), names(a));
  }

  @Test
  void openAll_missingVolume_closesTheOpenedOnes() throws IOException {
    Volume a = create("a");
    Path dir = a.directory();
    a.close();
    open.clear();
    assertThrows(VolumeException.class, () -> Volume.openAll(List.of(dir, tmp.resolve("missing"))));
    Volume.open(dir).close(); // not left open (locked) by the failed openAll
  }

  @Test
  void prepare_sameVolumeTwice_throws() throws IOException {
    Volume a = create("a");
    assertThrows(IllegalArgumentException.class, () -> SnapshotSet.prepare(List.of(a, a)));
    assertThrows(IllegalArgumentException.class, () -> SnapshotSet.prepare(List.of()));
  }

  @Test
  void commit_nameTakenOnOneMember_takesNothing() throws IOException {
    Volume a = create("a");
    Volume b = create("b");
    b.createSnapshot("x");
    PreparedSnapshotSet set = SnapshotSet.prepare(List.of(a, b));
    assertThrows(VolumeException.class, () -> set.commit("x", HOLD));
    assertEquals(List.of(), names(a));
    assertThrows(IllegalArgumentException.class, () -> SnapshotSet.prepare(List.of(a)).commit("no/slash", HOLD));
  }

  @Test
  void createSnapshotSet_wrapper_survivesReopenTogether() throws IOException {
    Volume a = create("a");
    Volume b = create("b");
    List<SnapshotInfo> set = Volume.createSnapshotSet(List.of(a, b), null);
    List<Volume> again = reopen(List.of(a, b), true);
    assertEquals(set.get(0), again.get(0).snapshots().get(0));
    assertEquals(set.get(1), again.get(1).snapshots().get(0));
    SnapshotSet.Reconciliation r = SnapshotSet.reconcile(again);
    assertEquals(List.of(), r.removed());
    assertEquals(List.of(), r.unverified());
  }

  /** What a crash between the members' records leaves: the create on the first members only. */
  private static Snapshot createOn(Volume v, long id, String name, String setId, List<String> members) throws IOException {
    v.locks().hold.writeLock().lock();
    try {
      return v.chain().create(new JournalRecord.Create(id, System.currentTimeMillis(), name, setId, members));
    } finally {
      v.locks().hold.writeLock().unlock();
    }
  }

  @Test
  void openAll_setOnSomeMembersOnly_isDeletedFromThem() throws IOException {
    Volume a = create("a");
    Volume b = create("b");
    Volume c = create("c");
    write(a, 0, 7);
    a.createSnapshot("keep");
    String setId = UUID.randomUUID().toString();
    List<String> members = List.of(a.uuid(), b.uuid(), c.uuid());
    createOn(a, 5, "torn", setId, members);
    createOn(b, 5, "torn", setId, members);
    write(a, 0, 8); // the torn member's copy
    List<Volume> again = reopen(List.of(a, b, c), true);
    assertEquals(List.of("keep"), names(again.get(0)));
    assertEquals(List.of(), names(again.get(1)));
    assertEquals(List.of(), names(again.get(2)));
    try (BlockSource s = again.get(0).openSnapshot("keep")) {
      assertEquals(7, read(s, 0)[0], "the older snapshot got the merged copy back");
    }
    assertEquals(4096, again.get(0).snapshot("keep").diffBytes());
    List<Volume> third = reopen(again, false);
    assertEquals(List.of("keep"), names(third.get(0)), "the delete was journaled");
  }

  @Test
  void reconcile_reportsRemovedSet() throws IOException {
    Volume a = create("a");
    Volume b = create("b");
    String setId = UUID.randomUUID().toString();
    createOn(a, 3, "torn", setId, List.of(a.uuid(), b.uuid()));
    SnapshotSet.Reconciliation r = SnapshotSet.reconcile(List.of(a, b));
    assertEquals(1, r.removed().size());
    SnapshotSet.SetReport rep = r.removed().get(0);
    assertEquals(setId, rep.setId());
    assertEquals("torn", rep.snapshotName());
    assertEquals(3, rep.snapshotId());
    assertEquals(List.of(a.uuid()), rep.presentOn());
    assertEquals(List.of(b.uuid()), rep.missingFrom());
    assertEquals(List.of(), names(a));
    assertEquals(new SnapshotSet.Reconciliation(List.of(), List.of()), SnapshotSet.reconcile(List.of(a, b)));
  }

  @Test
  void reconcile_memberNotOpened_keepsAndReports() throws IOException {
    Volume a = create("a");
    Volume b = create("b");
    String setId = UUID.randomUUID().toString();
    createOn(a, 1, "half", setId, List.of(a.uuid(), b.uuid()));
    SnapshotSet.Reconciliation r = SnapshotSet.reconcile(List.of(a));
    assertEquals(List.of(), r.removed());
    assertEquals(1, r.unverified().size());
    assertEquals(List.of(b.uuid()), r.unverified().get(0).missingFrom());
    assertEquals(List.of("half"), names(a), "kept: the other member may hold it");
    // with both: removed
    assertEquals(1, SnapshotSet.reconcile(List.of(a, b)).removed().size());
    assertEquals(List.of(), names(a));
  }

  @Test
  void reconcile_wholeSetUnmarked_isMarkedComplete() throws IOException {
    Volume a = create("a");
    Volume b = create("b");
    String setId = UUID.randomUUID().toString();
    List<String> members = List.of(a.uuid(), b.uuid());
    createOn(a, 1, "whole", setId, members); // both records, crash before "set complete"
    createOn(b, 1, "whole", setId, members);
    assertEquals(new SnapshotSet.Reconciliation(List.of(), List.of()), SnapshotSet.reconcile(List.of(a, b)));
    a.deleteSnapshot("whole"); // on purpose, later
    List<Volume> again = reopen(List.of(a, b), true);
    assertEquals(List.of("whole"), names(again.get(1)), "a complete set is not reconciled away");
  }

  @Test
  void openAll_memberDeletedOnPurpose_keepsTheOthers() throws IOException {
    Volume a = create("a");
    Volume b = create("b");
    Volume.createSnapshotSet(List.of(a, b), "daily");
    b.deleteSnapshot("daily");
    List<Volume> again = reopen(List.of(a, b), true);
    assertEquals(List.of("daily"), names(again.get(0)));
    assertEquals(List.of(), names(again.get(1)));
  }

  @Test
  void createRecord_withoutMembers_keepsFormatOne() {
    ByteBuffer buf = ByteBuffer.allocate(256);
    new JournalRecord.Create(4, 99, "s4", null).encode(buf);
    assertEquals(JournalRecord.CREATE, buf.get(0), "a single snapshot's record is as before");
    buf.flip();
    assertEquals(new JournalRecord.Create(4, 99, "s4", null, List.of()), JournalRecord.decode(buf));
    ByteBuffer set = ByteBuffer.allocate(256);
    JournalRecord.Create rec = new JournalRecord.Create(4, 99, "s4", "set-1", List.of("u1", "u2"));
    rec.encode(set);
    assertEquals(JournalRecord.CREATE_MEMBER, set.get(0));
    set.flip();
    assertEquals(rec, JournalRecord.decode(set));
  }

  @Test
  void checkpointVersionOne_isStillRead() throws IOException {
    Volume a = create("a");
    a.createSnapshot("old");
    Path dir = a.directory();
    a.close();
    open.clear();
    // rewrite the checkpoint in version 1: no members, no complete flag
    Checkpoint.State state = Checkpoint.read(dir);
    java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
    java.io.DataOutputStream out = new java.io.DataOutputStream(bytes);
    out.writeInt(0x5348434b);
    out.writeInt(1);
    out.writeLong(state.generation());
    out.writeLong(state.nextId());
    out.writeLong(-1);
    out.writeInt(1);
    Snapshot s = state.snapshots().get(0);
    out.writeLong(s.id);
    out.writeLong(s.createdMillis);
    out.writeUTF(s.name);
    out.writeUTF("legacy-set");
    out.writeInt(0);
    out.flush();
    java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
    crc.update(bytes.toByteArray());
    out.writeInt((int) crc.getValue());
    out.flush();
    AtomicFile.write(dir.resolve(Checkpoint.FILE), bytes.toByteArray(), 0600);
    List<Volume> again = Volume.openAll(List.of(dir));
    open.addAll(again);
    assertEquals("legacy-set", again.get(0).snapshot("old").setId());
    assertEquals(List.of("old"), names(again.get(0)), "a set without members is never reconciled");
  }

  private static List<String> names(Volume v) {
    List<String> n = new ArrayList<>();
    for (SnapshotInfo s : v.snapshots()) {
      n.add(s.name());
    }
    return n;
  }

  @Test
  void reopenSeparately_thenTogether_sameResult() throws IOException {
    Volume a = create("a");
    Volume b = create("b");
    write(a, 4096, 9);
    List<SnapshotInfo> set = Volume.createSnapshotSet(List.of(a, b), "t");
    List<Volume> again = reopen(List.of(a, b), false);
    assertEquals(set.get(0).setId(), again.get(0).snapshot("t").setId());
    try (BlockSource s = again.get(0).openSnapshot("t")) {
      assertArrayEquals(read(again.get(0), 4096), read(s, 4096));
    }
  }

  private static byte[] read(Volume v, long offset) throws IOException {
    byte[] b = new byte[4096];
    v.read(offset, ByteBuffer.wrap(b));
    return b;
  }
}
