package dev.shade.provider.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.provider.VolumeException;
import dev.shade.testing.ChildJvm;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Damages the metadata files of a crashed volume one way at a time and checks that opening it
 * either fails naming the damaged file or gives back exactly what the volume held.
 */
class DamagedMetadataTest {
  /*
   * Two crashed volumes are made once. The parent creates a 2 MiB volume, writes, takes
   * snapshots p1 and p2 and closes it cleanly, so the checkpoint holds them. A child JVM then
   * opens it and runs writes, creates c1, deletes p1, creates c2, trims, flushes (op K), creates
   * "torn" (op K+1), writes, creates "late" and flushes; it pauses after K and after K+1 and is
   * killed with SIGKILL at the end, so the journal holds records (a clean close would fold them
   * into the checkpoint).
   *
   *   - "paused": a copy of the directory taken while the child waited after op K;
   *   - "killed": the directory after the kill.
   *
   * The journal bytes op K+1 added are found by comparing the journal at the two pauses, so a
   * torn record is a real prefix of a real record, whatever the record format.
   *
   * Every case must either fail to open with a VolumeException whose message names the damaged
   * file (and then, with the pristine file put back, open and read exactly, so the failed open
   * neither kept the volume locked nor changed anything), or open and read every snapshot and
   * the origin exactly. A torn last record is the crash signature and must open.
   */

  private static final long SIZE = 2L << 20;
  private static final int BLOCK_SIZE = 4096;
  private static final Duration WAIT = Duration.ofSeconds(60);

  /** Holds the two crashed volumes for the whole class. */
  @TempDir static Path templates;
  /** The volume as the child left it when paused after op K. */
  private static Path pausedDir;
  /** What the paused volume holds. */
  private static VolumeModel pausedModel;
  /** The volume after the child was killed at the end of its script. */
  private static Path killedDir;
  /** What the killed volume holds. */
  private static VolumeModel killedModel;
  /** The journal when the child paused after op K. */
  private static byte[] journalBefore;
  /** The journal when the child paused after op K+1 (the create of "torn"). */
  private static byte[] journalAfter;
  /** Journal offsets {@code [from, to)} that op K+1 changed. */
  private static int recordFrom;
  private static int recordTo;

  /** The ways the metadata gets damaged. */
  enum Damage {
    NONE_KILLED("", true),
    NONE_PAUSED("", true),
    CHECKPOINT_BYTE_FLIPPED("checkpoint", false),
    CHECKPOINT_TRUNCATED("checkpoint", false),
    CHECKPOINT_DELETED("checkpoint", false),
    JOURNAL_MIDDLE_RECORD_BYTE_FLIPPED("journal", false),
    JOURNAL_TORN_AFTER_FIRST_BYTE("journal", true),
    JOURNAL_TORN_IN_THE_MIDDLE("journal", true),
    JOURNAL_TORN_BEFORE_LAST_BYTE("journal", true),
    PROPERTIES_VALUE_CHANGED("volume.properties", false),
    PROPERTIES_TRUNCATED("volume.properties", false);

    /** The file damaged, as the error message must name it. */
    final String file;
    /** True if the volume must open (and read exactly). */
    final boolean mustOpen;

    Damage(String file, boolean mustOpen) {
      this.file = file;
      this.mustOpen = mustOpen;
    }

    boolean usesPausedVolume() {
      return this == NONE_PAUSED || name().startsWith("JOURNAL_TORN");
    }
  }

