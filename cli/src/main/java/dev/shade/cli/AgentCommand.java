package dev.shade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.requestor.agent.AgentConfig;
import dev.shade.requestor.control.ControlClient;
import dev.shade.requestor.control.ControlException;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code shade agent}: the production host's agent, and the commands that talk to a running one. */
@Command(
    name = "agent",
    header = "Run the agent that holds, serves and snapshots volumes; or talk to a running one.",
    description = {
      "Without a subcommand, runs the agent until SIGTERM or SIGINT: it opens the volumes of its "
          + "config file (and any DIRs given), serves them over NBD as configured, and listens on "
          + "a control socket (mode 0600). While it runs, every 'shade volume' and 'shade snapshot' "
          + "command on its volumes goes through that socket, with the same output. Stopping "
          + "answers the requests in flight, flushes and closes every volume and removes the socket.",
      "",
      "The config file is JSON; docs/agent.md describes it and the control protocol."
    },
    mixinStandardHelpOptions = true,
    subcommands = {
      AgentCommand.Status.class,
      AgentCommand.Attach.class,
      AgentCommand.Detach.class,
      AgentCommand.Stop.class
    },
    footerHeading = "%nExamples:%n",
    footer = {
      "  shade agent --config /etc/shade/agent.json",
      "  shade agent /var/lib/shade/db --listen 127.0.0.1:10809",
      "  shade agent status --json",
      "  shade agent attach /var/lib/shade/wal",
      "  shade agent detach /var/lib/shade/wal",
      "  shade agent stop"
    })
final class AgentCommand extends ServeCommand {
  @Option(names = "--config", paramLabel = "FILE",
      description = "The agent's JSON config file: control socket, volumes, NBD listeners.")
  Path configFile;

  @Override
  boolean agentMode() {
    return true;
  }

  @Override
  AgentConfig baseConfig() throws IOException {
    return configFile == null ? null : AgentConfig.load(configFile);
  }

  /** Options every client subcommand shares: where the agent listens. */
  abstract static class Client extends ShadeCommand {
    @Option(names = "--control-socket", paramLabel = "PATH",
        description = "The agent's control socket. Default: ${DEFAULT-VALUE}.")
    Path control = AgentConfig.defaultControlSocket();

    @Option(names = "--json", description = "Print the agent's answer as one JSON document.")
    boolean json;

    /** Runs {@code command} on the agent and returns its answer. */
    JsonNode call(String command, Object args) throws IOException, CommandException {
      ControlClient c;
      try {
        c = ControlClient.connect(control, Duration.ofSeconds(5), false);
      } catch (ControlException e) {
        throw e;
      } catch (IOException e) {
        throw new CommandException("no agent answers on " + control + " (" + ExitCodes.describe(e)
            + "); start one with 'shade agent', or name its socket with --control-socket");
      }
      try (c) {
        return c.execute(command, args);
      } catch (ControlException e) {
        if (e.errorClass().equals(ControlException.INVALID_ARGUMENT)) {
          throw new IllegalArgumentException(e.getMessage());
        }
        throw e;
      }
    }
  }

  /** {@code shade agent status}. */
  @Command(name = "status", header = "Show the running agent: its pid and the volumes it holds.",
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade agent status", "  shade agent status --control-socket /run/shade/control.sock --json"})
  static final class Status extends Client {
    @Override
    public Integer call() throws Exception {
      JsonNode version = call("query-version", null);
      JsonNode volumes = call("query-volumes", null);
      if (json) {
        printJson(VolumeAccess.JSON.createObjectNode().put("pid", version.path("pid").asLong())
            .put("version", version.path("version").asText()).put("control", control.toString())
            .set("volumes", volumes));
        return ExitCodes.OK;
      }
      out().printf("agent pid %d on %s holds %d volume%s%n", version.path("pid").asLong(), control, volumes.size(),
          volumes.size() == 1 ? "" : "s");
      for (JsonNode v : volumes) {
        out().printf("  %-16s %s  %s, %d snapshot%s%n", v.get("name").asText(), v.get("directory").asText(),
            Sizes.format(v.get("size").asLong()), v.get("snapshots").size(), v.get("snapshots").size() == 1 ? "" : "s");
      }
      out().flush();
      return ExitCodes.OK;
    }
  }

  /** {@code shade agent attach}. */
  @Command(name = "attach", header = "Have the running agent open and serve a volume.",
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade agent attach /var/lib/shade/wal"})
  static final class Attach extends Client {
    @Parameters(arity = "1..*", paramLabel = "DIR", description = "Volume directories.")
    List<Path> dirs;

    @Override
    public Integer call() throws Exception {
      for (Path dir : dirs) {
        requireVolume(dir);
      }
      var all = VolumeAccess.JSON.createArrayNode();
      for (Path dir : dirs) {
        JsonNode info = call("volume-attach", VolumeAccess.args().put("directory", VolumeAccess.ref(dir)));
        all.add(info);
        if (!json) {
          out().printf("Attached volume '%s' (%s) to the agent on %s.%n", info.get("name").asText(),
              info.get("directory").asText(), control);
        }
      }
      if (json) {
        printJson(all);
      }
      out().flush();
      return ExitCodes.OK;
    }
  }

  /** {@code shade agent detach}. */
  @Command(name = "detach", header = "Have the running agent stop serving a volume and close it.",
      description = {"Clients attached to its exports are disconnected once their requests in flight are answered."},
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade agent detach /var/lib/shade/wal", "  shade agent detach wal"})
  static final class Detach extends Client {
    @Parameters(arity = "1..*", paramLabel = "VOLUME", description = "Volume directories, names or uuids.")
    List<String> refs;

    @Override
    public Integer call() throws Exception {
      for (String ref : refs) {
        String r = ref.contains("/") ? Path.of(ref).toAbsolutePath().normalize().toString() : ref;
        call("volume-detach", VolumeAccess.args().put("volume", r));
        if (!json) {
          out().printf("Detached volume %s from the agent on %s.%n", ref, control);
        }
      }
      if (json) {
        printJson(VolumeAccess.JSON.createObjectNode().set("detached", VolumeAccess.JSON.valueToTree(refs)));
      }
      out().flush();
      return ExitCodes.OK;
    }
  }

  /** {@code shade agent stop}. */
  @Command(name = "stop", header = "Stop the running agent, as SIGTERM does.",
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade agent stop"})
  static final class Stop extends Client {
    @Override
    public Integer call() throws Exception {
      JsonNode version = call("query-version", null);
      call("agent-stop", null);
      if (json) {
        printJson(VolumeAccess.JSON.createObjectNode().put("stopping", version.path("pid").asLong()));
      } else {
        out().printf("Asked the agent (pid %d) on %s to stop.%n", version.path("pid").asLong(), control);
        out().flush();
      }
      return ExitCodes.OK;
    }
  }
}
