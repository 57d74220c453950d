package dev.shade.provider.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.SnapshotNotFoundException;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.provider.VolumeListener;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.slf4j.LoggerFactory;

/** Fills a small diff area past its limit and checks that only the oldest snapshots give way. */
class DiffAreaOverflowTest {
  /*
   * The volume has 256 blocks and a diff area limit of 32 blocks. Six snapshots are taken, each
   * followed by one unaligned write that touches six blocks no earlier round touched, so each
   * snapshot holds six old blocks (invariant 1: the copy goes to the newest snapshot). Then
   * writes go on without new snapshots, copying into the newest one until even it has to go.
   *
   * A model tracks which blocks each live snapshot holds (blocks first written after it and
   * before the next one; a deleted oldest snapshot just drops its blocks). After every write:
   * the write returned; every snapshot the volume dropped was the oldest live one and the
   * listener heard of it with the configured limit; the model's held bytes, and
   * diffUsedBytes(), stay within the limit; diffUsedBytes() is at least the model's held bytes
   * (the old blocks have to be somewhere); each SnapshotInfo.diffBytes is what the model says;
   * snapshots() lists the model's snapshots oldest first. A deletion while the model needs less
   * than half the limit counts as premature. After every round the remaining snapshots read
   * back exactly. The WARN log line is checked through stderr when slf4j-simple writes there
   * (its default); with another logging set-up only the listener is checked.
   */

  /** Blocks in the volume. */
  private static final int BLOCKS = 256;
  /** Diff area limit, in blocks. */
  private static final int DIFF_MAX_BLOCKS = 32;
  /** Blocks each write touches. */
  private static final int RUN = 6;

  @ParameterizedTest(name = "block size {0}")
  @ValueSource(ints = {4096, 65536})
  void write_pastDiffMax_deletesOldestSnapshotsFirst(int blockSize, @TempDir Path tmp) throws IOException {
    PrintStream originalErr = System.err;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    System.setErr(new PrintStream(new Tee(originalErr, captured), true, StandardCharsets.UTF_8));
    List<String> deleted;
    try (Scenario s = new Scenario(tmp.resolve("vol"), blockSize)) {
      s.fillOrigin();
      for (int k = 1; k <= 6; k++) {
        s.snapshot("o" + k);
        s.writeRun(8 * k);
        s.checkContents();
      }
      // no new snapshots: every further write copies into the newest one, until it has to go
      for (int block = 8 * 7; block + RUN <= BLOCKS; block += RUN + 1) {
        s.writeRun(block);
      }
      s.checkContents();
      assertEquals(List.of("o1", "o2", "o3", "o4", "o5", "o6"), s.deletedNames(),
          "snapshots deleted for space, in order");
      assertEquals(List.of(), VolumeImages.names(s.volume.snapshots()), "snapshots left");
      for (String name : s.deletedNames()) {
        assertThrows(SnapshotNotFoundException.class, () -> s.volume.snapshot(name), "deleted snapshot " + name);
        assertThrows(SnapshotNotFoundException.class, () -> s.volume.openSnapshot(name), "deleted snapshot " + name);
      }

      // the space of the deleted snapshots is usable again: 12 blocks fit without a deletion
      s.snapshot("after");
      s.writeRun(0);
      s.writeRun(RUN + 1);
      assertEquals(6, s.deletedNames().size(), "a deletion happened although the diff area is nearly empty");
      s.checkContents();
      deleted = s.deletedNames();
    } finally {
      System.setErr(originalErr);
    }
    checkWarnings(captured.toString(StandardCharsets.UTF_8), deleted);
  }