  @BeforeAll
  static void makeCrashedVolumes() throws Exception {
    Path dir = templates.resolve("vol");
    SplittableRandom rnd = new SplittableRandom(20240611L);
    VolumeModel model = new VolumeModel(SIZE);

    List<Op> phase1 = new ArrayList<>();
    writes(rnd, phase1, 15);
    phase1.add(Op.create("p1"));
    writes(rnd, phase1, 15);
    phase1.add(Op.create("p2"));
    writes(rnd, phase1, 15);
    try (Volume volume = Volume.create(dir, new VolumeConfig(SIZE, BLOCK_SIZE, 32L << 20, null, null))) {
      for (Op op : phase1) {
        op.applyTo(volume);
        model.apply(op);
      }
    }

    List<Op> phase2 = new ArrayList<>();
    writes(rnd, phase2, 15);
    phase2.add(Op.create("c1"));
    writes(rnd, phase2, 15);
    phase2.add(Op.delete("p1"));
    writes(rnd, phase2, 15);
    phase2.add(Op.create("c2"));
    writes(rnd, phase2, 15);
    phase2.add(Op.trim(5L * BLOCK_SIZE + 17, 3L * BLOCK_SIZE));
    phase2.add(Op.flush());
    int k = phase2.size() - 1;
    phase2.add(Op.create("torn"));
    writes(rnd, phase2, 15);
    phase2.add(Op.create("late"));
    writes(rnd, phase2, 15);
    phase2.add(Op.flush());
    Path script = templates.resolve("phase2.txt");
    Op.writeAll(script, phase2);

    pausedDir = templates.resolve("paused");
    killedDir = dir;
    Path journal = dir.resolve("journal");
    try (ChildJvm child = ChildJvm.start(templates, CrashChild.class,
        dir.toString(), script.toString(), k + "," + (k + 1), "p1,p2")) {
      assertNotNull(child.awaitLine("PAUSE " + k, WAIT), child.output());
      TestFiles.copyTree(dir, pausedDir);
      journalBefore = Files.readAllBytes(journal);
      child.send("go");
      assertNotNull(child.awaitLine("PAUSE " + (k + 1), WAIT), child.output());
      journalAfter = Files.readAllBytes(journal);
      child.send("go");
      assertNotNull(child.awaitLine("DONE", WAIT), child.output());
      assertEquals(ChildJvm.SIGKILL_STATUS, child.kill(), child.output());
      assertTrue(child.linesStartingWith("ERROR").isEmpty(), child.output());
    }
    for (int i = 0; i < phase2.size(); i++) {
      if (i == k + 1) {
        pausedModel = model.copy();
      }
      model.apply(phase2.get(i));
    }
    killedModel = model;

    for (String f : List.of("volume.properties", "checkpoint", "journal")) {
      assertTrue(Files.size(killedDir.resolve(f)) > 0, "the crashed volume has no " + f + " to damage");
    }
    recordFrom = Arrays.mismatch(journalBefore, journalAfter);
    recordTo = Math.max(journalBefore.length, journalAfter.length);
    while (recordTo > recordFrom && recordTo <= Math.min(journalBefore.length, journalAfter.length)
        && journalBefore[recordTo - 1] == journalAfter[recordTo - 1]) {
      recordTo--;
    }
    assertTrue(recordFrom >= 0 && recordTo - recordFrom >= 3,
        "creating a snapshot changed " + (recordFrom < 0 ? 0 : recordTo - recordFrom) + " journal bytes; a torn record "
            + "needs a record of at least 3 bytes (journal " + journalBefore.length + " -> " + journalAfter.length + " bytes)");
  }

