package dev.shade.offhost.agent;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.nbd.tls.Pem;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;

/**
 * A client of the agent's control API (docs/agent.md): reads the greeting, negotiates
 * capabilities (no events), then runs one command at a time and returns its {@code "return"}.
 *
 * <p>Over TCP it speaks TLS when the endpoint has a CA: the agent's certificate must be signed by
 * it and name the host connected to (as HTTPS checks it), and the client certificate, when given,
 * is presented. Not thread-safe: one command at a time.
 */
public final class AgentClient implements Closeable {
  /*
   * Events are not asked for, so every message after a command is its reply; anything with
   * "event" (PROGRESS of a newer agent, say) is skipped all the same. Lines are bounded
   * (MAX_LINE) so that a server that is not shade's cannot make the client hold a stream of
   * bytes without a newline.
   */
  private static final ObjectMapper JSON = new ObjectMapper();
  /** Longest reply read, in bytes. */
  static final int MAX_LINE = 16 << 20;

  private final AgentEndpoint endpoint;
  private final InputStream in;
  private final OutputStream out;
  private final Closeable connection;
  /** The greeting's "shade" member. */
  private final JsonNode greeting;
  /** Next command id. */
  private long nextId = 1;

  private AgentClient(AgentEndpoint endpoint, InputStream in, OutputStream out, Closeable connection)
      throws IOException {
    this.endpoint = endpoint;
    this.in = new BufferedInputStream(in); // messages are read a byte at a time up to their newline
    this.out = out;
    this.connection = connection;
    JsonNode hello = readMessage();
    if (hello == null && endpoint.socket() == null && !endpoint.tls()) {
      // a TLS listener waits for a handshake that a plain client never starts, then hangs up
      throw new IOException(endpoint + " closed the connection without a greeting: if it is a remote API with TLS, "
          + "connect with TLS (the CA of the agent's certificate and a client certificate)");
    }
    if (hello == null || !hello.has("shade")) {
      throw new IOException(endpoint + " did not greet as a shade agent: " + hello);
    }
    this.greeting = hello.get("shade");
    execute("capabilities", Map.of());
  }

  /**
   * Connects to {@code endpoint}; {@code timeout} bounds the connection, the TLS handshake and the
   * wait for each reply (backup-complete runs the writers' steps, give it time).
   */
  public static AgentClient connect(AgentEndpoint endpoint, Duration timeout) throws IOException {
    int ms = (int) Math.min(Integer.MAX_VALUE, Math.max(1, timeout.toMillis()));
    if (endpoint.socket() != null) {
      SocketChannel ch;
      try {
        ch = SocketChannel.open(UnixDomainSocketAddress.of(endpoint.socket()));
      } catch (IOException e) {
        throw new IOException("cannot connect to " + endpoint + ": " + e.getMessage(), e);
      }
      try {
        return new AgentClient(endpoint, Channels.newInputStream(ch), Channels.newOutputStream(ch), ch);
      } catch (IOException | RuntimeException e) {
        ch.close();
        throw e;
      }
    }
    Socket plain = new Socket();
    try {
      plain.connect(new InetSocketAddress(endpoint.host(), endpoint.port()), ms);
      plain.setSoTimeout(ms);
      plain.setTcpNoDelay(true);
    } catch (IOException e) {
      plain.close();
      throw new IOException("cannot connect to " + endpoint + ": " + e.getMessage(), e);
    }
    Socket s = plain;
    try {
      if (endpoint.tls()) {
        s = startTls(endpoint, plain);
      }
      return new AgentClient(endpoint, s.getInputStream(), s.getOutputStream(), s);
    } catch (IOException | RuntimeException e) {
      s.close();
      plain.close();
      if (e instanceof AgentException || !(e instanceof IOException)) {
        throw e;
      }
      throw new IOException("cannot talk to " + endpoint + ": " + e.getMessage()
          + (endpoint.tls() ? " (is the client certificate signed by the CA the agent's remote API trusts, and "
              + "the agent's certificate by " + endpoint.tlsCa() + ", naming " + endpoint.host() + "?)" : ""), e);
    }
  }

  private static SSLSocket startTls(AgentEndpoint endpoint, Socket plain) throws IOException {
    SSLContext ctx = Pem.clientContext(endpoint.tlsCa(), endpoint.tlsCert(), endpoint.tlsKey());
    SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(plain, endpoint.host(), endpoint.port(), true);
    SSLParameters p = s.getSSLParameters();
    p.setEndpointIdentificationAlgorithm("HTTPS");
    String h = endpoint.host();
    if (!h.isEmpty() && !Character.isDigit(h.charAt(0)) && h.indexOf(':') < 0) {
      p.setServerNames(List.of(new SNIHostName(h)));
    }
    s.setSSLParameters(p);
    s.setUseClientMode(true);
    s.startHandshake();
    return s;
  }

  /** The greeting's {@code "shade"} member: {@code version}, {@code capabilities}, {@code pid}. */
  public JsonNode greeting() {
    return greeting;
  }

  /** Where this client is connected. */
  public AgentEndpoint endpoint() {
    return endpoint;
  }

  /**
   * Runs {@code command} with {@code arguments} (a map Jackson can write, or null) and returns its
   * {@code "return"}; an error reply is an {@link AgentException} with its class.
   */
  public JsonNode execute(String command, Map<String, ?> arguments) throws IOException {
    ObjectNode msg = JSON.createObjectNode();
    msg.put("execute", command);
    if (arguments != null) {
      msg.set("arguments", JSON.valueToTree(arguments));
    }
    long id = nextId++;
    msg.put("id", id);
    byte[] line = JSON.writeValueAsBytes(msg);
    try {
      out.write(line);
      out.write('\n');
      out.flush();
    } catch (IOException e) {
      throw new IOException("sending " + command + " to " + endpoint + " failed: " + e.getMessage(), e);
    }
    while (true) {
      JsonNode reply;
      try {
        reply = readMessage();
      } catch (SocketTimeoutException e) {
        throw new IOException("no reply to " + command + " from " + endpoint + " in time", e);
      }
      if (reply == null) {
        throw new EOFException(endpoint + " closed the connection before replying to " + command);
      }
      if (reply.has("event")) {
        continue;
      }
      if (reply.has("error")) {
        JsonNode err = reply.get("error");
        throw new AgentException(err.path("class").asText("GenericError"), command + " on " + endpoint + ": "
            + err.path("desc").asText());
      }
      if (reply.has("return")) {
        if (reply.has("id") && reply.get("id").asLong() != id) {
          throw new IOException(endpoint + " answered command " + reply.get("id") + " where " + id + " (" + command
              + ") was expected");
        }
        return reply.get("return");
      }
      throw new IOException(endpoint + " sent a message that is neither a reply nor an event: " + reply);
    }
  }

  /** The next message, or null at the end of the stream. */
  private JsonNode readMessage() throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream(256);
    int c;
    while ((c = in.read()) >= 0 && c != '\n') {
      if (b.size() >= MAX_LINE) {
        throw new IOException(endpoint + " sent a message longer than " + MAX_LINE + " bytes");
      }
      b.write(c);
    }
    if (c < 0 && b.size() == 0) {
      return null;
    }
    String text = b.toString(StandardCharsets.UTF_8);
    if (text.isBlank()) {
      return readMessage();
    }
    try {
      return JSON.readTree(text);
    } catch (IOException e) {
      throw new IOException(endpoint + " sent a message that is not JSON: " + text, e);
    }
  }

  @Override
  public void close() throws IOException {
    connection.close();
  }

  @Override
  public String toString() {
    return "client of " + endpoint;
  }
}
