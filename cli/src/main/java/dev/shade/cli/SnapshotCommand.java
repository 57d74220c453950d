package dev.shade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.provider.Progress;
import dev.shade.requestor.ops.VolumeCommands;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code shade snapshot}: take, list, delete, export, compare and show snapshots. */
@Command(
    name = "snapshot",
    header = "Create, list, delete, export, compare and show snapshots.",
    mixinStandardHelpOptions = true,
    subcommands = {
      SnapshotCommand.Create.class,
      SnapshotCommand.ListSnapshots.class,
      SnapshotCommand.Delete.class,
      SnapshotCommand.Export.class,
      SnapshotCommand.Diff.class,
      SnapshotCommand.Show.class,
      SnapshotWriterCommands.Metadata.class,
      SnapshotWriterCommands.BackupCompleteCommand.class
    })
final class SnapshotCommand extends CommandGroup {
  /** {@code shade snapshot create}. */
  @Command(
      name = "create",
      header = "Take a snapshot of one volume, or one atomic snapshot set of several.",
      description = {
        "The snapshot holds every write that returned before it. With several DIRs, one snapshot "
            + "is taken on each volume at the same instant (writes to all of them are held "
            + "together), and the snapshots share a set id.",
        "",
        "With --writer, the snapshot is application-consistent: each writer prepares (PostgreSQL "
            + "starts a backup), freezes (hooks run, SQLite holds its writers, the filesystem is "
            + "frozen), the set is committed, and everything is thawed at once. The freeze is a lease "
            + "held by a guard process: it thaws by itself after --freeze-timeout even if this "
            + "command hangs or is killed, and then the snapshot is discarded, never kept as if "
            + "consistent. What a writer returns (PostgreSQL's backup_label) is kept with the "
            + "snapshot: shade snapshot show lists it."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade snapshot create /var/lib/shade/db",
        "  shade snapshot create /var/lib/shade/db --name before-upgrade",
        "  shade snapshot create /var/lib/shade/db --name pre-deploy --attribute ticket=OPS-12",
        "  shade snapshot create /var/lib/shade/db /var/lib/shade/wal --name nightly   # a set",
        "  shade snapshot create /var/lib/shade/db --writer fs:/srv/db --writer sqlite:/srv/db/app.db",
        "  shade snapshot create /var/lib/shade/pg /var/lib/shade/wal --writer 'postgres:host=127.0.0.1 user=postgres' \\",
        "      --writer fs:/srv/pg --writer fs:/srv/pg-wal --freeze-timeout 2s --json"
      })
  static final class Create extends ShadeCommand {
    @Parameters(arity = "1..*", paramLabel = "DIR", description = "The volume directories.")
    List<Path> dirs;

    @Option(names = "--name", paramLabel = "NAME",
        description = "Snapshot name, unique on each volume. Default: s<id> (per volume).")
    String name;

    @Option(names = "--writer", paramLabel = "SPEC",
        description = {"An application or filesystem to make consistent for the snapshot (repeatable): "
            + "fs:MOUNTPOINT, postgres:CONNINFO, sqlite:DBFILE or exec:DIR (a directory of hooks). "
            + "They are frozen together, applications before filesystems, for as short as it takes "
            + "to commit the snapshot of every DIR at one instant, then thawed. See docs/writers.md."})
    List<String> writers = new ArrayList<>();

    @Option(names = "--freeze-timeout", paramLabel = "DURATION", converter = Durations.class,
        description = "Longest the writers may stay frozen (e.g. 5s, 500ms); past it they are thawed by a guard "
            + "process whatever this command is doing, and the snapshot is discarded. Default: 5s.")
    Duration freezeTimeout;

    @Option(names = "--attribute", paramLabel = "KEY=VALUE",
        description = "An attribute of the snapshot (repeatable), kept with it in the volume's records; every "
            + "member of a set gets it. KEY: 1-200 letters, digits and . _ -.")
    List<String> attributes = new ArrayList<>();

