package dev.shade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.provider.Progress;
import dev.shade.requestor.ops.VolumeCommands;
import dev.shade.requestor.writer.WriterMetadata;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** The snapshot subcommands about writers: the metadata they left with a snapshot, and backup-complete. */
final class SnapshotWriterCommands {
  private SnapshotWriterCommands() {}

  /** {@code shade snapshot metadata}. */
  @Command(
      name = "metadata",
      header = "Show the writer metadata kept with a snapshot, or write its files into a copy of the snapshot.",
      description = {
        "Writers return what belongs to a snapshot without being in its blocks: PostgreSQL's "
            + "backup_label and tablespace_map from pg_backup_stop. A copy of the snapshot (an "
            + "exported image, a restore) starts as a consistent cluster only with these files put "
            + "back beside its data: mount the copy and pass its mount point to --write-to. Paths "
            + "are relative to the root of the filesystem the snapshot holds."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade snapshot metadata /var/lib/shade/pg nightly",
        "  shade snapshot export /var/lib/shade/pg nightly /restore/pg.img && mount -o loop /restore/pg.img /mnt/copy",
        "  shade snapshot metadata /var/lib/shade/pg nightly --write-to /mnt/copy",
        "  shade snapshot metadata --descriptor /restore/pg.img.snapshot.json --write-to /mnt/copy"})
  static final class Metadata extends ShadeCommand {
    @Parameters(index = "0", arity = "0..1", paramLabel = "DIR", description = "The volume's directory.")
    Path dir;

    @Parameters(index = "1", arity = "0..1", paramLabel = "NAME", description = "The snapshot: its name, or id=ID.")
    String name;

    @Option(names = "--descriptor", paramLabel = "FILE",
        description = "Instead of DIR NAME: the IMAGE.snapshot.json that shade snapshot export (or shade "
            + "restore) wrote beside an image (it carries the snapshot's attributes, so the copy's metadata needs no volume).")
    Path descriptor;

    @Option(names = "--write-to", paramLabel = "ROOT",
        description = "Write the metadata files under ROOT (the mount point of a copy of the snapshot), "
            + "with their modes and the owner of the directory they go into.")
    Path root;

    @Option(names = "--force", description = "With --write-to: replace files that exist.")
    boolean force;

    @Option(names = "--json", description = "Print one JSON object: {\"volume\", \"snapshot\", \"id\", "
        + "\"writers\": [{\"writer\", \"files\": [{\"path\", \"content\", \"mode\"}], \"facts\"}], \"written\": [paths]}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      JsonNode snap;
      if (descriptor != null) {
        if (dir != null) {
          throw usage("give DIR NAME or --descriptor FILE, not both");
        }
        snap = readDescriptor(descriptor);
      } else {
        if (dir == null || name == null) {
          throw usage("name the snapshot: DIR NAME, or --descriptor IMAGE.snapshot.json");
        }
        snap = find(dir, name);
      }
      String text = snap.path("attributes").path(WriterMetadata.ATTRIBUTE).asText(null);
      JsonNode writers = text == null ? VolumeAccess.JSON.createArrayNode() : VolumeAccess.JSON.readTree(text);
      List<String> written = new ArrayList<>();
      if (root != null) {
        if (!Files.isDirectory(root)) {
          throw new CommandException("--write-to " + root + ": not a directory (mount the copy of the snapshot there)");
        }
        for (JsonNode w : writers) {
          for (JsonNode f : w.path("files")) {
            written.add(write(root, f).toString());
          }
        }
      }
      if (json) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("volume", descriptor != null ? snap.path("volume").asText() : VolumeAccess.ref(dir));
        doc.put("snapshot", snap.path("name").asText());
        doc.put("id", snap.path("id").asLong());
        doc.put("writers", writers);
        doc.put("written", written);
        printJson(doc);
        return ExitCodes.OK;
      }
      if (writers.isEmpty()) {
        out().printf("Snapshot '%s' was taken without writers: it is crash-consistent, with no writer metadata.%n",
            snap.path("name").asText());
      }
      for (JsonNode w : writers) {
        out().printf("writer %s%n", w.path("writer").asText());
        w.path("facts").fields().forEachRemaining(e -> out().printf("  %s: %s%n", e.getKey(), e.getValue().asText()));
        for (JsonNode f : w.path("files")) {
          out().printf("  file %s (mode %s):%n", f.path("path").asText(), Integer.toOctalString(f.path("mode").asInt()));
          for (String line : f.path("content").asText().split("\n", -1)) {
            out().printf("    %s%n", line);
          }
        }
      }
      for (String p : written) {
        out().printf("Wrote %s%n", p);
      }
      out().flush();
      return ExitCodes.OK;
    }

