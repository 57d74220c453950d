package dev.shade.cli;

import dev.shade.provider.BlockSource;
import dev.shade.provider.Range;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code shade snapshot}: take, list, delete, export and compare snapshots. */
@Command(
    name = "snapshot",
    header = "Create, list, delete, export and compare snapshots.",
    mixinStandardHelpOptions = true,
    subcommands = {
      SnapshotCommand.Create.class,
      SnapshotCommand.ListSnapshots.class,
      SnapshotCommand.Delete.class,
      SnapshotCommand.Export.class,
      SnapshotCommand.Diff.class
    })
final class SnapshotCommand extends CommandGroup {
  /** {@code shade snapshot create}. */
  @Command(
      name = "create",
      header = "Take a snapshot of one volume, or one atomic snapshot set of several.",
      description = {
        "The snapshot holds every write that returned before it. With several DIRs, one snapshot "
            + "is taken on each volume at the same instant (writes to all of them are held "
            + "together), and the snapshots share a set id."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade snapshot create /var/lib/shade/db",
        "  shade snapshot create /var/lib/shade/db --name before-upgrade",
        "  shade snapshot create /var/lib/shade/db /var/lib/shade/wal --name nightly   # a set"
      })
  static final class Create extends ShadeCommand {
    @Parameters(arity = "1..*", paramLabel = "DIR", description = "The volume directories.")
    List<Path> dirs;

    @Option(names = "--name", paramLabel = "NAME",
        description = "Snapshot name, unique on each volume. Default: s<id> (per volume).")
    String name;

    @Option(names = "--json", description = "Print one JSON object: {\"setId\", \"snapshots\": [{\"volume\", "
        + "\"directory\", \"name\", \"id\", \"created\", \"diffBytes\", \"setId\"}]}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      // checked before opening: a second open of one volume would fail as "in use"
      Set<Path> seen = new HashSet<>();
      for (Path dir : dirs) {
        if (!seen.add(dir.toAbsolutePath().normalize())) {
          throw usage("volume named twice: " + dir);
        }
      }
      List<Volume> volumes = new ArrayList<>();
      try {
        for (Path dir : dirs) {
          volumes.add(openVolume(dir));
        }
        List<SnapshotInfo> taken = volumes.size() == 1
            ? List.of(volumes.get(0).createSnapshot(name))
            : Volume.createSnapshotSet(volumes, name);
        report(volumes, taken);
      } finally {
        IOException closing = closeAll(volumes);
        if (closing != null) {
          throw closing;
        }
      }
      return ExitCodes.OK;
    }

    private void report(List<Volume> volumes, List<SnapshotInfo> taken) {
      String setId = volumes.size() == 1 ? null : taken.get(0).setId();
      if (json) {
        List<Map<String, Object>> list = new ArrayList<>();
        for (int i = 0; i < taken.size(); i++) {
          Map<String, Object> m = new LinkedHashMap<>();
          m.put("volume", volumes.get(i).name());
          m.put("directory", volumes.get(i).directory().toAbsolutePath().toString());
          m.putAll(toJson(taken.get(i)));
          list.add(m);
        }
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("setId", setId);
        doc.put("snapshots", list);
        printJson(doc);
        return;
      }
      if (setId != null) {
        out().printf("Created snapshot set %s of %d volumes:%n", setId, volumes.size());
      }
      for (int i = 0; i < taken.size(); i++) {
        SnapshotInfo s = taken.get(i);
        out().printf("%sCreated snapshot '%s' (id %d) of volume '%s' at %s.%n",
            setId != null ? "  " : "", s.name(), s.id(), volumes.get(i).name(), s.created());
      }
      out().flush();
    }
  }

  /** {@code shade snapshot list}. */
  @Command(
      name = "list",
      header = "List a volume's snapshots, oldest first.",
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade snapshot list /var/lib/shade/db", "  shade snapshot list /var/lib/shade/db --json"})
  static final class ListSnapshots extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "DIR", description = "The volume's directory.")
    Path dir;

