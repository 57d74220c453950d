package dev.shade.cli;

import dev.shade.requestor.agent.ConfigSyntax;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** TCP addresses as {@code HOST:PORT} or {@code [IPv6]:PORT}, resolved when parsed. */
final class HostPort implements ITypeConverter<InetSocketAddress> {
  @Override
  public InetSocketAddress convert(String value) {
    try {
      return parse(value);
    } catch (IllegalArgumentException e) {
      throw new TypeConversionException(e.getMessage());
    }
  }

  /** Parses and resolves {@code text}; port 0 means any free port (the config file's syntax). */
  static InetSocketAddress parse(String text) {
    return ConfigSyntax.hostPort(text);
  }

  /** {@code address} as HOST:PORT with the numeric host, IPv6 in brackets. */
  static String format(InetSocketAddress address) {
    return host(address) + ":" + address.getPort();
  }

  /** The numeric host of {@code address} as it goes into a URI: IPv6 in brackets, no scope. */
  static String host(InetSocketAddress address) {
    InetAddress a = address.getAddress();
    if (a instanceof Inet6Address) {
      String literal = a.getHostAddress();
      int scope = literal.indexOf('%');
      return "[" + (scope < 0 ? literal : literal.substring(0, scope)) + "]";
    }
    return a.getHostAddress();
  }
}
