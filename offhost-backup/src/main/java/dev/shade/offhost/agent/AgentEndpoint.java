package dev.shade.offhost.agent;

import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;

/**
 * Where the agent's control API is and how to reach it: TCP {@code HOST:PORT} (the remote API,
 * with TLS when a CA is given) or a local Unix socket.
 *
 * <p>Accepted forms: {@code HOST:PORT}, {@code [IPv6]:PORT}, {@code shade://HOST:PORT} (plain TCP,
 * loopback agents only accept it), {@code shades://HOST:PORT} (TLS, a CA is required),
 * {@code unix:PATH} and an absolute path (the control socket).
 *
 * @param host the host name or address of a TCP endpoint; null for a Unix socket
 * @param port the TCP port
 * @param socket the Unix socket; null for TCP
 * @param tlsCa CA certificates (PEM) the agent's certificate must be signed by; null: no TLS
 * @param tlsCert the client certificate (PEM) presented to the agent, or null
 * @param tlsKey its private key (PEM), or null
 */
public record AgentEndpoint(String host, int port, Path socket, Path tlsCa, Path tlsCert, Path tlsKey) {
  public AgentEndpoint {
    if ((host == null) == (socket == null)) {
      throw new IllegalArgumentException("an agent endpoint is a TCP address or a Unix socket");
    }
    if (host != null && (port < 1 || port > 65535)) {
      throw new IllegalArgumentException("agent port must be 1 to 65535: " + port);
    }
    if ((tlsCert == null) != (tlsKey == null)) {
      throw new IllegalArgumentException("a client certificate and its key go together");
    }
    if (tlsCert != null && tlsCa == null) {
      throw new IllegalArgumentException("a client certificate needs the CA of the agent's certificate as well");
    }
  }

  /** Parses {@code text} (forms in the class comment); TLS over TCP when {@code tlsCa} is given. */
  public static AgentEndpoint parse(String text, Path tlsCa, Path tlsCert, Path tlsKey) {
    String s = text == null ? "" : text.strip();
    if (s.startsWith("unix:")) {
      s = s.substring(5);
      if (s.startsWith("//")) {
        s = s.substring(2);
      }
    }
    if (s.startsWith("/")) {
      return new AgentEndpoint(null, 0, Path.of(s), null, null, null);
    }
    boolean wantTls = false;
    if (s.startsWith("shades://")) {
      wantTls = true;
      s = s.substring(9);
    } else if (s.startsWith("shade://")) {
      s = s.substring(8);
      if (tlsCa != null) {
        throw new IllegalArgumentException("shade:// is plain TCP, but TLS files were given: use shades:// or HOST:PORT");
      }
    }
    if (s.endsWith("/")) {
      s = s.substring(0, s.length() - 1);
    }
    URI u;
    try {
      u = new URI("shade://" + s);
    } catch (URISyntaxException e) {
      throw new IllegalArgumentException("invalid agent address '" + text + "': expected HOST:PORT, [IPv6]:PORT, "
          + "shades://HOST:PORT or the path of a control socket");
    }
    if (u.getHost() == null || u.getPort() < 0 || (u.getPath() != null && !u.getPath().isEmpty())) {
      throw new IllegalArgumentException("invalid agent address '" + text + "': expected HOST:PORT, [IPv6]:PORT, "
          + "shades://HOST:PORT or the path of a control socket");
    }
    if (wantTls && tlsCa == null) {
      throw new IllegalArgumentException("shades:// needs the CA that signs the agent's certificate");
    }
    String host = u.getHost();
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    return new AgentEndpoint(host, u.getPort(), null, tlsCa, tlsCert, tlsKey);
  }

  /** Whether the connection uses TLS. */
  public boolean tls() {
    return tlsCa != null && socket == null;
  }

  @Override
  public String toString() {
    if (socket != null) {
      return "agent control socket " + socket;
    }
    String h = host.indexOf(':') >= 0 ? "[" + host + "]" : host;
    return "agent " + (tls() ? "shades://" : "shade://") + h + ":" + port;
  }
}
