package dev.shade.provider.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.provider.VolumeListener;
import dev.shade.testing.Tmpfs;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Runs a volume into a full filesystem (a 4 MiB tmpfs) and checks that the failure is clear and
 * that nothing stored before is lost.
 */
class DiskFullTest {
  /*
   * Needs root (mount -t tmpfs); skipped otherwise. Either the whole volume directory or only
   * its diff area (VolumeConfig.withDiffArea) lives on the tmpfs. The test writes the 2 MiB
   * origin, flushes, takes snapshots s1 and s2 with 256 KiB of writes after each, flushes, then
   * fills the filesystem with a filler file. It then takes snapshots p0..p3, each followed by
   * 1 MiB of 4 KiB writes to blocks no snapshot holds yet, until a call throws.
   *
   * Two outcomes are accepted:
   *   - an IOException whose message names a file on the full filesystem and says there is no
   *     space;
   *   - no exception, with the volume deleting the oldest snapshots to keep writes going
   *     (invariant 4), each one reported to the VolumeListener, oldest first.
   * Either way, while still open, every remaining snapshot reads back exactly, the origin reads
   * every returned write (only the failed write's range is open), and snapshots nobody reported
   * deleted are still there. Then the volume is closed and reopened with the disk still full
   * (if that fails, the error must be as clear, and it must open once the filler is gone) and
   * is checked again (bytes written after the last flush are open unless close succeeded). A
   * close that fails must fail as clearly.
   *
   * Not checked: that writes work again once space is freed. The volume keeps formatting diff
   * area space ahead of use up to its limit, so on this 4 MiB filesystem freed space is soon
   * taken again and the journal can still find none.
   */

  private static final long SIZE = 2L << 20;
  private static final int BLOCK = 4096;

  /** Where the volume's files go. */
  enum Layout {
    VOLUME_ON_FULL_FS,
    DIFF_AREA_ON_FULL_FS
  }

  @TempDir Path tmp;
  /** The tmpfs mount point; null when not mounted. */
  private Path mnt;
  /** The tmpfs on {@link #mnt}; null when not mounted. */
  private Tmpfs tmpfs;

  @BeforeEach
  void mountSmallFilesystem() throws Exception {
    Path point = tmp.resolve("small");
    Files.createDirectories(point);
    tmpfs = Tmpfs.mount(point, "shade-disk-full-test", "4m", "");
    mnt = point;
  }