  private static void writes(SplittableRandom rnd, List<Op> ops, int n) {
    for (int i = 0; i < n; i++) {
      ops.add(OpGenerator.randomWrite(rnd, SIZE, BLOCK_SIZE));
    }
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(Damage.class)
  void open_damagedMetadata_failsNamingTheFileOrReadsExactly(Damage damage, @TempDir Path tmp) throws IOException {
    Path template = damage.usesPausedVolume() ? pausedDir : killedDir;
    VolumeModel model = damage.usesPausedVolume() ? pausedModel : killedModel;
    Path dir = tmp.resolve("vol");
    TestFiles.copyTree(template, dir);
    String did = damage(damage, dir);
    String what = damage + " (" + did + ")";

    Volume volume;
    try {
      volume = Volume.open(dir);
    } catch (VolumeException e) {
      if (damage.mustOpen) {
        throw new AssertionError(what + ": open must succeed, dropping a torn last record, but failed", e);
      }
      String message = String.valueOf(e.getMessage());
      assertTrue(message.contains(damage.file), what + ": the error does not name " + damage.file + ": " + message);
      System.out.println("damaged metadata, " + what + ": open failed: " + message);
      // put the pristine file back: a failed open must have changed nothing and released the lock
      Files.copy(template.resolve(damage.file), dir.resolve(damage.file), StandardCopyOption.REPLACE_EXISTING);
      try (Volume repaired = Volume.open(dir)) {
        checkExact(repaired, model, null, what + ", after putting the pristine " + damage.file + " back");
      }
      return;
    } catch (IOException | RuntimeException e) {
      throw new AssertionError(what + ": open failed with " + e + " instead of a VolumeException naming "
          + damage.file, e);
    }
    try (volume) {
      checkExact(volume, model, damage.usesPausedVolume() ? "torn" : null, what + ", opened");
    }
    System.out.println("damaged metadata, " + what + ": opened and read exactly");
  }

  /** Applies {@code damage} to the volume in {@code dir}; returns what it did. */
  private static String damage(Damage damage, Path dir) throws IOException {
    Path checkpoint = dir.resolve("checkpoint");
    Path journal = dir.resolve("journal");
    Path properties = dir.resolve("volume.properties");
    switch (damage) {
      case NONE_KILLED:
      case NONE_PAUSED:
        return "no damage";
      case CHECKPOINT_BYTE_FLIPPED:
        return flipInUsedPart(checkpoint);
      case CHECKPOINT_TRUNCATED:
        return truncateToHalf(checkpoint);
      case CHECKPOINT_DELETED:
        Files.delete(checkpoint);
        return "deleted " + checkpoint;
      case JOURNAL_MIDDLE_RECORD_BYTE_FLIPPED:
        return flipInUsedPart(journal);
      case JOURNAL_TORN_AFTER_FIRST_BYTE:
        return tear(journal, 1);
      case JOURNAL_TORN_IN_THE_MIDDLE:
        return tear(journal, (recordTo - recordFrom) / 2);
      case JOURNAL_TORN_BEFORE_LAST_BYTE:
        return tear(journal, recordTo - recordFrom - 1);
      case PROPERTIES_VALUE_CHANGED:
        return changeDigit(properties);
      case PROPERTIES_TRUNCATED:
        return truncateToHalf(properties);
      default:
        throw new AssertionError(damage);
    }
  }

  /** Flips a byte in the middle of the file's part before its trailing zeros. */
  private static String flipInUsedPart(Path file) throws IOException {
    byte[] b = Files.readAllBytes(file);
    int used = b.length;
    while (used > 0 && b[used - 1] == 0) {
      used--;
    }
    int at = used / 2;
    b[at] ^= 0x5A;
    Files.write(file, b);
    return "flipped byte " + at + " of " + used + " used bytes (" + b.length + " in all) of " + file;
  }

  private static String truncateToHalf(Path file) throws IOException {
    byte[] b = Files.readAllBytes(file);
    Files.write(file, Arrays.copyOf(b, b.length / 2));
    return "truncated " + file + " from " + b.length + " to " + b.length / 2 + " bytes";
  }

  /**
   * Makes the journal what it would be had the crash come after the first {@code keep} bytes of
   * what creating "torn" wrote to it.
   */
  private static String tear(Path journal, int keep) throws IOException {
    int cut = recordFrom + keep;
    byte[] torn = new byte[Math.max(journalBefore.length, cut)];
    for (int i = 0; i < torn.length; i++) {
      torn[i] = i < cut ? journalAfter[i] : journalBefore[i];
    }
    Files.write(journal, torn);
    return "journal holds " + keep + " of the " + (recordTo - recordFrom) + " bytes written at offset " + recordFrom
        + " by the create of 'torn'";
  }

  /**
   * Changes one digit of the size (or, failing that, of any other value but the checksum),
   * keeping the file parseable: only the checksum can tell.
   */
  private static String changeDigit(Path file) throws IOException {
    String text = Files.readString(file, StandardCharsets.ISO_8859_1);
    for (String key : List.of("size=", "blockSize=", "diffMax=", "")) {
      int lineStart = 0;
      for (String line : text.split("\n", -1)) {
        int eq = line.indexOf('=');
        boolean candidate = eq > 0 && !line.startsWith("#") && !line.substring(0, eq).toLowerCase().contains("crc")
            && line.startsWith(key);
        for (int i = eq + 1; candidate && i < line.length(); i++) {
          char c = line.charAt(i);
          if (c >= '1' && c <= '9') {
            char d = (char) (c == '9' ? '1' : c + 1);
            int at = lineStart + i;
            Files.writeString(file, text.substring(0, at) + d + text.substring(at + 1), StandardCharsets.ISO_8859_1);
            return "changed '" + line + "' to '" + line.substring(0, i) + d + line.substring(i + 1) + "' in " + file;
          }
        }
        lineStart += line.length() + 1;
      }
    }
    return flipInUsedPart(file);
  }

  /**
   * Checks that the volume holds exactly the model; {@code optional} names a snapshot that may
   * also be there, last, holding the origin's contents.
   */
  private static void checkExact(Volume volume, VolumeModel model, String optional, String what) throws IOException {
    List<String> names = VolumeImages.names(volume.snapshots());
    List<String> expected = model.snapshotNames();
    if (optional != null && names.contains(optional)) {
      expected.add(optional);
    }
    assertEquals(expected, names, what + ": snapshots");
    for (String name : names) {
      byte[] want = name.equals(optional) ? model.origin() : model.snapshot(name);
      byte[] got = VolumeImages.readSnapshot(volume, name);
      long at = VolumeImages.firstDifference(want, got);
      if (at >= 0) {
        fail(what + ": snapshot '" + name + "' " + VolumeImages.describe(want, got, at));
      }
    }
    byte[] origin = VolumeImages.readAll(volume);
    long at = VolumeImages.firstDifference(model.origin(), origin);
    if (at >= 0) {
      fail(what + ": origin " + VolumeImages.describe(model.origin(), origin, at));
    }
  }
}
