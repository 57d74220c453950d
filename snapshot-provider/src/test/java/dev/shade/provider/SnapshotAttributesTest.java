package dev.shade.provider;

import dev.shade.nativeio.AtomicFile;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.provider.reliability.VolumeCopies;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Durable per-snapshot attributes: at create, replaced, limits, and across every kind of reopen. */
class SnapshotAttributesTest {
  private static final long SIZE = 1 << 20;
  private static final Map<String, String> LABEL = ordered("backup_label", "START WAL LOCATION: 0/2000028\nCHECKPOINT LOCATION: 0/2000060\n",
      "writer", "postgresql", "shade.schedule", "nightly");

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

  private Volume reopen(Volume v) throws IOException {
    v.close();
    open.remove(v);
    Volume again = Volume.open(v.directory());
    open.add(again);
    return again;
  }

  /** Opens a copy of {@code v}'s files as a crash now would leave them (journal not folded). */
  private Volume crashCopy(Volume v, String name) throws IOException {
    Path copy = tmp.resolve(name);
    VolumeCopies.copyOpen(v.directory(), copy);
    Volume again = Volume.open(copy);
    open.add(again);
    return again;
  }

  private static Map<String, String> ordered(String... kv) {
    Map<String, String> m = new LinkedHashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      m.put(kv[i], kv[i + 1]);
    }
    return m;
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
  void create_withAttributes_returnsThemInOrder() throws IOException {
    Volume v = create("v");
    SnapshotInfo s = v.createSnapshot("a", LABEL);
    assertEquals(LABEL, s.attributes());
    assertEquals(List.copyOf(LABEL.keySet()), List.copyOf(s.attributes().keySet()), "insertion order is kept");
    assertEquals(LABEL, v.snapshot("a").attributes());
    assertThrows(UnsupportedOperationException.class, () -> s.attributes().put("x", "y"));
  }

  @Test
  void create_without_hasEmptyMap() throws IOException {
    Volume v = create("v");
    assertEquals(Map.of(), v.createSnapshot("a").attributes());
    assertEquals(Map.of(), v.createSnapshot("b", null).attributes());
    assertEquals(Map.of(), new SnapshotInfo(1, "x", java.time.Instant.EPOCH, 0, null).attributes());
  }

  @Test
  void set_replacesTheWholeMap() throws IOException {
    Volume v = create("v");
    v.createSnapshot("a", LABEL);
    SnapshotInfo s = v.setSnapshotAttributes(SnapshotRef.ofName("a"), Map.of("only", "this"));
    assertEquals(Map.of("only", "this"), s.attributes());
    assertEquals(Map.of("only", "this"), v.snapshot("a").attributes());
    assertEquals(Map.of(), v.setSnapshotAttributes(SnapshotRef.ofId(s.id()), Map.of()).attributes());
    assertEquals(Map.of(), reopen(v).snapshot("a").attributes());
  }

  @Test
  void set_unknownSnapshot_notFound() throws IOException {
    Volume v = create("v");
    v.createSnapshot("a");
    assertThrows(SnapshotNotFoundException.class, () -> v.setSnapshotAttributes(SnapshotRef.ofName("b"), Map.of("k", "v")));
    assertThrows(SnapshotNotFoundException.class, () -> v.setSnapshotAttributes(SnapshotRef.ofId(99), Map.of("k", "v")));
  }

  @Test
  void largeValue_100KiB_survivesReplayAndFold() throws IOException {
    Volume v = create("v");
    StringBuilder big = new StringBuilder();
    while (big.length() < 100 * 1024) {
      big.append("line ").append(big.length()).append(" é€\n");
    }
    Map<String, String> attrs = Map.of("big", big.toString());
    v.createSnapshot("a", attrs);
    v.createSnapshot("b");
    v.setSnapshotAttributes(SnapshotRef.ofName("b"), attrs);
    Volume crashed = crashCopy(v, "crashed");
    assertEquals(attrs, crashed.snapshot("a").attributes());
    assertEquals(attrs, crashed.snapshot("b").attributes());
    Volume again = reopen(v);
    assertEquals(attrs, again.snapshot("a").attributes());
    assertEquals(attrs, again.snapshot("b").attributes());
  }