    private Path write(Path root, JsonNode f) throws IOException, CommandException {
      String rel = f.path("path").asText();
      Path target = root.resolve(rel).normalize();
      if (rel.isEmpty() || Path.of(rel).isAbsolute() || !target.startsWith(root.normalize())) {
        throw new CommandException("writer metadata names a file outside the copy: " + rel);
      }
      Path parent = target.getParent();
      if (!Files.isDirectory(parent)) {
        throw new CommandException("cannot write " + target + ": " + parent + " does not exist in the copy (is the right "
            + "filesystem mounted at " + root + "?)");
      }
      if (Files.exists(target) && !force) {
        throw new CommandException(target + " exists; pass --force to replace it");
      }
      Path tmp = Files.createTempFile(parent, ".shade-", ".tmp");
      try {
        Files.writeString(tmp, f.path("content").asText(), StandardCharsets.UTF_8);
        Files.setPosixFilePermissions(tmp, permissions(f.path("mode").asInt(0600)));
        Files.setOwner(tmp, Files.getOwner(parent));
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      } finally {
        Files.deleteIfExists(tmp);
      }
      return target;
    }
  }

  /** {@code shade snapshot backup-complete}. */
  @Command(
      name = "backup-complete",
      header = "Tell a snapshot's writers it is safely backed up, so they may release what it no longer needs.",
      description = {
        "The off-host backup service runs this when the snapshot is on tape; an operator may run "
            + "it after a backup made otherwise. Each writer recorded with the snapshot gets its "
            + "backup-complete step: exec hooks are called with backup-complete, PostgreSQL may "
            + "clean up WAL archived before the backup's start (see docs/writers.md). The time is "
            + "kept with the snapshot. For a snapshot set, name one member."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade snapshot backup-complete /var/lib/shade/pg nightly"})
  static final class BackupCompleteCommand extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "DIR", description = "The volume's directory.")
    Path dir;

    @Parameters(index = "1", paramLabel = "NAME", description = "The snapshot: its name, or id=ID.")
    String name;

    @Option(names = "--json", description = "Print one JSON object: {\"volume\", \"volumeUuid\", \"snapshot\", "
        + "\"writers\": [{\"writer\", \"ok\", \"ms\"}], \"previously\"}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      ObjectNode args = volumeArgs(dir).put("snapshot", name);
      JsonNode doc = VolumeAccess.run(VolumeCommands.SNAPSHOT_BACKUP_COMPLETE, args, List.of(dir), Progress.NONE);
      if (json) {
        printJson(doc);
        return ExitCodes.OK;
      }
      JsonNode writers = doc.path("writers");
      String snap = doc.path("snapshot").path("name").asText();
      if (writers.isEmpty()) {
        out().printf("Snapshot '%s' of volume '%s' has no writers; marked backed up.%n", snap, doc.path("volume").asText());
      } else {
        for (JsonNode w : writers) {
          out().printf("  %s: backup-complete done in %.1f ms%n", w.path("writer").asText(), w.path("ms").asDouble());
        }
        out().printf("Snapshot '%s' of volume '%s' marked backed up%s.%n", snap, doc.path("volume").asText(),
            doc.path("previously").isNull() ? "" : " (again; first at " + doc.path("previously").asText() + ")");
      }
      out().flush();
      return ExitCodes.OK;
    }
  }

  /** The snapshot JSON of an export's descriptor, with "volume" set from it. */
  static JsonNode readDescriptor(Path file) throws CommandException {
    JsonNode d;
    try {
      d = VolumeAccess.JSON.readTree(file.toFile());
    } catch (IOException e) {
      throw new CommandException("cannot read the export descriptor " + file + ": " + e.getMessage());
    }
    if (d == null || !d.path("snapshot").isObject() || d.path("format").asInt() != 1) {
      throw new CommandException(file + " is not the descriptor of an exported snapshot (IMAGE.snapshot.json, format 1)");
    }
    ObjectNode s = ((ObjectNode) d.get("snapshot")).deepCopy();
    s.put("volume", d.path("volume").asText());
    return s;
  }

  /** The JSON of snapshot {@code name} (a name or id=N) of the volume in {@code dir}. */
  static JsonNode find(Path dir, String name) throws IOException, CommandException {
    ObjectNode args = ShadeCommand.volumeArgs(dir).put("snapshot", name);
    return VolumeAccess.run(VolumeCommands.SNAPSHOT_SHOW, args, List.of(dir), Progress.NONE);
  }

  private static Set<PosixFilePermission> permissions(int mode) {
    Set<PosixFilePermission> out = EnumSet.noneOf(PosixFilePermission.class);
    PosixFilePermission[] bits = {PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE,
        PosixFilePermission.OTHERS_READ, PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE,
        PosixFilePermission.GROUP_READ, PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE,
        PosixFilePermission.OWNER_READ};
    for (int i = 0; i < bits.length; i++) {
      if ((mode & (1 << i)) != 0) {
        out.add(bits[i]);
      }
    }
    return out;
  }
}
