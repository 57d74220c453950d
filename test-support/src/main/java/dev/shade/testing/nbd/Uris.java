package dev.shade.testing.nbd;

import java.net.InetSocketAddress;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** NBD URIs (as libnbd, qemu and shade's client take them) of servers that tests start. */
public final class Uris {
  private Uris() {}

  /** {@code nbd://HOST:PORT/EXPORT}. */
  public static String tcp(InetSocketAddress server, String export) {
    return "nbd://" + server.getAddress().getHostAddress() + ":" + server.getPort() + "/" + export;
  }

  /** {@code nbds://HOST:PORT/EXPORT}, with {@code ?tls-certificates=DIR} when {@code certificates} is not null. */
  public static String tls(InetSocketAddress server, String export, Path certificates) {
    return "nbds://" + server.getAddress().getHostAddress() + ":" + server.getPort() + "/" + export + (certificates == null ? "" : "?tls-certificates=" + encode(certificates));
  }

  /** {@code nbd+unix:///EXPORT?socket=PATH}, or {@code nbds+unix} with {@code tls-certificates} when {@code certificates} is not null. */
  public static String unix(Path socket, String export, Path certificates) {
    return (certificates == null ? "nbd+unix:///" : "nbds+unix:///") + export + "?socket=" + encode(socket)
        + (certificates == null ? "" : "&tls-certificates=" + encode(certificates));
  }

  private static String encode(Path p) {
    return URLEncoder.encode(p.toString(), StandardCharsets.UTF_8).replace("%2F", "/");
  }
}
