package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The writer metadata of a snapshot (a backup_label, kept in its {@code shade.writers}
 * attribute) backed up with it through a real agent comes back on {@code shade restore}: as the
 * descriptor beside a FILE, equal to the one {@code shade snapshot export} writes, as a snapshot
 * of a restored volume, as {@code --descriptor} for an NBD export, and in {@code --json}; and
 * {@code shade snapshot metadata --write-to} puts the backup_label back from each.
 */
class RestoreWriterMetadataTest {
  private static final int MiB = 1024 * 1024;
  private static final String LABEL = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
      + "CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nLABEL: shade\n";
  /** shade.writers as the PostgreSQL writer leaves it: compact JSON text. */
  private static final String WRITERS = "[{\"writer\":\"postgres:/srv/pg/15/main\",\"files\":[{\"path\":"
      + "\"15/main/backup_label\",\"content\":" + quoted(LABEL) + ",\"mode\":384},{\"path\":"
      + "\"15/main/tablespace_map\",\"content\":\"\",\"mode\":384}],\"facts\":{\"lsn\":\"0/2000100\"}}]";
  @TempDir static Path tmp;
  @RegisterExtension static final Leftovers started = new Leftovers();
  private static Path lib;
  /** The snapshot as 'shade snapshot export' wrote it, and its descriptor. */
  private static byte[] image;
  private static JsonNode exported;

