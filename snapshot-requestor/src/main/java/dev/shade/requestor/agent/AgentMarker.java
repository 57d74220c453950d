package dev.shade.requestor.agent;

import dev.shade.nativeio.AtomicFile;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The file {@code DIR/agent.json} that says which agent holds a volume: its pid and control
 * socket, so that a {@code shade} command on that volume knows where to send its request.
 */
public final class AgentMarker {
  /*
   * The marker is a hint, never the truth: the volume's flock is what keeps a second process
   * out. The agent writes it after it has opened (and locked) the volume and removes it before
   * closing; one left by an agent killed with SIGKILL names a socket that no longer answers, so
   * readers try the socket and fall back to opening the volume themselves.
   */
  /** The marker's file name inside a volume directory. */
  public static final String FILE = "agent.json";

  private static final ObjectMapper JSON = new ObjectMapper();

  /** What a marker says. */
  public record Holder(long pid, Path controlSocket) {}

  private AgentMarker() {}

  /** Writes the marker of {@code dir} atomically (temporary file, then rename), mode 0600. */
  public static void write(Path dir, Path controlSocket) throws IOException {
    Map<String, Object> doc = new LinkedHashMap<>();
    doc.put("pid", ProcessHandle.current().pid());
    doc.put("control", controlSocket.toAbsolutePath().toString());
    AtomicFile.write(dir.resolve(FILE), JSON.writeValueAsBytes(doc), 0600);
  }

  /** What the marker of {@code dir} says, or empty when there is none or it cannot be read. */
  public static Optional<Holder> read(Path dir) {
    try {
      JsonNode doc = JSON.readTree(new String(Files.readAllBytes(dir.resolve(FILE)), StandardCharsets.UTF_8));
      if (doc == null || !doc.path("control").isTextual()) {
        return Optional.empty();
      }
      return Optional.of(new Holder(doc.path("pid").asLong(-1), Path.of(doc.get("control").asText())));
    } catch (IOException e) {
      return Optional.empty(); // missing, unreadable or torn: the volume's lock still decides
    }
  }

  /** Removes the marker of {@code dir} if there is one. */
  public static void remove(Path dir) throws IOException {
    Files.deleteIfExists(dir.resolve(FILE));
  }
}