    @Option(names = "--json", description = "Print one JSON object: {\"setId\", \"snapshots\": [{\"volume\", "
        + "\"directory\", \"name\", \"id\", \"created\", \"diffBytes\", \"setId\", \"attributes\"}]}; with --writer "
        + "also \"writers\" (each one's identify facts, phase durations in ms and metadata), \"freezeMs\" (first "
        + "freeze to last thaw), \"freezeTimeoutMs\", \"commitMs\" and \"totalMs\".")
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
      ObjectNode args = VolumeAccess.args();
      ArrayNode refs = args.putArray("volumes");
      for (Path dir : dirs) {
        refs.add(VolumeAccess.ref(dir));
      }
      args.put("name", name);
      if (!writers.isEmpty()) {
        writers.forEach(args.putArray("writers")::add);
      }
      if (freezeTimeout != null) {
        if (writers.isEmpty()) {
          throw usage("--freeze-timeout needs --writer: without writers nothing is frozen");
        }
        if (freezeTimeout.isZero() || freezeTimeout.isNegative()) {
          throw usage("--freeze-timeout must be positive: " + freezeTimeout);
        }
        args.put("freezeTimeout", freezeTimeout.toMillis());
      }
      if (!attributes.isEmpty()) {
        ObjectNode attrs = args.putObject("attributes");
        for (String a : attributes) {
          int eq = a.indexOf('=');
          if (eq < 0) {
            throw usage("--attribute needs KEY=VALUE: " + a);
          }
          String key = a.substring(0, eq);
          if (attrs.has(key)) {
            throw usage("--attribute " + key + " given twice");
          }
          attrs.put(key, a.substring(eq + 1));
        }
      }
      JsonNode doc = VolumeAccess.run(VolumeCommands.SNAPSHOT_CREATE, args, dirs, Progress.NONE);
      if (json) {
        printJson(doc);
        return ExitCodes.OK;
      }
      JsonNode snaps = doc.get("snapshots");
      String setId = doc.path("setId").isNull() ? null : doc.path("setId").asText();
      if (setId != null) {
        out().printf("Created snapshot set %s of %d volumes:%n", setId, snaps.size());
      }
      for (JsonNode s : snaps) {
        out().printf("%sCreated snapshot '%s' (id %d) of volume '%s' at %s.%n",
            setId != null ? "  " : "", s.get("name").asText(), s.get("id").asLong(), s.get("volume").asText(),
            s.get("created").asText());
      }
      if (doc.has("writers")) {
        for (JsonNode w : doc.get("writers")) {
          JsonNode p = w.path("phases");
          out().printf("  writer %s: prepare %.1f ms, freeze %.1f ms, thaw %.1f ms, post-snapshot %.1f ms%s%n",
              w.path("writer").asText(), p.path("prepareMs").asDouble(), p.path("freezeMs").asDouble(),
              p.path("thawMs").asDouble(), p.path("postSnapshotMs").asDouble(),
              w.path("metadata").path("files").size() > 0
                  ? "; metadata: " + w.path("metadata").path("files").size() + " file(s) kept with the snapshot" : "");
        }
        out().printf("Writers were frozen for %.1f ms (limit %d ms).%n", doc.path("freezeMs").asDouble(),
            doc.path("freezeTimeoutMs").asLong());
      }
      out().flush();
      return ExitCodes.OK;
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
        + "\"diffBytes\", \"setId\", \"attributes\"}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      JsonNode doc = VolumeAccess.run(VolumeCommands.SNAPSHOT_LIST, volumeArgs(dir), List.of(dir), Progress.NONE);
      JsonNode snaps = doc.get("snapshots");
      if (json) {
        printJson(snaps);
        return ExitCodes.OK;
      }
      if (snaps.isEmpty()) {
        out().printf("No snapshots on volume '%s'.%n", doc.get("volume").asText());
        return ExitCodes.OK;
      }
      int width = 4;
      for (JsonNode s : snaps) {
        width = Math.max(width, s.get("name").asText().length());
      }
      String row = "%-" + width + "s  %6s  %-27s  %10s  %s%n";
      out().printf(row, "NAME", "ID", "CREATED", "DIFF", "SET");
      for (JsonNode s : snaps) {
        out().printf(row, s.get("name").asText(), s.get("id").asLong(), s.get("created").asText(),
            Sizes.format(s.get("diffBytes").asLong()), s.get("setId").isNull() ? "-" : s.get("setId").asText());
      }
      out().flush();
      return ExitCodes.OK;
    }
  }

  /** {@code shade snapshot show}. */
  @Command(
      name = "show",
      header = "Show one snapshot, with its attributes.",
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade snapshot show /var/lib/shade/db nightly", "  shade snapshot show /var/lib/shade/db id=4 --json"})
  static final class Show extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "DIR", description = "The volume's directory.")
    Path dir;

    @Parameters(index = "1", paramLabel = "SNAPSHOT", description = "The snapshot: its name, or id=ID.")
    String snapshot;

    @Option(names = "--json", description = "Print one JSON object: {\"volume\", \"volumeUuid\", \"name\", "
        + "\"id\", \"created\", \"diffBytes\", \"setId\", \"attributes\": {KEY: VALUE}}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      ObjectNode args = volumeArgs(dir).put("snapshot", snapshot);
      JsonNode doc = VolumeAccess.run(VolumeCommands.SNAPSHOT_SHOW, args, List.of(dir), Progress.NONE);
      if (json) {
        printJson(doc);
        return ExitCodes.OK;
      }
      long diff = doc.get("diffBytes").asLong();
      out().printf("name:       %s%n", doc.get("name").asText());
      out().printf("id:         %d%n", doc.get("id").asLong());
      out().printf("created:    %s%n", doc.get("created").asText());
      out().printf("diff bytes: %d (%s)%n", diff, Sizes.format(diff));
      out().printf("set id:     %s%n", doc.get("setId").isNull() ? "-" : doc.get("setId").asText());
      JsonNode attrs = doc.get("attributes");
      if (attrs.isEmpty()) {
        out().printf("attributes: none%n");
      } else {
        out().printf("attributes:%n");
        for (Iterator<Map.Entry<String, JsonNode>> it = attrs.fields(); it.hasNext(); ) {
          Map.Entry<String, JsonNode> e = it.next();
          String value = e.getValue().asText();
          if (value.indexOf('\n') < 0 && value.indexOf('\r') < 0) {
            out().printf("  %s: %s%n", e.getKey(), value);
            continue;
          }
          out().printf("  %s:%n", e.getKey());
          String body = value.endsWith("\n") ? value.substring(0, value.length() - 1) : value;
          for (String line : body.split("\r?\n|\r", -1)) {
            out().printf("    %s%n", line);
          }
        }
      }
      out().flush();
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

    @Parameters(index = "1", paramLabel = "NAME", description = "The snapshot to delete: its name, or id=ID.")
    String name;

    @Option(names = "--json", description = "Print one JSON object: {\"volume\", \"volumeUuid\", \"snapshot\", "
        + "\"id\", \"diffUsedBytes\", \"diffUsedBytesBefore\"}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      ObjectNode args = volumeArgs(dir).put("snapshot", name);
      JsonNode doc = VolumeAccess.run(VolumeCommands.SNAPSHOT_DELETE, args, List.of(dir), Progress.NONE);
      if (json) {
        printJson(doc);
        return ExitCodes.OK;
      }
      out().printf("Deleted snapshot '%s' of volume '%s'; diff area in use: %s (was %s).%n",
          doc.get("snapshot").asText(), doc.get("volume").asText(), Sizes.format(doc.get("diffUsedBytes").asLong()),
          Sizes.format(doc.get("diffUsedBytesBefore").asLong()));
      out().flush();
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

    @Parameters(index = "1", paramLabel = "NAME", description = "The snapshot to export: its name, or id=ID.")
    String name;

    @Parameters(index = "2", paramLabel = "FILE", description = "The image file to write.")
    Path file;

    @Option(names = "--force", description = "Replace FILE if it exists.")
    boolean force;

    @Option(names = "--json", description = "Print one JSON object: {\"volume\", \"volumeUuid\", \"snapshot\", "
        + "\"snapshotId\", \"file\", \"size\", \"dataBytes\", \"seconds\"}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      ObjectNode args = volumeArgs(dir).put("snapshot", name);
      exportImage(VolumeCommands.SNAPSHOT_EXPORT, args, dir, file, force, json,
          doc -> "snapshot '" + doc.get("snapshot").asText() + "' of volume '" + doc.get("volume").asText() + "'");
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

    @Parameters(index = "1", paramLabel = "FROM", description = "The older snapshot: its name, or id=ID.")
    String from;

    @Parameters(index = "2", paramLabel = "TO", arity = "0..1",
        description = "The newer snapshot (name or id=ID). Default: the current origin.")
    String to;

    @Option(names = "--json", description = "Print one JSON object: {\"volume\", \"from\", \"to\" (null: "
        + "the origin), \"ranges\": [{\"offset\", \"length\"}], \"changedBytes\"}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      ObjectNode args = volumeArgs(dir).put("from", from).put("to", to);
      JsonNode doc = VolumeAccess.run(VolumeCommands.SNAPSHOT_DIFF, args, List.of(dir), Progress.NONE);
      if (json) {
        printJson(doc);
        return ExitCodes.OK;
      }
      JsonNode ranges = doc.get("ranges");
      long changed = doc.get("changedBytes").asLong();
      out().printf("Changed from '%s' to %s on volume '%s': %s (%d bytes) in %d range%s.%n",
          doc.get("from").asText(), to == null ? "the current origin" : "'" + doc.get("to").asText() + "'", doc.get("volume").asText(), Sizes.format(changed),
          changed, ranges.size(), ranges.size() == 1 ? "" : "s");
      if (!ranges.isEmpty()) {
        out().printf("  %16s  %16s%n", "OFFSET", "LENGTH");
        for (JsonNode r : ranges) {
          long offset = r.get("offset").asLong();
          long length = r.get("length").asLong();
          out().printf("  %16d  %16d  (%s at %s)%n", offset, length, Sizes.format(length), Sizes.format(offset));
        }
      }
      out().flush();
      return ExitCodes.OK;
    }
  }
}