  @BeforeAll
  static void backUp() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "4M");
    Cli.run("volume", "import", db, TestVolumes.file(tmp, "a.bin", TestVolumes.random(1, MiB))).ok();
    lib = tmp.resolve("vtl");
    Cli.run("tape", "library", "create", lib, "--slots", "2", "--capacity", "64M").ok();
    Path control = tmp.resolve("db-control.sock");
    Path nbd = tmp.resolve("db-nbd.sock");
    AgentProcess agent = started.agent(tmp, control, nbd, List.of(db));
    Cli.run("snapshot", "create", db, "--name", "nightly", "--attribute", "shade.writers=" + WRITERS).ok();
    Path meta = tmp.resolve("nightly.json");
    Files.writeString(meta, Cli.run("snapshot", "show", db, "nightly", "--json").ok().out());
    Cli.run("backup", "run", "--source", "nbd+unix:///db@nightly?socket=" + nbd, "--library", lib, "--metadata", meta,
        "--chunk-size", "1M").ok();
    Path export = tmp.resolve("export.img");
    exported = Cli.run("snapshot", "export", db, "nightly", export, "--json").ok().json();
    image = Files.readAllBytes(export);
    agent.stop();
  }

  private static String quoted(String s) {
    return com.fasterxml.jackson.databind.node.TextNode.valueOf(s).toString();
  }

  private static Cli.Result restore(Object to, Object... more) {
    List<Object> args = new ArrayList<>(List.of("restore", "--volume", "db", "--snapshot", "nightly", "--library", lib,
        "--to", to));
    args.addAll(Arrays.asList(more));
    return Cli.run(args.toArray());
  }

  private static JsonNode read(Path file) throws Exception {
    return ShadeCommand.JSON.readTree(file.toFile());
  }

  /** A directory standing for the mounted copy: the data directory's parent exists in it, as in a real cluster. */
  private static Path mountedCopy(String name) throws Exception {
    Path root = Files.createDirectories(tmp.resolve(name));
    Files.createDirectories(root.resolve("15/main"));
    return root;
  }

  private static void assertLabelWritten(Path root) throws Exception {
    Path label = root.resolve("15/main/backup_label");
    assertEquals(LABEL, Files.readString(label));
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(label)));
    assertEquals("", Files.readString(root.resolve("15/main/tablespace_map")));
  }

  @Test
  void file_getsTheExportsDescriptor_andMetadataWritesTheLabelBack() throws Exception {
    Path file = tmp.resolve("restored.img");
    JsonNode r = restore(file, "--json").ok().json();
    assertArrayEquals(image, Files.readAllBytes(file));
    Path descriptor = tmp.resolve("restored.img.snapshot.json");
    assertEquals(descriptor.toString(), r.get("descriptor").asText(), r::toPrettyString);
    assertEquals(ShadeCommand.JSON.readTree(WRITERS), r.get("writerMetadata"), r::toPrettyString);
    assertTrue(r.get("metadataSnapshot").isNull(), r::toPrettyString);

    JsonNode mine = read(descriptor);
    JsonNode theirs = read(Path.of(exported.get("descriptor").asText()));
    for (String f : List.of("format", "volume", "volumeUuid", "size")) {
      assertEquals(theirs.get(f), mine.get(f), f);
    }
    assertEquals("restored.img", mine.get("image").asText());
    for (String f : List.of("name", "id", "created", "attributes")) {
      assertEquals(theirs.get("snapshot").get(f), mine.get("snapshot").get(f), "snapshot." + f);
    }
    assertEquals(WRITERS, mine.get("snapshot").get("attributes").get("shade.writers").asText());

    Path root = mountedCopy("copy-file");
    Cli.run("snapshot", "metadata", "--descriptor", descriptor, "--write-to", root).ok();
    assertLabelWritten(root);
    // the same as from the export's own descriptor
    JsonNode fromRestore = Cli.run("snapshot", "metadata", "--descriptor", descriptor, "--json").ok().json();
    JsonNode fromExport = Cli.run("snapshot", "metadata", "--descriptor", exported.get("descriptor").asText(), "--json")
        .ok().json();
    assertEquals(fromExport, fromRestore);
  }

  @Test
  void file_textNamesTheFilesAndTheCommand_descriptorReplacedOnlyWithForce() throws Exception {
    Path file = tmp.resolve("text.img");
    Cli.Result r = restore(file).ok();
    Path descriptor = tmp.resolve("text.img.snapshot.json");
    assertTrue(r.out().contains("15/main/backup_label (postgres:/srv/pg/15/main), 15/main/tablespace_map"), r::toString);
    assertTrue(r.out().contains("shade snapshot metadata --descriptor " + descriptor + " --write-to MOUNT"),
        r::toString);

    Files.writeString(descriptor, "stale");
    Cli.Result again = restore(file);
    assertEquals(ExitCodes.FAILURE, again.code(), again::toString);
    assertEquals("stale", Files.readString(descriptor));
    Files.delete(file);
    Cli.Result lone = restore(file);
    assertEquals(ExitCodes.FAILURE, lone.code(), lone::toString);
    assertTrue(lone.err().contains(descriptor + " exists") && lone.err().contains("--force"), lone::toString);
    assertFalse(Files.exists(file), "refused before the image was written");
    restore(file, "--force").ok();
    assertEquals("nightly", read(descriptor).get("snapshot").get("name").asText());
  }

  @Test
  void volume_getsASnapshotCarryingTheAttributes_andMetadataWritesTheLabelBack() throws Exception {
    Path dir = tmp.resolve("restored-vol");
    JsonNode r = restore(dir + "/", "--json").ok().json();
    assertEquals("nightly", r.get("metadataSnapshot").asText(), r::toPrettyString);
    assertTrue(r.get("descriptor").isNull(), r::toPrettyString);
    assertEquals(ShadeCommand.JSON.readTree(WRITERS), r.get("writerMetadata"));
    JsonNode snap = Cli.run("snapshot", "show", dir, "nightly", "--json").ok().json();
    assertEquals(WRITERS, snap.get("attributes").get("shade.writers").asText());
    Path out = tmp.resolve("restored-vol-nightly.img");
    Cli.run("snapshot", "export", dir, "nightly", out).ok();
    assertArrayEquals(image, Files.readAllBytes(out), "the snapshot holds the restored image");

    Path root = mountedCopy("copy-vol");
    Cli.run("snapshot", "metadata", dir, "nightly", "--write-to", root).ok();
    assertLabelWritten(root);

    // into an existing volume that has a snapshot of that name: the new one gets the next name; text names it
    Path existing = tmp.resolve("existing-vol");
    Cli.run("volume", "create", existing, "--size", "4M", "--block-size", "4K", "--diff-max", "16M").ok();
    Cli.run("snapshot", "create", existing, "--name", "nightly").ok();
    Cli.Result text = restore(existing, "--force").ok();
    assertTrue(text.out().contains("shade snapshot metadata " + existing.toAbsolutePath() + " nightly-restored "
        + "--write-to MOUNT"), text::toString);
    JsonNode again = Cli.run("snapshot", "show", existing, "nightly-restored", "--json").ok().json();
    assertEquals(WRITERS, again.get("attributes").get("shade.writers").asText());
    assertTrue(Cli.run("snapshot", "show", existing, "nightly", "--json").ok().json().path("attributes")
        .path("shade.writers").isMissingNode(), "the volume's own snapshot is left as it was");
  }

  @Test
  void nbd_descriptorOnlyWithDescriptorOption_alwaysInJson() throws Exception {
    Path tgt = TestVolumes.create(tmp.resolve("tgt"), "4M");
    Path control = tmp.resolve("tgt-control.sock");
    Path nbd = tmp.resolve("tgt-nbd.sock");
    started.agent(tmp, control, nbd, List.of(tgt));
    String uri = "nbd+unix:///tgt?socket=" + nbd;

    Cli.Result text = restore(uri).ok();
    assertTrue(text.out().contains("--descriptor FILE"), text::toString);
    JsonNode plain = restore(uri, "--json").ok().json();
    assertEquals(ShadeCommand.JSON.readTree(WRITERS), plain.get("writerMetadata"));
    assertTrue(plain.get("descriptor").isNull(), plain::toPrettyString);

    Path descriptor = tmp.resolve("tgt.snapshot.json");
    JsonNode r = restore(uri, "--json", "--descriptor", descriptor).ok().json();
    assertEquals(descriptor.toString(), r.get("descriptor").asText());
    assertEquals(uri, read(descriptor).get("image").asText());
    Path root = mountedCopy("copy-nbd");
    Cli.run("snapshot", "metadata", "--descriptor", descriptor, "--write-to", root).ok();
    assertLabelWritten(root);
    Cli.Result noForce = restore(uri, "--descriptor", descriptor);
    assertEquals(ExitCodes.FAILURE, noForce.code(), noForce::toString);

    Cli.Result misplaced = restore(tmp.resolve("x.img"), "--descriptor", descriptor);
    assertEquals(ExitCodes.USAGE, misplaced.code(), misplaced::toString);
  }
}
