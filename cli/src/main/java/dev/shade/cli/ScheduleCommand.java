package dev.shade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.provider.Progress;
import dev.shade.requestor.agent.AgentConfig;
import dev.shade.requestor.control.ControlClient;
import dev.shade.requestor.control.ControlException;
import dev.shade.requestor.schedule.CommandRunner;
import dev.shade.requestor.schedule.Scheduler;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code shade schedule}: the agent's scheduled snapshots and what their retention keeps. */
@Command(
    name = "schedule",
    header = "Show the agent's snapshot schedules and what their retention keeps and prunes.",
    mixinStandardHelpOptions = true,
    subcommands = {ScheduleCommand.Show.class})
final class ScheduleCommand extends CommandGroup {
  /** {@code shade schedule show}. */
  @Command(
      name = "show",
      header = "Print each schedule's next runs, its last result, and which snapshots each rule keeps.",
      description = {
        "Asks the running agent (its control socket), which knows the last run and its error. With "
            + "--config and no agent answering on the file's control socket, works out the same from "
            + "the config file and the volumes themselves (opened for the listing, or reached through the "
            + "agent that holds them), without the last-run state. docs/schedule.md defines the rules.",
        "",
        "Exit codes: 0 shown; 1 failed (no agent, a volume that cannot be read); 2 usage."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade schedule show",
        "  shade schedule show --config /etc/shade/agent.json",
        "  shade schedule show --socket /run/shade/control.sock --json"
      })
  static final class Show extends ShadeCommand {
    /** Where the schedules come from: a config file or a socket; neither means the default socket. */
    static final class Source {
      @Option(names = "--config", paramLabel = "FILE",
          description = "The agent's config file: its schedules, and its control socket to ask first.")
      Path config;

      @Option(names = {"--socket", "--control-socket"}, paramLabel = "PATH",
          description = "The running agent's control socket. Default: the default control socket.")
      Path socket;
    }

    @ArgGroup(exclusive = true, multiplicity = "0..1")
    Source source;

    @Option(names = "--json", description = "Print the schedule-show document: {\"now\", \"schedules\": [{\"name\", "
        + "\"every\", \"timeZone\", \"volumes\", \"keep\", \"next\", \"lastRun\", \"lastFailure\", \"plans\"}]}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      JsonNode doc;
      String where;
      if (source != null && source.config != null) {
        AgentConfig cfg = AgentConfig.load(source.config);
        doc = ask(cfg.control(), false);
        if (doc != null) {
          where = "the agent on " + cfg.control();
        } else {
          doc = VolumeAccess.JSON.valueToTree(Scheduler.report(cfg.schedules(), Map.of(), new CommandRunner(
              Show::listHere), Instant.now()));
          where = "the config " + source.config + " (no agent answers on " + cfg.control() + "; last runs unknown)";
        }
      } else {
        Path socket = source != null && source.socket != null ? source.socket : AgentConfig.defaultControlSocket();
        doc = ask(socket, true);
        where = "the agent on " + socket;
      }
      if (json) {
        printJson(doc);
      } else {
        print(out(), doc, where, source == null || source.config == null || where.startsWith("the agent"));
        out().flush();
      }
      return ExitCodes.OK;
    }

    /** Runs a volume command where the volume is: its agent, or opened here (the config's agent is not running). */
    private static Object listHere(String command, com.fasterxml.jackson.databind.node.ObjectNode args) throws IOException {
      try {
        return VolumeAccess.run(command, args, List.of(Path.of(args.get("volume").asText())), Progress.NONE);
      } catch (CommandException e) {
        throw new IOException(e.getMessage(), e);
      }
    }

    /** The agent's schedule-show, or null when none answers and {@code required} is false. */
    private static JsonNode ask(Path socket, boolean required) throws IOException, CommandException {
      ControlClient c;
      try {
        c = ControlClient.connect(socket, Duration.ofSeconds(5), false);
      } catch (ControlException e) {
        throw e;
      } catch (IOException e) {
        if (!required) {
          return null;
        }
        throw new CommandException("no agent answers on " + socket + " (" + ExitCodes.describe(e)
            + "); start one with 'shade agent', name its socket with --socket, or give its config with --config");
      }
      try (c) {
        return c.execute("schedule-show", null);
      }
    }
  }