    @Option(names = "--json", description = "Print one JSON array of {\"name\", \"id\", \"created\", "
        + "\"diffBytes\", \"setId\"}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      try (Volume v = openVolume(dir)) {
        List<SnapshotInfo> snaps = v.snapshots();
        if (json) {
          printJson(snaps.stream().map(ShadeCommand::toJson).collect(Collectors.toList()));
          return ExitCodes.OK;
        }
        if (snaps.isEmpty()) {
          out().printf("No snapshots on volume '%s'.%n", v.name());
          return ExitCodes.OK;
        }
        int width = Math.max(4, snaps.stream().mapToInt(s -> s.name().length()).max().orElse(0));
        String row = "%-" + width + "s  %6s  %-27s  %10s  %s%n";
        out().printf(row, "NAME", "ID", "CREATED", "DIFF", "SET");
        for (SnapshotInfo s : snaps) {
          out().printf(row, s.name(), s.id(), s.created(), Sizes.format(s.diffBytes()),
              s.setId() == null ? "-" : s.setId());
        }
        out().flush();
      }
      return ExitCodes.OK;
    }
  }

  /** {@code shade snapshot delete}. */
  @Command(
      name = "delete",
      header = "Delete a snapshot; its old blocks pass to the next older snapshot where it needs them.",
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade snapshot delete /var/lib/shade/db s1"})
  static final class Delete extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "DIR", description = "The volume's directory.")
    Path dir;

    @Parameters(index = "1", paramLabel = "NAME", description = "The snapshot to delete.")
    String name;

    @Override
    public Integer call() throws Exception {
      try (Volume v = openVolume(dir)) {
        long before = v.diffUsedBytes();
        v.deleteSnapshot(name);
        out().printf("Deleted snapshot '%s' of volume '%s'; diff area in use: %s (was %s).%n",
            name, v.name(), Sizes.format(v.diffUsedBytes()), Sizes.format(before));
      }
      return ExitCodes.OK;
    }
  }

  /** {@code shade snapshot export}. */
  @Command(
      name = "export",
      header = "Write a snapshot to a plain (sparse) image file.",
      description = {
        "The image is as long as the volume and holds exactly what the volume held when the "
            + "snapshot was taken; blocks of zeros are left as holes. It is written beside FILE "
            + "under a temporary name and renamed when complete, readable by its owner only."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade snapshot export /var/lib/shade/db nightly /backup/db-nightly.img"})
  static final class Export extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "DIR", description = "The volume's directory.")
    Path dir;

    @Parameters(index = "1", paramLabel = "NAME", description = "The snapshot to export.")
    String name;

    @Parameters(index = "2", paramLabel = "FILE", description = "The image file to write.")
    Path file;

    @Option(names = "--force", description = "Replace FILE if it exists.")
    boolean force;

    @Override
    public Integer call() throws Exception {
      try (Volume v = openVolume(dir); BlockSource snapshot = v.openSnapshot(name)) {
        exportImage(snapshot, file, force, "snapshot '" + name + "' of volume '" + v.name() + "'");
      }
      return ExitCodes.OK;
    }
  }

  /** {@code shade snapshot diff}. */
  @Command(
      name = "diff",
      header = "Show which blocks changed between two snapshots, or a snapshot and now.",
      description = {
        "Answers from the copy-on-write tables without reading any data, in whole blocks. "
            + "Without TO, compares FROM with the current contents of the volume."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade snapshot diff /var/lib/shade/db monday tuesday",
        "  shade snapshot diff /var/lib/shade/db monday --json   # monday vs. now"
      })
  static final class Diff extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "DIR", description = "The volume's directory.")
    Path dir;

    @Parameters(index = "1", paramLabel = "FROM", description = "The older snapshot.")
    String from;

    @Parameters(index = "2", paramLabel = "TO", arity = "0..1",
        description = "The newer snapshot. Default: the current origin.")
    String to;

    @Option(names = "--json", description = "Print one JSON object: {\"volume\", \"from\", \"to\" (null: "
        + "the origin), \"ranges\": [{\"offset\", \"length\"}], \"changedBytes\"}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      try (Volume v = openVolume(dir)) {
        List<Range> ranges = v.changedRanges(from, to);
        long changed = ranges.stream().mapToLong(Range::length).sum();
        if (json) {
          Map<String, Object> doc = new LinkedHashMap<>();
          doc.put("volume", v.name());
          doc.put("from", from);
          doc.put("to", to);
          doc.put("ranges", ranges); // a record: {"offset", "length"}
          doc.put("changedBytes", changed);
          printJson(doc);
          return ExitCodes.OK;
        }
        out().printf("Changed from '%s' to %s on volume '%s': %s (%d bytes) in %d range%s.%n",
            from, to == null ? "the current origin" : "'" + to + "'", v.name(), Sizes.format(changed),
            changed, ranges.size(), ranges.size() == 1 ? "" : "s");
        if (!ranges.isEmpty()) {
          out().printf("  %16s  %16s%n", "OFFSET", "LENGTH");
          for (Range r : ranges) {
            out().printf("  %16d  %16d  (%s at %s)%n", r.offset(), r.length(), Sizes.format(r.length()),
                Sizes.format(r.offset()));
          }
        }
        out().flush();
      }
      return ExitCodes.OK;
    }
  }
}
