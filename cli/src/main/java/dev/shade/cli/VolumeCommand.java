package dev.shade.cli;

import dev.shade.nativeio.FileHandle;
import dev.shade.requestor.ops.VolumeCommands;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.provider.Progress;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code shade volume}: create, fill, inspect and roll back copy-on-write volumes. */
@Command(
    name = "volume",
    header = "Create, import, export, inspect and revert volumes.",
    mixinStandardHelpOptions = true,
    subcommands = {
      VolumeCommand.Create.class,
      VolumeCommand.Import.class,
      VolumeCommand.Export.class,
      VolumeCommand.Info.class,
      VolumeCommand.Revert.class
    })
final class VolumeCommand extends CommandGroup {
  /** The volume's layout and use as aligned text, from its {@code volume-info} document. */
  static void printInfo(PrintWriter out, JsonNode v) {
    long used = v.get("diffUsedBytes").asLong();
    long diffMax = v.get("diffMax").asLong();
    long size = v.get("size").asLong();
    JsonNode snaps = v.get("snapshots");
    List<String> names = new ArrayList<>();
    for (JsonNode s : snaps) {
      names.add(s.get("name").asText());
    }
    out.printf("volume      %s%n", v.get("name").asText());
    out.printf("uuid        %s%n", v.get("uuid").asText());
    out.printf("directory   %s%n", v.get("directory").asText());
    out.printf("size        %s (%d bytes)%n", Sizes.format(size), size);
    out.printf("block size  %s%n", Sizes.format(v.get("blockSize").asLong()));
    out.printf("origin      %s%n", v.get("origin").asText());
    out.printf(Locale.ROOT, "diff area   %s: %s used of %s (%.0f%%)%n", v.get("diffArea").asText(),
        Sizes.format(used), Sizes.format(diffMax), 100.0 * used / diffMax);
    out.printf("snapshots   %s%n", names.isEmpty() ? "none" : names.size() + " (" + String.join(", ", names) + ")");
    out.flush();
  }