  private static final DateTimeFormatter LOCAL = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss xxx", Locale.ROOT);

  /** The text form of a schedule-show document. */
  static void print(PrintWriter out, JsonNode doc, String where, boolean fromAgent) {
    JsonNode schedules = doc.path("schedules");
    if (schedules.isEmpty()) {
      out.printf("No schedules (from %s): add \"schedules\" to the agent's config file (docs/schedule.md).%n", where);
      return;
    }
    out.printf("Schedules from %s, at %s:%n", where, doc.path("now").asText());
    for (JsonNode s : schedules) {
      out.println();
      List<String> vs = new ArrayList<>();
      s.path("volumes").forEach(v -> vs.add(v.asText()));
      out.printf("%s: %s in %s, volumes %s%s%n", s.path("name").asText(), s.path("every").asText(),
          s.path("timeZone").asText(), String.join(", ", vs), s.path("running").asBoolean() ? " (running now)" : "");
      List<String> rules = new ArrayList<>();
      s.path("keep").fields().forEachRemaining(e -> {
        if (!e.getValue().isNull()) {
          rules.add(e.getKey() + " " + e.getValue().asInt());
        }
      });
      out.printf("  keep: %s; catch-up: %s; snapshots made by hand: %s%n", rules.isEmpty() ? "everything" : String.join(", ", rules),
          s.path("catchUp").asText(), s.path("pruneManual").asBoolean() ? "pruned too" : "never pruned");
      String label = "  next runs: ";
      for (JsonNode n : s.path("next")) {
        out.printf("%s%s  (%s)%n", label, LOCAL.format(OffsetDateTime.parse(n.path("local").asText())), n.path("utc").asText());
        label = " ".repeat(label.length());
      }
      out.printf("  last run: %s%n", fromAgent ? run(s.path("lastRun")) : "unknown (no agent running)");
      if (!s.path("lastFailure").isNull() && !s.path("lastFailure").isMissingNode()
          && !s.path("lastFailure").equals(s.path("lastRun"))) {
        out.printf("  last failure: %s%n", run(s.path("lastFailure")));
      }
      for (JsonNode p : s.path("plans")) {
        out.printf("  volume %s:%n", p.path("volume").asText());
        if (!p.path("error").isNull()) {
          out.printf("    cannot list its snapshots: %s%n", p.path("error").asText());
          continue;
        }
        if (p.path("snapshots").isEmpty()) {
          out.println("    no snapshots");
          continue;
        }
        int width = "SNAPSHOT".length();
        for (JsonNode e : p.path("snapshots")) {
          width = Math.max(width, e.path("name").asText().length());
        }
        out.printf("    %-6s %-" + width + "s  %-26s %s%n", "ACTION", "SNAPSHOT", "CREATED (" + s.path("timeZone").asText() + ")", "WHY");
        int kept = 0;
        int pruned = 0;
        for (JsonNode e : p.path("snapshots")) {
          boolean keep = e.path("action").asText().equals("keep");
          if (keep) {
            kept++;
          } else {
            pruned++;
          }
          out.printf("    %-6s %-" + width + "s  %-26s %s%n", e.path("action").asText(), e.path("name").asText(),
              LOCAL.format(OffsetDateTime.parse(e.path("local").asText())), e.path("reason").asText());
        }
        out.printf("    %d kept, %d to prune at the next run%n", kept, pruned);
      }
    }
  }

  private static String run(JsonNode r) {
    if (r == null || r.isNull() || r.isMissingNode()) {
      return "none since the agent started";
    }
    String what = r.path("ok").asBoolean() ? "ok, " + r.path("snapshot").asText() : "FAILED: " + r.path("error").asText();
    int pruned = r.path("pruned").size();
    return "slot " + r.path("slot").asText() + (r.path("catchUp").asBoolean() ? " (catch-up)" : "") + ", " + what
        + (pruned > 0 ? ", pruned " + pruned : "");
  }
}
