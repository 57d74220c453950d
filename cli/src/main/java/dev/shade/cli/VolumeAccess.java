package dev.shade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.provider.Progress;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeException;
import dev.shade.requestor.agent.AgentMarker;
import dev.shade.requestor.control.ControlClient;
import dev.shade.requestor.control.ControlException;
import dev.shade.requestor.ops.ConsistentSnapshot;
import dev.shade.requestor.ops.ImageExistsException;
import dev.shade.requestor.ops.VolumeCommands;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Runs a volume or snapshot command where its volumes are: through the control socket of the
 * agent that holds them, or, when none does, on volumes this process opens itself.
 */
final class VolumeAccess {
  /*
   * Both paths run the same VolumeCommands code on the same JSON arguments and hand back the same
   * JSON document, so a command's output, --json, exit code and error line do not depend on
   * where it ran. An agent announces that it holds a volume with DIR/agent.json (AgentMarker);
   * a marker whose socket does not answer is left by an agent that is gone, and the volume is
   * opened here (its lock tells whether anyone else still has it).
   */
  static final ObjectMapper JSON = new ObjectMapper();
  /** How long to wait for an agent's greeting. */
  private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(5);

  private VolumeAccess() {}

  /** New empty arguments for a command. */
  static ObjectNode args() {
    return JSON.createObjectNode();
  }

  /**
   * The string by which a command's arguments name the volume in {@code dir}: its real path
   * (symbolic links resolved, as the agent records it), or the absolute path when it has none.
   */
  static String ref(Path dir) {
    try {
      return dir.toRealPath().toString();
    } catch (IOException e) {
      return dir.toAbsolutePath().normalize().toString();
    }
  }

  /**
   * Runs {@code command} with {@code args} on the volumes in {@code dirs} (which {@code args}
   * names by {@link #ref}); {@code progress} hears how long work advances.
   */
  static JsonNode run(String command, ObjectNode args, List<Path> dirs, Progress progress)
      throws IOException, CommandException {
    for (Path dir : dirs) {
      ShadeCommand.requireVolume(dir);
    }
    Path agent = null;
    List<Path> held = new ArrayList<>();
    for (Path dir : dirs) {
      Optional<AgentMarker.Holder> h = AgentMarker.read(dir);
      if (h.isPresent()) {
        if (agent != null && !agent.equals(h.get().controlSocket())) {
          throw new CommandException("the volumes are held by different agents (" + agent + " and "
              + h.get().controlSocket() + "); one command can reach one agent only");
        }
        agent = h.get().controlSocket();
        held.add(dir);
      }
    }
    if (agent != null) {
      ControlClient client = connect(agent);
      if (client != null) {
        if (held.size() != dirs.size()) {
          client.close();
          List<Path> free = new ArrayList<>(dirs);
          free.removeAll(held);
          throw new CommandException("volumes " + held + " are held by the agent on " + agent + " and " + free
              + " are not; attach them to that agent first (shade agent attach)");
        }
        try (client) {
          return remote(client, command, args, progress);
        } catch (ControlException e) {
          if (!e.errorClass().equals(ControlException.VOLUME_NOT_FOUND)) {
            throw e;
          }
          // another agent listens on that socket now, and it does not hold these volumes
        }
      }
    }
    return local(command, args, dirs, progress);
  }

  /** A client of the agent on {@code socket}, or null when no agent answers there (it is gone). */
  private static ControlClient connect(Path socket) throws IOException {
    try {
      return ControlClient.connect(socket, CONNECT_TIMEOUT, false);
    } catch (ControlException e) {
      throw e; // an agent answered, and refused
    } catch (IOException e) {
      return null;
    }
  }

  private static JsonNode remote(ControlClient client, String command, ObjectNode args, Progress progress)
      throws IOException, CommandException {
    args.put("progress", true);
    try {
      return client.execute(command, args, event -> {
        if (event.path("event").asText().equals("PROGRESS")) {
          JsonNode d = event.path("data");
          progress.update(d.path("done").asLong(), d.path("total").asLong());
        }
      });
    } catch (ControlException e) {
      switch (e.errorClass()) {
        case ControlException.INVALID_ARGUMENT:
          throw new IllegalArgumentException(e.getMessage());
        case ControlException.FILE_EXISTS:
          throw existing(e.getMessage());
        default:
          throw e;
      }
    }
  }

  private static JsonNode local(String command, ObjectNode args, List<Path> dirs, Progress progress)
      throws IOException, CommandException {
    Map<String, Volume> open = new LinkedHashMap<>();
    try {
      for (Path dir : dirs) {
        String ref = ref(dir);
        if (!open.containsKey(ref)) {
          open.put(ref, Volume.open(dir));
        }
      }
      // a consistent snapshot whose requestor was killed midway may not be consistent: gone on the next open
      ConsistentSnapshot.discardUnfinished(new ArrayList<>(open.values()));
      Object result = VolumeCommands.execute(command, args, ref -> {
        Volume v = open.get(ref);
        if (v == null) {
          throw new VolumeException("volume not opened for this command: " + ref);
        }
        return v;
      }, progress);
      return JSON.valueToTree(result);
    } catch (ImageExistsException e) {
      throw existing(e.getMessage());
    } catch (ControlException e) {
      if (e.errorClass().equals(ControlException.INVALID_ARGUMENT)) {
        throw new IllegalArgumentException(e.getMessage(), e); // a usage error, as through the agent
      }
      throw e;
    } finally {
      IOException closing = ShadeCommand.closeAll(new ArrayList<>(open.values()));
      if (closing != null) {
        throw closing;
      }
    }
  }

  /** The error for an export target that exists, with the advice the command line can give. */
  private static CommandException existing(String message) {
    return new CommandException(message.endsWith(" exists") ? message + "; pass --force to replace it" : message);
  }
}
