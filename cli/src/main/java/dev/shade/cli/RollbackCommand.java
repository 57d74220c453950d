package dev.shade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.provider.Progress;
import dev.shade.requestor.control.ControlException;
import dev.shade.requestor.ops.Rollback;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code shade rollback}: a live volume back to a snapshot, with what uses it stopped and started again. */
@Command(
    name = "rollback",
    header = "Roll a live volume back to a snapshot, stopping what uses it and starting it again.",
    description = {
      "Shows what will be lost (the bytes changed since the snapshot; newer snapshots only with "
          + "--no-before-snapshot) and asks on the terminal unless --yes is given (without a terminal "
          + "it refuses). Then stops the writers in the order given (their stop steps: stop the "
          + "database, unmount, a hook that disconnects the NBD client), disconnects the volume's NBD "
          + "clients when --disconnect-clients is given, takes a snapshot named "
          + "before-rollback-<UTC time> so that the rollback can be undone, reverts, and starts the "
          + "writers again in reverse order (also when the revert failed).",
      "",
      "With the before-rollback snapshot every snapshot is kept: rolling back to it undoes the "
          + "rollback. Without it, the snapshots newer than NAME are deleted. It refuses while an NBD "
          + "client has the volume open for writing and nothing given stops it. The revert is "
          + "crash-safe: an interrupted one finishes when the volume is next opened."
    },
    mixinStandardHelpOptions = true,
    footerHeading = "%nExamples:%n",
    footer = {
      "  shade rollback /var/lib/shade/db --to nightly \\",
      "      --writer postgres:'host=/run/postgresql' --writer fs:/srv/pg --writer exec:/etc/shade/nbd.d",
      "  shade rollback /var/lib/shade/db --to nightly --disconnect-clients --yes --json",
      "  shade rollback /var/lib/shade/db --to before-rollback-20261201T101500Z --yes   # undo it"
    })
final class RollbackCommand extends ShadeCommand {
  @Parameters(index = "0", paramLabel = "DIR", description = "The volume's directory.")
  Path dir;

  @Option(names = "--to", required = true, paramLabel = "NAME", description = "The snapshot to go back to: its name, or id=ID.")
  String to;

  @Option(names = "--writer", paramLabel = "SPEC", showDefaultValue = picocli.CommandLine.Help.Visibility.NEVER,
      description = "What uses the volume, stopped before and started after, in the order given: "
          + "fs:MOUNTPOINT, postgres:CONNINFO, sqlite:DBFILE, exec:DIR. Repeatable.")
  List<String> writers = new ArrayList<>();

  @Option(names = {"-y", "--yes"}, description = "Do not ask; roll back at once.")
  boolean yes;

  @Option(names = "--no-before-snapshot",
      description = "Take no before-rollback snapshot (the rollback cannot be undone; newer snapshots are deleted).")
  boolean noBeforeSnapshot;

  @Option(names = "--disconnect-clients", description = "Disconnect the NBD clients of the volume's origin first.")
  boolean disconnectClients;

  @Option(names = "--json", description = "Print the report as one JSON object: {\"volume\", \"target\", \"plan\", "
      + "\"steps\": [{\"step\", \"outcome\", \"seconds\", ...}], \"beforeSnapshot\", \"outcome\", \"seconds\"}.")
  boolean json;