  @Test
  void limits_rejectedNamingTheKey() throws IOException {
    Volume v = create("v");
    v.createSnapshot("a");
    SnapshotRef a = SnapshotRef.ofName("a");
    for (String key : new String[] {"", "has space", "slash/", "ü", "k".repeat(201)}) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> v.setSnapshotAttributes(a, Map.of(key, "v")), key);
      assertTrue(e.getMessage().contains("'" + key + "'"), e.getMessage());
    }
    v.setSnapshotAttributes(a, Map.of("k".repeat(200), "v"));
    Map<String, String> tooBig = ordered("first", "x".repeat(200 * 1024), "second", "y".repeat(60 * 1024));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> v.setSnapshotAttributes(a, tooBig));
    assertTrue(e.getMessage().contains("'second'"), e.getMessage());
    Map<String, String> nullValue = new LinkedHashMap<>();
    nullValue.put("empty", null);
    assertTrue(assertThrows(IllegalArgumentException.class, () -> v.setSnapshotAttributes(a, nullValue))
        .getMessage().contains("'empty'"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> v.setSnapshotAttributes(a, Map.of("bad", "\ud800")))
        .getMessage().contains("'bad'"));
    assertThrows(IllegalArgumentException.class, () -> v.createSnapshot("b", Map.of("bad key", "v")));
    assertEquals(List.of("a"), v.snapshots().stream().map(SnapshotInfo::name).toList(), "nothing was taken");
    assertEquals(Map.of("k".repeat(200), "v"), v.snapshot("a").attributes(), "the rejected maps changed nothing");
    // exactly at the limit: 4 + (2 + 1 + 4 + n) bytes
    Map<String, String> atLimit = Map.of("z", "z".repeat(Attributes.MAX_ENCODED - 11));
    assertEquals(atLimit, v.setSnapshotAttributes(a, atLimit).attributes());
    assertEquals(atLimit, reopen(v).snapshot("a").attributes());
  }

  @Test
  void survive_reopen_replayWithoutCheckpoint_andFold() throws IOException {
    Volume v = create("v");
    write(v, 0, 1);
    v.createSnapshot("a", LABEL);
    write(v, 0, 2);
    v.createSnapshot("b", Map.of("k", "1"));
    v.setSnapshotAttributes(SnapshotRef.ofName("b"), Map.of("k", "2"));
    assertTrue(v.journalBytes() > 0, "the records are in the journal, not the checkpoint");
    Volume crashed = crashCopy(v, "crashed"); // replay of the journal over the creation's empty checkpoint
    assertEquals(LABEL, crashed.snapshot("a").attributes());
    assertEquals(Map.of("k", "2"), crashed.snapshot("b").attributes());
    assertEquals(0, crashed.journalBytes(), "open folded the replay");
    Volume again = reopen(crashed); // from the checkpoint alone
    assertEquals(LABEL, again.snapshot("a").attributes());
    assertEquals(Map.of("k", "2"), again.snapshot("b").attributes());
    assertEquals(List.copyOf(LABEL.keySet()), List.copyOf(again.snapshot("a").attributes().keySet()));
    Volume closed = reopen(v);
    assertEquals(Map.of("k", "2"), closed.snapshot("b").attributes());
  }

  @Test
  void deleteOfNeighbour_keepsTheSurvivorsOwn() throws IOException {
    Volume v = create("v");
    write(v, 0, 1);
    v.createSnapshot("a", Map.of("who", "a"));
    write(v, 0, 2);
    v.createSnapshot("b", Map.of("who", "b"));
    write(v, 0, 3);
    v.createSnapshot("c", Map.of("who", "c"));
    write(v, 4096, 4);
    v.deleteSnapshot("b"); // merges b's entries into a
    assertEquals(Map.of("who", "a"), v.snapshot("a").attributes());
    assertEquals(Map.of("who", "c"), v.snapshot("c").attributes());
    Volume crashed = crashCopy(v, "crashed");
    assertEquals(Map.of("who", "a"), crashed.snapshot("a").attributes());
    assertEquals(Map.of("who", "c"), crashed.snapshot("c").attributes());
    Volume again = reopen(v);
    assertEquals(Map.of("who", "a"), again.snapshot("a").attributes());
    try (BlockSource s = again.openSnapshot("a")) {
      assertEquals(1, read(s, 0)[0]);
    }
  }

  @Test
  void revert_keepsTheTargetsAndOlder() throws IOException {
    Volume v = create("v");
    write(v, 0, 1);
    v.createSnapshot("a", Map.of("who", "a"));
    write(v, 0, 2);
    v.createSnapshot("b", Map.of("who", "b"));
    write(v, 0, 3);
    v.createSnapshot("c", Map.of("who", "c"));
    write(v, 0, 4);
    v.revert("b", Progress.NONE);
    assertEquals(List.of("a", "b"), v.snapshots().stream().map(SnapshotInfo::name).toList());
    assertEquals(Map.of("who", "a"), v.snapshot("a").attributes());
    assertEquals(Map.of("who", "b"), v.snapshot("b").attributes());
    Volume crashed = crashCopy(v, "crashed");
    assertEquals(Map.of("who", "b"), crashed.snapshot("b").attributes());
    Volume again = reopen(v);
    assertEquals(Map.of("who", "a"), again.snapshot("a").attributes());
    assertEquals(Map.of("who", "b"), again.snapshot("b").attributes());
  }

  @Test
  void setCommit_givesEveryMemberTheAttributes_andReconcileKeepsThem() throws IOException {
    Volume a = create("a");
    Volume b = create("b");
    List<SnapshotInfo> set;
    try (PreparedSnapshotSet p = SnapshotSet.prepare(List.of(a, b))) {
      set = p.commit("daily", Duration.ofSeconds(5), LABEL);
    }
    assertEquals(LABEL, set.get(0).attributes());
    assertEquals(LABEL, set.get(1).attributes());
    assertEquals(set.get(0).setId(), set.get(1).setId());
    Path ca = tmp.resolve("ca");
    Path cb = tmp.resolve("cb");
    VolumeCopies.copyOpen(a.directory(), ca);
    VolumeCopies.copyOpen(b.directory(), cb);
    List<Volume> crashed = Volume.openAll(List.of(ca, cb));
    open.addAll(crashed);
    assertEquals(LABEL, crashed.get(0).snapshot("daily").attributes());
    assertEquals(LABEL, crashed.get(1).snapshot("daily").attributes());
    List<SnapshotInfo> wrapped = Volume.createSnapshotSet(List.of(a, b), "weekly", Map.of("k", "v"));
    assertEquals(Map.of("k", "v"), wrapped.get(1).attributes());
  }

  @Test
  void reconcile_ofAnIncompleteSetFoundWhole_keepsTheAttributes() throws IOException {
    Volume a = create("a");
    Volume b = create("b");
    String setId = java.util.UUID.randomUUID().toString();
    List<String> members = List.of(a.uuid(), b.uuid());
    for (Volume v : List.of(a, b)) { // a crash before "set complete": both members' records only
      v.locks().hold.writeLock().lock();
      try {
        v.chain().create(new JournalRecord.Create(7, System.currentTimeMillis(), "t", setId, members, LABEL));
      } finally {
        v.locks().hold.writeLock().unlock();
      }
    }
    Path ca = tmp.resolve("ca");
    Path cb = tmp.resolve("cb");
    VolumeCopies.copyOpen(a.directory(), ca);
    VolumeCopies.copyOpen(b.directory(), cb);
    List<Volume> again = Volume.openAll(List.of(ca, cb));
    open.addAll(again);
    assertEquals(LABEL, again.get(0).snapshot("t").attributes());
    assertEquals(LABEL, again.get(1).snapshot("t").attributes());
  }

  @Test
  void setCommit_invalidAttributes_leavesTheSetPrepared() throws IOException {
    Volume a = create("a");
    try (PreparedSnapshotSet p = SnapshotSet.prepare(List.of(a))) {
      assertThrows(IllegalArgumentException.class, () -> p.commit("x", Duration.ofSeconds(5), Map.of("", "v")));
      assertEquals(Map.of("k", "v"), p.commit("x", Duration.ofSeconds(5), Map.of("k", "v")).get(0).attributes());
    }
  }

  @Test
  void records_roundTrip_andPlainCreateKeepsItsFormat() {
    ByteBuffer buf = ByteBuffer.allocate(1 << 20);
    JournalRecord.Create plain = new JournalRecord.Create(4, 99, "s4", null);
    plain.encode(buf);
    assertEquals(JournalRecord.CREATE, buf.get(0));
    for (JournalRecord r : List.of(new JournalRecord.Create(4, 99, "s4", null, List.of(), LABEL),
        new JournalRecord.Create(5, 99, "s5", "set", List.of("u1", "u2"), LABEL),
        new JournalRecord.SetAttributes(5, Map.of("big", "é".repeat(70_000))),
        new JournalRecord.SetAttributes(5, Map.of()))) {
      ByteBuffer b = ByteBuffer.allocate(r.maxSize());
      r.encode(b);
      b.flip();
      assertEquals(r, JournalRecord.decode(b));
      assertEquals(0, b.remaining());
    }
  }

  @Test
  void checkpointVersionTwo_isStillRead() throws IOException {
    Volume v = create("v");
    write(v, 0, 1);
    v.createSnapshot("old");
    write(v, 0, 2);
    Path dir = v.directory();
    v.close();
    open.clear();
    // rewrite the checkpoint in version 2: members and the complete flag, no attributes
    Checkpoint.State state = Checkpoint.read(dir);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    DataOutputStream out = new DataOutputStream(bytes);
    out.writeInt(0x5348434b);
    out.writeInt(2);
    out.writeLong(state.generation());
    out.writeLong(state.nextId());
    out.writeLong(-1);
    out.writeInt(1);
    Snapshot s = state.snapshots().get(0);
    out.writeLong(s.id);
    out.writeLong(s.createdMillis);
    out.writeUTF(s.name);
    out.writeUTF("");
    out.writeShort(0);
    out.writeByte(1);
    long[] blocks = s.sortedBlocks();
    out.writeInt(blocks.length);
    for (long blk : blocks) {
      out.writeLong(blk);
      out.writeLong(s.get(blk));
    }
    out.flush();
    CRC32C crc = new CRC32C();
    crc.update(bytes.toByteArray());
    out.writeInt((int) crc.getValue());
    out.flush();
    AtomicFile.write(dir.resolve(Checkpoint.FILE), bytes.toByteArray(), 0600);
    Volume again = Volume.open(dir);
    open.add(again);
    assertEquals(Map.of(), again.snapshot("old").attributes());
    try (BlockSource snap = again.openSnapshot("old")) {
      assertEquals(1, read(snap, 0)[0], "the table was read");
    }
    again.setSnapshotAttributes(SnapshotRef.ofName("old"), Map.of("k", "v"));
    assertEquals(Map.of("k", "v"), reopen(again).snapshot("old").attributes(), "written back as version 3");
    assertEquals(3, java.nio.ByteBuffer.wrap(java.nio.file.Files.readAllBytes(dir.resolve(Checkpoint.FILE))).getInt(4));
  }
}
