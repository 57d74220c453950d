package dev.shade.nbd.client;

import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Optional;

/**
 * An NBD URI as libnbd's {@code nbd_connect_uri} reads it (the NBD project's doc/uri.md):
 * {@code nbd://HOST[:PORT]/EXPORT}, {@code nbds://...} (TLS), {@code nbd+unix:///EXPORT?socket=PATH}
 * and {@code nbds+unix:///EXPORT?socket=PATH}. The query may also name
 * {@code tls-certificates=DIR} (DIR/ca-cert.pem, and DIR/client-cert.pem with DIR/client-key.pem
 * when present) and {@code tls-hostname=NAME} (the name the server's certificate must carry,
 * default HOST). Other query parameters are ignored, as libnbd does.
 *
 * <p>Immutable.
 */
public final class NbdUri {
  /** The port of {@code nbd://} URIs that name none. */
  public static final int DEFAULT_PORT = 10809;

  /** The URI as given. */
  private final String text;
  /** True for nbds and nbds+unix. */
  private final boolean tls;
  /** Host of a TCP URI; null for Unix sockets. */
  private final String host;
  /** Port of a TCP URI; -1 for Unix sockets. */
  private final int port;
  /** Socket path of a Unix URI; null for TCP. */
  private final Path socket;
  /** The export name: the URI's path without its leading slash, decoded. */
  private final String export;
  /** {@code tls-certificates} directory, if given. */
  private final Path tlsCertificates;
  /** {@code tls-hostname}, if given. */
  private final String tlsHostname;

  private NbdUri(String text, boolean tls, String host, int port, Path socket, String export, Path tlsCertificates,
      String tlsHostname) {
    this.text = text;
    this.tls = tls;
    this.host = host;
    this.port = port;
    this.socket = socket;
    this.export = export;
    this.tlsCertificates = tlsCertificates;
    this.tlsHostname = tlsHostname;
  }

  /** Parses {@code uri}; IllegalArgumentException names what is wrong with it. */
  public static NbdUri parse(String uri) {
    URI u;
    try {
      u = new URI(uri);
    } catch (URISyntaxException e) {
      throw new IllegalArgumentException("not an NBD URI: " + uri + " (" + e.getMessage() + ")", e);
    }
    String scheme = u.getScheme();
    if (scheme == null) {
      throw new IllegalArgumentException("NBD URI has no scheme (nbd, nbds, nbd+unix, nbds+unix): " + uri);
    }
    boolean tls;
    boolean unix;
    switch (scheme.toLowerCase(java.util.Locale.ROOT)) {
      case "nbd": tls = false; unix = false; break;
      case "nbds": tls = true; unix = false; break;
      case "nbd+unix": tls = false; unix = true; break;
      case "nbds+unix": tls = true; unix = true; break;
      default:
        throw new IllegalArgumentException("unsupported NBD URI scheme '" + scheme + "' (nbd, nbds, nbd+unix, nbds+unix): " + uri);
    }
    String path = u.getRawPath() == null ? "" : u.getRawPath();
    String export = decode(path.startsWith("/") ? path.substring(1) : path);
    Path socket = null;
    Path certs = null;
    String hostname = null;
    String query = u.getRawQuery();
    if (query != null && !query.isEmpty()) {
      for (String kv : query.split("&")) {
        int eq = kv.indexOf('=');
        String k = decode(eq < 0 ? kv : kv.substring(0, eq));
        String v = eq < 0 ? "" : decode(kv.substring(eq + 1));
        switch (k) {
          case "socket": socket = Path.of(v); break;
          case "tls-certificates": certs = Path.of(v); break;
          case "tls-hostname": hostname = v; break;
          default: break; // ignored, as libnbd does
        }
      }
    }
    if (unix) {
      if (socket == null) {
        throw new IllegalArgumentException("Unix NBD URI lacks ?socket=PATH: " + uri);
      }
      if (u.getRawAuthority() != null && !u.getRawAuthority().isEmpty()) {
        throw new IllegalArgumentException("Unix NBD URI must not name a host: " + uri);
      }
      return new NbdUri(uri, tls, null, -1, socket, export, certs, hostname);
    }
    String host = u.getHost();
    if (host == null || host.isEmpty()) {
      throw new IllegalArgumentException("NBD URI lacks a host: " + uri);
    }
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    int port = u.getPort() < 0 ? DEFAULT_PORT : u.getPort();
    return new NbdUri(uri, tls, host, port, null, export, certs, hostname);
  }

  private static String decode(String s) {
    return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
  }

  /** True for {@code nbds} and {@code nbds+unix}: the client must STARTTLS. */
  public boolean tls() {
    return tls;
  }

  /** True for a Unix socket URI. */
  public boolean isUnix() {
    return socket != null;
  }

  /** The host of a TCP URI, else empty. */
  public Optional<String> host() {
    return Optional.ofNullable(host);
  }

  /** The port of a TCP URI ({@link #DEFAULT_PORT} when it names none), else -1. */
  public int port() {
    return port;
  }

  /** The socket of a Unix URI, else empty. */
  public Optional<Path> socket() {
    return Optional.ofNullable(socket);
  }

  /** The export name ("" is the server's default export). */
  public String export() {
    return export;
  }

  /** The {@code tls-certificates} directory, if the URI names one. */
  public Optional<Path> tlsCertificates() {
    return Optional.ofNullable(tlsCertificates);
  }

  /** The name the server's certificate must carry: {@code tls-hostname}, else the host. */
  public Optional<String> tlsHostname() {
    return Optional.ofNullable(tlsHostname != null ? tlsHostname : host);
  }

  /** The same server with another export name. */
  public NbdUri withExport(String name) {
    String base = text;
    int q = base.indexOf('?');
    String query = q < 0 ? "" : base.substring(q);
    String head = q < 0 ? base : base.substring(0, q);
    int schemeEnd = head.indexOf("://");
    int slash = head.indexOf('/', schemeEnd + 3);
    String authority = slash < 0 ? head : head.substring(0, slash);
    String encoded = java.net.URLEncoder.encode(name, StandardCharsets.UTF_8).replace("+", "%20").replace("%2F", "/");
    return parse(authority + "/" + encoded + query);
  }

  @Override
  public String toString() {
    return text;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof NbdUri && ((NbdUri) o).text.equals(text);
  }

  @Override
  public int hashCode() {
    return text.hashCode();
  }
}
