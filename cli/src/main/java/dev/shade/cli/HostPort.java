package dev.shade.cli;

import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** TCP addresses as {@code HOST:PORT} or {@code [IPv6]:PORT}, resolved when parsed. */
final class HostPort implements ITypeConverter<InetSocketAddress> {
  /*
   * A bare IPv6 literal such as ::1:10809 is refused: the port cannot be told from the last
   * group of the address, so it must be written [::1]:10809 as in URIs.
   */

  private static final Pattern BRACKETED = Pattern.compile("\\[([0-9A-Fa-f:.%\\w]+)]:(\\S*)");
  private static final Pattern PLAIN = Pattern.compile("([^:\\s\\[\\]]+):(\\S*)");

  @Override
  public InetSocketAddress convert(String value) {
    try {
      return parse(value);
    } catch (IllegalArgumentException e) {
      throw new TypeConversionException(e.getMessage());
    }
  }

  /** Parses and resolves {@code text}; port 0 means any free port. */
  static InetSocketAddress parse(String text) {
    String s = text == null ? "" : text.strip();
    Matcher m = BRACKETED.matcher(s);
    if (!m.matches()) {
      m = PLAIN.matcher(s);
    }
    if (!m.matches()) {
      throw new IllegalArgumentException("invalid address '" + text
          + "': expected HOST:PORT, e.g. 127.0.0.1:10809 or [::1]:10809");
    }
    String host = m.group(1);
    int port = port(m.group(2), text);
    try {
      return new InetSocketAddress(InetAddress.getByName(host), port);
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException("cannot resolve host '" + host + "' of address '" + text + "'");
    }
  }

  private static int port(String digits, String text) {
    if (!digits.matches("\\d{1,5}") || Integer.parseInt(digits) > 65535) {
      throw new IllegalArgumentException("invalid port '" + digits + "' in address '" + text
          + "': expected 0 to 65535 (0 picks a free port)");
    }
    return Integer.parseInt(digits);
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