  @ParameterizedTest(name = "block size {0}")
  @ValueSource(ints = {4096, 65536})
  void open_afterOverflow_keepsRemainingSnapshots(int blockSize, @TempDir Path tmp) throws IOException {
    Path dir = tmp.resolve("vol");
    Scenario s = new Scenario(dir, blockSize);
    s.fillOrigin();
    for (int k = 1; k <= 7; k++) {
      s.snapshot("o" + k);
      s.writeRun(8 * k);
    }
    assertTrue(!s.deletedNames().isEmpty() && !s.model.snapshotNames().isEmpty(),
        "the set-up should leave some snapshots deleted and some live: deleted " + s.deletedNames());
    s.close();

    Scenario reopened = new Scenario(dir, s);
    try (reopened) {
      assertEquals(s.model.snapshotNames(), VolumeImages.names(reopened.volume.snapshots()),
          "snapshots after reopening");
      assertTrue(reopened.volume.diffUsedBytes() <= reopened.diffMax,
          "diffUsedBytes " + reopened.volume.diffUsedBytes() + " > limit " + reopened.diffMax + " after reopening");
      reopened.checkContents();
      for (String name : s.deletedNames()) {
        assertThrows(SnapshotNotFoundException.class, () -> reopened.volume.snapshot(name),
            "snapshot " + name + " deleted for space came back after reopening");
      }
      // overflow goes on in the same order after a reopen
      List<String> before = reopened.model.snapshotNames();
      for (int block = 8 * 9; block + RUN <= BLOCKS; block += RUN + 1) {
        reopened.writeRun(block);
      }
      assertEquals(before, reopened.deletedNames(), "snapshots deleted for space after reopening, in order");
    }
  }

  /**
   * With slf4j-simple logging to stderr (its default), each deletion for space must have left
   * a WARN line naming the snapshot.
   */
  private static void checkWarnings(String stderr, List<String> deleted) {
    String factory = LoggerFactory.getILoggerFactory().getClass().getName();
    String logFile = System.getProperty("org.slf4j.simpleLogger.logFile", "System.err");
    boolean cached = Boolean.getBoolean("org.slf4j.simpleLogger.cacheOutputStream");
    if (!factory.startsWith("org.slf4j.simple.") || !logFile.equals("System.err") || cached) {
      System.out.println("WARN lines not checked: logging goes through " + factory + " to " + logFile);
      return;
    }
    List<String> warnLines = new ArrayList<>();
    for (String line : stderr.split("\n")) {
      if (line.contains("WARN")) {
        warnLines.add(line);
      }
    }
    for (String name : deleted) {
      boolean found = false;
      for (String line : warnLines) {
        found |= line.contains(name);
      }
      assertTrue(found, "no WARN log line names snapshot '" + name + "' deleted for space; WARN lines: " + warnLines);
    }
  }

  /** A volume under test with its model, the blocks each snapshot holds, and the listener's log. */
  private static final class Scenario implements AutoCloseable {
    /** The open volume. */
    final Volume volume;
    final int blockSize;
    /** The diff area limit in bytes. */
    final long diffMax;
    /** Expected contents. */
    final VolumeModel model;
    /** For each live snapshot, oldest first, the blocks whose old contents it holds. */
    final LinkedHashMap<String, Set<Long>> held;
    /** What the listener heard, in order. */
    final List<SnapshotInfo> deleted = new ArrayList<>();
    /** Limits the listener was given. */
    final List<Long> limits = new ArrayList<>();
    /** Pattern seed of the next write. */
    long nextSeed = 1;

    Scenario(Path dir, int blockSize) throws IOException {
      this.blockSize = blockSize;
      this.diffMax = (long) DIFF_MAX_BLOCKS * blockSize;
      long size = (long) BLOCKS * blockSize;
      this.volume = Volume.create(dir, new VolumeConfig(size, blockSize, diffMax, null, null));
      this.model = new VolumeModel(size);
      this.held = new LinkedHashMap<>();
      listen();
    }

    /** Reopens {@code dir}, carrying on the expectations of {@code closed}. */
    Scenario(Path dir, Scenario closed) throws IOException {
      this.blockSize = closed.blockSize;
      this.diffMax = closed.diffMax;
      this.volume = Volume.open(dir);
      this.model = closed.model;
      this.held = closed.held;
      this.nextSeed = closed.nextSeed;
      listen();
    }

    private void listen() {
      volume.addListener(new VolumeListener() {
        @Override
        public void snapshotDeletedForSpace(SnapshotInfo info, long diffMaxBytes) {
          deleted.add(info);
          limits.add(diffMaxBytes);
        }
      });
    }

    List<String> deletedNames() {
      return VolumeImages.names(deleted);
    }

    void fillOrigin() throws IOException {
      Op op = Op.write(0, model.origin().length, nextSeed++);
      op.applyTo(volume);
      model.apply(op);
      assertEquals(0, volume.diffUsedBytes(), "diff area use with no snapshot");
    }

    void snapshot(String name) throws IOException {
      Op.create(name).applyTo(volume);
      model.apply(Op.create(name));
      held.put(name, new HashSet<>());
      checkBookkeeping("after creating " + name);
    }