  @AfterEach
  void unmount() throws Exception {
    if (tmpfs == null) {
      return;
    }
    if (!tmpfs.unmount()) {
      fail("umount " + mnt + " failed, files still open on it? Lazily unmounted.");
    }
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(Layout.class)
  void write_untilFilesystemFull_failsClearlyAndKeepsStoredData(Layout layout) throws Exception {
    Path dir = layout == Layout.VOLUME_ON_FULL_FS ? mnt.resolve("vol") : tmp.resolve("vol");
    Path diffArea = layout == Layout.DIFF_AREA_ON_FULL_FS ? mnt.resolve("diff.area") : null;
    // a 4 MiB diff area limit: the volume may format part of it up front, and 2 MiB of origin
    // plus that must fit on the 4 MiB filesystem before the filler takes the rest
    VolumeConfig config = new VolumeConfig(SIZE, BLOCK, 4L << 20, null, diffArea);
    VolumeModel model = new VolumeModel(SIZE);
    List<String> created = new ArrayList<>();
    List<String> deleted = new ArrayList<>();
    // origin bytes written after the last flush: open after a failed close
    BitSet unflushed = new BitSet();
    // the range of the write that failed: open even while the volume stays open
    BitSet failedRange = new BitSet();
    Path filler = mnt.resolve("filler");
    IOException failure = null;
    Op failedOp = null;
    long seed = 1;
    String ctx;

    Volume volume = Volume.create(dir, config);
    try {
      volume.addListener(new VolumeListener() {
        @Override
        public void snapshotDeletedForSpace(SnapshotInfo info, long diffMaxBytes) {
          deleted.add(info.name());
        }
      });
      try {
        apply(volume, model, Op.write(0, SIZE, seed++));
        apply(volume, model, Op.create("s1"));
        apply(volume, model, Op.write(0, 64L * BLOCK, seed++));
        apply(volume, model, Op.create("s2"));
        apply(volume, model, Op.write(64L * BLOCK, 64L * BLOCK, seed++));
        apply(volume, model, Op.flush());
      } catch (IOException e) {
        throw new AssertionError(layout + ": setting up 2 MiB of origin and two snapshots on the 4 MiB filesystem "
            + "failed before it was filled (" + Files.getFileStore(mnt).getUsableSpace() + " bytes usable)", e);
      }
      created.addAll(List.of("s1", "s2"));

      long filled = fill(filler);
      ctx = layout + ", filesystem " + mnt + " filled with a " + filled + " byte file ("
          + Files.getFileStore(mnt).getUsableSpace() + " bytes usable left)";

      outer:
      for (int pass = 0; pass < 4; pass++) {
        Op create = Op.create("p" + pass);
        try {
          apply(volume, model, create);
        } catch (IOException e) {
          failure = e;
          failedOp = create;
          break;
        }
        created.add(create.name());
        unflushed.clear(); // a create flushes first
        for (long block = 128; block < 384; block++) {
          Op write = Op.write(block * BLOCK, BLOCK, seed++);
          int from = (int) write.offset();
          int to = (int) (write.offset() + write.length());
          unflushed.set(from, to);
          try {
            apply(volume, model, write);
          } catch (IOException e) {
            failure = e;
            failedOp = write;
            failedRange.set(from, to);
            break outer;
          }
        }
      }

      if (failure != null) {
        checkClear(failure, ctx + ": " + failedOp + " failed");
        System.out.println("disk full, " + layout + ": " + failedOp + " failed: " + failure.getMessage()
            + "; deleted for space before: " + deleted);
      } else {
        assertTrue(!deleted.isEmpty(), ctx + ": 4 MiB of copy-on-write writes on a full filesystem all succeeded "
            + "and no snapshot was deleted for space: the filesystem was not full");
        System.out.println("disk full, " + layout + ": no call failed; snapshots deleted for space: " + deleted);
      }
      for (String name : deleted) {
        model.apply(Op.delete(name));
      }
      assertEquals(created.subList(0, deleted.size()), deleted,
          ctx + ": snapshots deleted for space must be the oldest, in order");
      String optional = failedOp != null && failedOp.kind() == Op.Kind.CREATE ? failedOp.name() : null;
      check(volume, model, failedRange, optional, ctx + ", while still open after the failure");
    } catch (IOException | RuntimeException | Error e) {
      try {
        volume.close();
      } catch (IOException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }

    IOException closeFailure = null;
    try {
      volume.close();
    } catch (IOException e) {
      closeFailure = e;
      checkClear(e, ctx + ": close failed");
      System.out.println("disk full, " + layout + ": close failed: " + e.getMessage());
    }
    BitSet open = (BitSet) failedRange.clone();
    if (closeFailure != null) {
      open.or(unflushed);
    }

    Volume reopened;
    try {
      reopened = Volume.open(dir);
    } catch (IOException e) {
      checkClear(e, ctx + ": reopening with the filesystem still full failed");
      System.out.println("disk full, " + layout + ": reopening while full failed: " + e.getMessage());
      Files.delete(filler);
      reopened = Volume.open(dir);
    }
    String optional = failedOp != null && failedOp.kind() == Op.Kind.CREATE ? failedOp.name() : null;
    try {
      check(reopened, model, open, optional,
          ctx + ", reopened" + (closeFailure == null ? "" : " after close failed: " + closeFailure));
    } finally {
      try {
        reopened.close();
      } catch (IOException e) {
        // the diff area's background formatting may have taken the freed space again
        checkClear(e, ctx + ": closing the reopened volume failed");
        System.out.println("disk full, " + layout + ": closing the reopened volume failed: " + e.getMessage());
      }
    }
  }

  private static void apply(Volume volume, VolumeModel model, Op op) throws IOException {
    op.applyTo(volume);
    model.apply(op);
  }

  /** Fills the filesystem of {@code file} to the last byte; returns how many bytes it took. */
  private static long fill(Path file) throws IOException {
    long n = 0;
    byte[] chunk = new byte[64 * 1024];
    try (OutputStream out = new FileOutputStream(file.toFile())) {
      for (int size = chunk.length; size >= 1; size /= 8) {
        try {
          while (true) {
            out.write(chunk, 0, size);
            out.flush();
            n += size;
          }
        } catch (IOException full) {
          // next, smaller size
        }
      }
    }
    return n;
  }

  /** The message must name a file on the full filesystem and say there is no space. */
  private void checkClear(IOException e, String what) {
    String message = String.valueOf(e.getMessage());
    assertTrue(message.contains(mnt.toString()),
        what + " with a message that does not name the file on the full filesystem " + mnt + ": " + e);
    assertTrue(message.toLowerCase().contains("no space"), what + " with a message that does not say there is no space: " + e);
  }

  /**
   * Checks that {@code volume} holds the model's snapshots exactly and the model's origin outside
   * {@code open}; {@code optional} may also be there (last, if it is).
   */
  private static void check(Volume volume, VolumeModel model, BitSet open, String optional, String what)
      throws IOException {
    List<String> names = VolumeImages.names(volume.snapshots());
    List<String> expected = model.snapshotNames();
    if (optional != null && names.contains(optional) && !expected.contains(optional)) {
      expected.add(optional);
    }
    assertEquals(expected, names, what + ": snapshots");
    for (String name : names) {
      byte[] want = model.snapshot(name) != null ? model.snapshot(name) : model.origin();
      byte[] got = VolumeImages.readSnapshot(volume, name);
      long at = VolumeImages.firstDifference(want, got);
      if (at >= 0) {
        fail(what + ": snapshot '" + name + "' " + VolumeImages.describe(want, got, at));
      }
    }
    byte[] origin = VolumeImages.readAll(volume);
    long at = VolumeImages.firstDifference(model.origin(), origin, open);
    if (at >= 0) {
      fail(what + ": origin " + VolumeImages.describe(model.origin(), origin, at));
    }
  }
}
