package dev.shade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.offhost.agent.AgentClient;
import dev.shade.offhost.agent.AgentEndpoint;
import dev.shade.offhost.agent.AgentException;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

/**
 * Runs one command on an agent's remote API from another process (a test runs it inside the
 * backup server's network namespace): {@code ADDRESS CA CERT|- KEY|- COMMAND [ARGUMENTS-JSON]}.
 * Prints the reply's {@code "return"} and exits 0; an error reply prints {@code error CLASS: DESC}
 * and exits 2; a connection that fails (refused certificate, say) prints {@code refused: WHY} and
 * exits 3.
 */
final class RemoteApiProbe {
  private RemoteApiProbe() {}

  @SuppressWarnings("unchecked")
  public static void main(String[] args) throws Exception {
    Path cert = args[2].equals("-") ? null : Path.of(args[2]);
    Path key = args[3].equals("-") ? null : Path.of(args[3]);
    AgentEndpoint at = AgentEndpoint.parse(args[0], Path.of(args[1]), cert, key);
    Map<String, Object> arguments = args.length > 5 ? new ObjectMapper().readValue(args[5], Map.class) : Map.of();
    AgentClient c;
    try {
      c = AgentClient.connect(at, Duration.ofSeconds(20));
    } catch (IOException e) {
      System.out.println("refused: " + e.getMessage());
      System.exit(3);
      return;
    }
    try (c) {
      JsonNode r = c.execute(args[4], arguments);
      System.out.println(r);
      System.exit(0);
    } catch (AgentException e) {
      System.out.println("error " + e.errorClass() + ": " + e.getMessage());
      System.exit(2);
    } catch (IOException e) {
      // the server may only fail the handshake when the first record is read (TLS 1.3)
      System.out.println("refused: " + e.getMessage());
      System.exit(3);
    }
  }
}