  @Override
  public Integer call() throws Exception {
    ObjectNode args = volumeArgs(dir).put("snapshot", to).put("beforeSnapshot", !noBeforeSnapshot)
        .put("disconnectClients", disconnectClients);
    ArrayNode specs = args.putArray("writers");
    writers.forEach(specs::add);
    JsonNode plan = VolumeAccess.run(Rollback.VOLUME_ROLLBACK, args.deepCopy().put("dryRun", true), List.of(dir), Progress.NONE);
    if (!json || !yes) {
      java.io.PrintWriter w = json ? err() : out(); // --json: stdout holds the one document only
      w.println(describe(plan));
      w.flush();
    }
    if (!yes) {
      confirm();
    }
    JsonNode report;
    try (ProgressLine progress = progress("rollback")) {
      report = VolumeAccess.run(Rollback.VOLUME_ROLLBACK, args, List.of(dir), progress);
    } catch (ControlException e) {
      if (e.errorClass().equals(ControlException.IN_USE)) {
        throw new CommandException(e.getMessage() + " (pass --disconnect-clients, or a --writer whose stop step "
            + "disconnects it, e.g. exec:DIR with a hook running nbd-client -d)");
      }
      throw e;
    }
    if (json) {
      printJson(report);
      return ExitCodes.OK;
    }
    for (JsonNode s : report.get("steps")) {
      out().println("  " + step(s));
    }
    JsonNode before = report.get("beforeSnapshot");
    out().printf("Rolled volume '%s' back to snapshot '%s' in %s.%n", report.get("volume").asText(),
        report.get("target").get("name").asText(), ProgressLine.duration(report.get("seconds").asDouble()));
    if (before != null && !before.isNull()) {
      out().printf("Undo with: shade rollback %s --to %s%n", dir, before.get("name").asText());
    }
    out().flush();
    return ExitCodes.OK;
  }

  private void confirm() throws CommandException {
    Terminal t = terminal();
    if (!t.interactive()) {
      throw new CommandException("not rolling back " + dir + " without confirmation: there is no terminal to ask on; "
          + "pass --yes to roll back to '" + to + "'");
    }
    String answer = t.readLine("Roll " + dir + " back to " + to + "? [y/N] ");
    if (answer == null) {
      throw new CommandException("not rolling back " + dir + ": no answer (input closed); pass --yes to roll back without asking");
    }
    String a = answer.strip().toLowerCase(Locale.ROOT);
    if (!a.equals("y") && !a.equals("yes")) {
      throw new CommandException("rollback cancelled; volume " + dir + " is unchanged");
    }
  }

  /** One line of a step of the report. */
  private static String step(JsonNode s) {
    StringBuilder b = new StringBuilder(s.get("step").asText());
    if (s.hasNonNull("writer")) {
      b.append(' ').append(s.get("writer").asText());
    }
    if (s.hasNonNull("snapshot")) {
      b.append(' ').append(s.get("snapshot").asText());
    }
    if (s.has("clients")) {
      b.append(" (").append(s.get("clients").asInt()).append(" NBD client").append(s.get("clients").asInt() == 1 ? "" : "s").append(')');
    }
    b.append(": ").append(s.get("outcome").asText()).append(" in ").append(ProgressLine.duration(s.get("seconds").asDouble()));
    return b.toString();
  }

  /** What the rollback will do, from its dry run's report. */
  static String describe(JsonNode report) {
    JsonNode plan = report.get("plan");
    JsonNode target = report.get("target");
    long changed = plan.get("changedBytes").asLong();
    List<String> newer = names(plan.get("newer"));
    List<String> deleted = names(plan.get("deleted"));
    List<String> writers = new ArrayList<>();
    report.get("writers").forEach(w -> writers.add(w.asText()));
    StringBuilder b = new StringBuilder();
    b.append(String.format("Rolling volume '%s' back to snapshot '%s' (taken %s) undoes %s (%d bytes) of changes made since then",
        report.get("volume").asText(), target.get("name").asText(), target.get("created").asText(),
        Sizes.format(changed), changed));
    if (plan.get("keepsNewer").asBoolean()) {
      b.append(String.format(" (a before-rollback snapshot keeps them, using up to %s of the diff area, %s free)",
          Sizes.format(plan.get("preservedBytes").asLong()), Sizes.format(plan.get("diffFreeBytes").asLong())));
      b.append(newer.isEmpty() ? "" : "; newer snapshots are kept: " + String.join(", ", newer));
    } else {
      b.append(" for good (no before-rollback snapshot)");
      b.append(deleted.isEmpty() ? "; it deletes no snapshots"
          : "; it deletes " + deleted.size() + " newer snapshot" + (deleted.size() == 1 ? "" : "s") + ": " + String.join(", ", deleted));
    }
    b.append(".%n".formatted());
    b.append(writers.isEmpty() ? "No writers are stopped." : "Stops " + String.join(", ", writers) + " first and starts them again after.");
    return b.toString();
  }

  private static List<String> names(JsonNode list) {
    List<String> out = new ArrayList<>();
    list.forEach(s -> out.add(s.get("name").asText()));
    return out;
  }
}