  /** {@code shade volume create}. */
  @Command(
      name = "create",
      header = "Create a volume: an origin, a diff area and its metadata.",
      description = {
        "DIR holds the volume's metadata and, unless --origin and --diff-area say otherwise, "
            + "its origin (origin.img) and diff area (diff.area). DIR is created if missing and "
            + "must be empty otherwise."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade volume create /var/lib/shade/db --size 10G",
        "  shade volume create /var/lib/shade/db --size 10G --diff-max 2G --block-size 16K",
        "  shade volume create /var/lib/shade/db --origin /srv/db.img   # size of db.img"
      })
  static final class Create extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "DIR", description = "Directory for the new volume.")
    Path dir;

    @Option(names = "--size", paramLabel = "SIZE", converter = Sizes.class,
        description = "Volume size, e.g. 64M or 10G (K/M/G/T are powers of 1024). "
            + "Required unless --origin is given, whose size it then defaults to.")
    Long size;

    @Option(names = "--block-size", paramLabel = "SIZE", converter = Sizes.class, defaultValue = "64K",
        description = "Copy-on-write granularity: a power of two from 4K to 1M.")
    long blockSize;

    @Option(names = "--diff-max", paramLabel = "SIZE", converter = Sizes.class,
        description = "Most the diff area may hold; the oldest snapshots are deleted to stay "
            + "under it. Default: a tenth of the size, at least 16 blocks.")
    Long diffMax;

    @Option(names = "--origin", paramLabel = "PATH",
        description = "An existing file or block device to use as the origin.")
    Path origin;

    @Option(names = "--diff-area", paramLabel = "PATH",
        description = "Where to put the diff area file.")
    Path diffArea;

    @Option(names = "--json", description = "Print the new volume as one JSON object (as 'volume info --json').")
    boolean json;

    @Override
    public Integer call() throws Exception {
      VolumeConfig config = config();
      if (Volume.isVolume(dir)) {
        throw new CommandException("a volume already exists in " + dir);
      }
      try (Volume v = create(config)) {
        JsonNode doc = VolumeAccess.JSON.valueToTree(VolumeCommands.info(v));
        if (json) {
          printJson(doc);
        } else {
          out().printf("Created volume '%s'.%n", v.name());
          printInfo(out(), doc);
        }
      }
      return ExitCodes.OK;
    }

    private Volume create(VolumeConfig config) throws IOException {
      boolean existed = Files.exists(dir);
      try {
        return Volume.create(dir, config);
      } catch (IOException | RuntimeException e) {
        // Volume.create removes the files it made; the directory is ours to remove if we made it
        if (!existed) {
          try {
            deleteTree(dir, false);
          } catch (IOException cleanup) {
            e.addSuppressed(cleanup);
          }
        }
        throw e;
      }
    }

    private VolumeConfig config() throws IOException, CommandException {
      if (origin != null && !Files.exists(origin)) {
        throw new CommandException("origin does not exist: " + origin);
      }
      if (origin != null && Files.isDirectory(origin)) {
        throw new CommandException("origin must be a file or a block device, not a directory: " + origin);
      }
      long bytes;
      if (size != null) {
        bytes = size;
      } else if (origin != null) {
        try (FileHandle h = FileHandle.openReadOnly(origin)) {
          bytes = h.size();
        }
        if (bytes == 0) {
          throw new CommandException("origin is empty, so it cannot give the volume size; pass --size: " + origin);
        }
      } else {
        throw usage("Missing required option: '--size=SIZE' (it may be left out only with --origin)");
      }
      if (blockSize > Integer.MAX_VALUE) {
        throw usage("block size must be a power of two between 4K and 1M: " + blockSize);
      }
      int bs = (int) blockSize;
      try {
        return new VolumeConfig(bytes, bs,
            diffMax != null ? diffMax : VolumeConfig.defaultDiffMax(bytes, bs),
            origin, diffArea);
      } catch (IllegalArgumentException e) {
        throw usage(e.getMessage());
      }
    }
  }

  /** {@code shade volume import}. */
  @Command(
      name = "import",
      header = "Write a file's bytes into a volume through the copy-on-write path.",
      description = {
        "Every write goes through the volume like any production write: blocks that snapshots "
            + "still need are copied to the diff area first. The volume is flushed at the end."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade volume import /var/lib/shade/db base.img",
        "  shade volume import /var/lib/shade/db patch.bin --offset 1M"
      })
  static final class Import extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "DIR", description = "The volume's directory.")
    Path dir;

    @Parameters(index = "1", paramLabel = "FILE", description = "The file to write into the volume.")
    Path file;

    @Option(names = "--offset", paramLabel = "BYTES", converter = Sizes.class, defaultValue = "0",
        description = "Where in the volume the file's first byte goes (K/M/G/T allowed).")
    long offset;

    @Option(names = "--json", description = "Print one JSON object: {\"volume\", \"volumeUuid\", \"file\", "
        + "\"bytes\", \"offset\", \"seconds\"}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      ObjectNode args = volumeArgs(dir).put("file", file.toAbsolutePath().toString()).put("offset", offset);
      JsonNode doc;
      try (ProgressLine progress = progress("import")) {
        doc = VolumeAccess.run(VolumeCommands.VOLUME_IMPORT, args, List.of(dir), progress);
      }
      if (json) {
        printJson(doc);
        return ExitCodes.OK;
      }
      long length = doc.get("bytes").asLong();
      out().printf("Imported %s (%d bytes) from %s into volume '%s' at offset %d in %s.%n",
          Sizes.format(length), length, file, doc.get("volume").asText(), offset,
          ProgressLine.duration(doc.get("seconds").asDouble()));
      out().flush();
      return ExitCodes.OK;
    }
  }

  /** {@code shade volume export}. */
  @Command(
      name = "export",
      header = "Write a volume's current contents to a plain (sparse) image file.",
      description = {
        "The image is as long as the volume; blocks of zeros are left as holes. It is written "
            + "beside FILE under a temporary name and renamed when complete, readable by its owner only."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade volume export /var/lib/shade/db db-now.img"})
  static final class Export extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "DIR", description = "The volume's directory.")
    Path dir;

    @Parameters(index = "1", paramLabel = "FILE", description = "The image file to write.")
    Path file;

    @Option(names = "--force", description = "Replace FILE if it exists.")
    boolean force;

    @Option(names = "--json", description = "Print one JSON object: {\"volume\", \"volumeUuid\", \"file\", "
        + "\"size\", \"dataBytes\", \"seconds\"}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      exportImage(VolumeCommands.VOLUME_EXPORT, volumeArgs(dir), dir, file, force, json,
          doc -> "volume '" + doc.get("volume").asText() + "'");
      return ExitCodes.OK;
    }
  }

  /** {@code shade volume info}. */
  @Command(
      name = "info",
      header = "Show a volume's layout, diff area use and snapshots.",
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade volume info /var/lib/shade/db", "  shade volume info /var/lib/shade/db --json"})
  static final class Info extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "DIR", description = "The volume's directory.")
    Path dir;

    @Option(names = "--json", description = "Print one JSON object: name, directory, size, blockSize, "
        + "diffMax, diffUsedBytes, origin, diffArea, snapshots.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      JsonNode doc = VolumeAccess.run(VolumeCommands.VOLUME_INFO, volumeArgs(dir), List.of(dir), Progress.NONE);
      if (json) {
        printJson(doc);
      } else {
        printInfo(out(), doc);
      }
      return ExitCodes.OK;
    }
  }

  /** {@code shade volume revert}. */
  @Command(
      name = "revert",
      header = "Roll a volume back to a snapshot; newer snapshots are deleted.",
      description = {
        "Shows what will be lost (the newer snapshots and how many bytes change) and asks on the "
            + "terminal before going on. Without a terminal it refuses unless --yes is given. "
            + "Only blocks that differ are copied back; an interrupted revert completes when the "
            + "volume is next opened or reverted again."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade volume revert /var/lib/shade/db nightly",
        "  shade volume revert /var/lib/shade/db nightly --yes   # from scripts"
      })
  static final class Revert extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "DIR", description = "The volume's directory.")
    Path dir;

    @Parameters(index = "1", paramLabel = "NAME", description = "The snapshot to go back to: its name, or id=ID.")
    String name;

    @Option(names = {"-y", "--yes"}, description = "Do not ask; revert at once.")
    boolean yes;

    @Override
    public Integer call() throws Exception {
      ObjectNode args = volumeArgs(dir).put("snapshot", name);
      JsonNode plan = VolumeAccess.run(VolumeCommands.VOLUME_REVERT_PLAN, args, List.of(dir), Progress.NONE);
      String volume = plan.get("volume").asText();
      out().println(describe(plan));
      out().flush();
      if (!yes) {
        confirm(volume);
      }
      JsonNode done;
      try (ProgressLine progress = progress("revert")) {
        done = VolumeAccess.run(VolumeCommands.VOLUME_REVERT, args, List.of(dir), progress);
      }
      out().printf("Reverted volume '%s' to snapshot '%s' in %s.%n", volume, done.get("snapshot").asText(),
          ProgressLine.duration(done.get("seconds").asDouble()));
      out().flush();
      return ExitCodes.OK;
    }

    private void confirm(String volume) throws CommandException {
      Terminal t = terminal();
      if (!t.interactive()) {
        throw new CommandException("not reverting volume '" + volume + "' without confirmation: "
            + "there is no terminal to ask on; pass --yes to revert to '" + name + "'");
      }
      String answer = t.readLine("Proceed? [y/N] ");
      if (answer == null) {
        throw new CommandException("not reverting volume '" + volume + "': no answer (input closed); "
            + "pass --yes to revert without asking");
      }
      String a = answer.strip().toLowerCase(Locale.ROOT);
      if (!a.equals("y") && !a.equals("yes")) {
        throw new CommandException("revert cancelled; volume '" + volume + "' is unchanged");
      }
    }

    /** What a revert will do, from its {@code volume-revert-plan} document. */
    static String describe(JsonNode plan) {
      JsonNode target = plan.get("target");
      List<String> deleted = new ArrayList<>();
      for (JsonNode s : plan.get("deleted")) {
        deleted.add(s.get("name").asText());
      }
      long changed = plan.get("changedBytes").asLong();
      return String.format("Reverting volume '%s' to snapshot '%s' (taken %s) copies back %s (%d bytes) "
              + "and deletes %s.",
          plan.get("volume").asText(), target.get("name").asText(), target.get("created").asText(),
          Sizes.format(changed), changed,
          deleted.isEmpty() ? "no snapshots"
              : deleted.size() + " newer snapshot" + (deleted.size() == 1 ? "" : "s") + ": " + String.join(", ", deleted));
    }
  }
}
