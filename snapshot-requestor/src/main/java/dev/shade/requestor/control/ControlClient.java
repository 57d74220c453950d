package dev.shade.requestor.control;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.Closeable;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Timer;
import java.util.TimerTask;
import java.util.function.Consumer;

/**
 * A client of the agent's control socket: connects, negotiates capabilities, runs commands and
 * hands over the events that arrive meanwhile.
 *
 * <p>Not thread-safe: one thread at a time, one command at a time.
 */
public final class ControlClient implements Closeable {
  private final Path socket;
  private final SocketChannel ch;
  private final MessageReader reader;
  /** The greeting's "shade" member. */
  private final JsonNode greeting;
  /** Id of the next command; replies are matched to it. */
  private long nextId = 1;

  private ControlClient(Path socket, SocketChannel ch, JsonNode greeting, MessageReader reader) {
    this.socket = socket;
    this.ch = ch;
    this.greeting = greeting;
    this.reader = reader;
  }

  /**
   * Connects to the agent on {@code socket}, reads its greeting within {@code timeout} and
   * negotiates capabilities ({@code events}: receive asynchronous events).
   */
  public static ControlClient connect(Path socket, Duration timeout, boolean events) throws IOException {
    SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
    Timer watchdog = new Timer("shade-control-connect", true);
    watchdog.schedule(new TimerTask() {
      @Override
      public void run() {
        try {
          ch.close();
        } catch (IOException ignored) {
          // the connecting thread sees the channel closed
        }
      }
    }, Math.max(1, timeout.toMillis()));
    try {
      ch.connect(UnixDomainSocketAddress.of(socket));
      MessageReader reader = new MessageReader(ch, ControlServer.MAX_MESSAGE);
      JsonNode hello = parse(reader.next(), socket);
      if (hello == null || !hello.has("shade")) {
        if (hello != null && hello.has("error")) {
          throw error(hello.get("error"));
        }
        throw new IOException("not a shade agent on " + socket + " (its greeting was " + hello + ")");
      }
      ControlClient c = new ControlClient(socket, ch, hello.get("shade"), reader);
      ObjectNode args = JsonNodeFactory.instance.objectNode();
      if (events) {
        args.set("enable", ControlServer.JSON.valueToTree(List.of("events")));
      }
      c.execute("capabilities", args);
      watchdog.cancel();
      return c;
    } catch (IOException | RuntimeException e) {
      ch.close();
      if (!ch.isOpen() && e instanceof java.nio.channels.AsynchronousCloseException) {
        throw new IOException("the agent on " + socket + " did not greet within " + timeout.toMillis() + " ms", e);
      }
      throw e;
    } finally {
      watchdog.cancel();
    }
  }

  /** The agent's greeting: version, capabilities, pid. */
  public JsonNode greeting() {
    return greeting;
  }

  /** Runs {@code command}; events that arrive meanwhile are dropped. */
  public JsonNode execute(String command, Object arguments) throws IOException {
    return execute(command, arguments, e -> {});
  }

  /**
   * Runs {@code command} with {@code arguments} (a map, a record or a JSON object; null for
   * none) and returns the reply's "return" member; an error reply becomes a
   * {@link ControlException} with its class and description. Events received before the reply
   * go to {@code events}.
   */
  public JsonNode execute(String command, Object arguments, Consumer<JsonNode> events) throws IOException {
    long id = nextId++;
    ObjectNode msg = JsonNodeFactory.instance.objectNode();
    msg.put("execute", command);
    if (arguments != null) {
      msg.set("arguments", ControlServer.JSON.valueToTree(arguments));
    }
    msg.put("id", id);
    ControlServer.writeFully(ch, ControlServer.line(msg));
    while (true) {
      JsonNode reply = parse(reader.next(), socket);
      if (reply == null) {
        throw new IOException("the agent on " + socket + " closed the connection during " + command);
      }
      if (reply.has("event")) {
        events.accept(reply);
        continue;
      }
      JsonNode rid = reply.get("id");
      if (rid != null && rid.asLong() != id) {
        continue; // a reply to an earlier command given up on
      }
      if (reply.has("error")) {
        throw error(reply.get("error"));
      }
      JsonNode ret = reply.get("return");
      return ret == null ? JsonNodeFactory.instance.objectNode() : ret;
    }
  }

  /** Waits for the next asynchronous event, or null when the connection ends. */
  public JsonNode nextEvent() throws IOException {
    while (true) {
      JsonNode m = parse(reader.next(), socket);
      if (m == null || m.has("event")) {
        return m;
      }
    }
  }

  @Override
  public void close() throws IOException {
    ch.close();
  }

  @Override
  public String toString() {
    return "control client of " + socket;
  }

  private static JsonNode parse(String text, Path socket) throws IOException {
    if (text == null) {
      return null;
    }
    try {
      return ControlServer.JSON.readTree(text);
    } catch (JsonProcessingException e) {
      throw new IOException("the agent on " + socket + " sent a message that is not JSON: " + e.getOriginalMessage());
    }
  }

  private static ControlException error(JsonNode err) {
    return new ControlException(err.path("class").asText(ControlException.GENERIC), err.path("desc").asText("(no description)"));
  }
}