    /** One write that touches blocks {@code [first, first + RUN)} but no block edge byte. */
    void writeRun(long first) throws IOException {
      Op op = Op.write(first * blockSize + 1, (long) RUN * blockSize - 2, nextSeed++);
      int before = deleted.size();
      op.applyTo(volume);
      String what = "write " + op + " (blocks " + first + ".." + (first + RUN - 1) + ")";
      for (int i = before; i < deleted.size(); i++) {
        String name = deleted.get(i).name();
        List<String> live = model.snapshotNames();
        if (live.isEmpty() || !live.get(0).equals(name)) {
          fail(what + ": the volume deleted '" + name + "' for space while the oldest snapshot was " + live);
        }
        assertEquals(diffMax, limits.get(i), "limit the listener was given");
        long need = heldBytes() + newCopies(first) * blockSize;
        assertTrue(need > diffMax / 2, what + ": deleted '" + name + "' for space although the snapshots need only "
            + need + " of " + diffMax + " bytes");
        model.apply(Op.delete(name));
        held.remove(name);
      }
      model.apply(op);
      if (!held.isEmpty()) {
        Set<Long> newest = lastValue();
        for (long b = first; b < first + RUN; b++) {
          newest.add(b);
        }
      }
      checkBookkeeping(what);
    }

    /** Blocks the write at {@code first} copies into the newest snapshot. */
    private long newCopies(long first) {
      if (held.isEmpty()) {
        return 0;
      }
      Set<Long> newest = lastValue();
      long n = 0;
      for (long b = first; b < first + RUN; b++) {
        n += newest.contains(b) ? 0 : 1;
      }
      return n;
    }

    private Set<Long> lastValue() {
      Set<Long> last = null;
      for (Set<Long> s : held.values()) {
        last = s;
      }
      return last;
    }

    long heldBytes() {
      long n = 0;
      for (Set<Long> s : held.values()) {
        n += s.size();
      }
      return n * blockSize;
    }

    void checkBookkeeping(String when) {
      List<SnapshotInfo> infos = volume.snapshots();
      assertEquals(model.snapshotNames(), VolumeImages.names(infos), when + ": snapshots(), oldest first");
      long used = volume.diffUsedBytes();
      assertTrue(used <= diffMax, when + ": diffUsedBytes " + used + " > limit " + diffMax);
      assertTrue(heldBytes() <= diffMax, when + ": the snapshots left need " + heldBytes()
          + " bytes of old blocks, more than the limit " + diffMax + ": too few were deleted");
      assertTrue(used >= heldBytes(), when + ": diffUsedBytes " + used + " < " + heldBytes()
          + " bytes of old blocks the live snapshots hold");
      for (SnapshotInfo info : infos) {
        assertEquals((long) held.get(info.name()).size() * blockSize, info.diffBytes(),
            when + ": diffBytes of snapshot " + info.name());
      }
    }

    void checkContents() throws IOException {
      for (Map.Entry<String, byte[]> e : model.snapshots().entrySet()) {
        byte[] got = VolumeImages.readSnapshot(volume, e.getKey());
        long at = VolumeImages.firstDifference(e.getValue(), got);
        if (at >= 0) {
          fail("snapshot '" + e.getKey() + "' " + VolumeImages.describe(e.getValue(), got, at)
              + " (deleted for space so far: " + deletedNames() + ")");
        }
      }
      byte[] origin = VolumeImages.readAll(volume);
      long at = VolumeImages.firstDifference(model.origin(), origin);
      if (at >= 0) {
        fail("origin " + VolumeImages.describe(model.origin(), origin, at));
      }
    }

    @Override
    public void close() throws IOException {
      volume.close();
    }
  }

  /** Writes to two streams: the real stderr and a capture. */
  private static final class Tee extends OutputStream {
    /** Where output would have gone anyway. */
    private final OutputStream first;
    /** The capture. */
    private final OutputStream second;

    Tee(OutputStream first, OutputStream second) {
      this.first = first;
      this.second = second;
    }

    @Override
    public synchronized void write(int b) throws IOException {
      first.write(b);
      second.write(b);
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) throws IOException {
      first.write(b, off, len);
      second.write(b, off, len);
    }

    @Override
    public synchronized void flush() throws IOException {
      first.flush();
      second.flush();
    }
  }
}
