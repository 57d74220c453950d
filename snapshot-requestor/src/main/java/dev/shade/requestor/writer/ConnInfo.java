package dev.shade.requestor.writer;

import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

/**
 * A PostgreSQL connection string as libpq takes it, either keyword/value
 * ({@code host=127.0.0.1 port=5432 dbname=postgres user=postgres}) or a URI
 * ({@code postgresql://postgres@127.0.0.1:5432/postgres}), turned into what the PostgreSQL JDBC
 * driver takes: a {@code jdbc:postgresql://} URL and connection properties.
 *
 * <p>Keywords starting with {@code shade.} are shade's own options and never reach the server:
 * {@code shade.archive=DIR} names the WAL archive that backup-complete cleans up.
 *
 * <p>Only TCP: the JDBC driver cannot open a Unix socket without an extra socket-factory library,
 * so a {@code host} that is a socket directory ({@code host=/var/run/postgresql}) or a missing
 * host (libpq's default, the socket) is an error that says to use {@code host=127.0.0.1}.
 *
 * <p>Immutable and thread-safe.
 */
final class ConnInfo {
  /** shade's keyword that names the WAL archive to clean up after a backup. */
  static final String ARCHIVE = "shade.archive";

  /** The libpq keywords this accepts, and shade's own. */
  static final Set<String> KEYWORDS = Set.of("host", "hostaddr", "port", "dbname", "user", "password",
      "sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name", "options",
      ARCHIVE);

  /** Every keyword and value given, in order (values unquoted, URIs decoded). */
  private final Map<String, String> params;

  private ConnInfo(Map<String, String> params) {
    this.params = Map.copyOf(params);
  }

  /** Parses {@code text}; fails with a message that names the problem and quotes the text. */
  static ConnInfo parse(String text) {
    Map<String, String> p = text.startsWith("postgresql://") || text.startsWith("postgres://")
        ? parseUri(text) : parseKeywords(text);
    for (String k : p.keySet()) {
      if (!KEYWORDS.contains(k)) {
        throw new IllegalArgumentException("unknown connection keyword " + k + " in '" + redact(text)
            + "'; known: " + String.join(", ", KEYWORDS.stream().sorted().toList()));
      }
    }
    if (p.containsKey("hostaddr") && !p.containsKey("host")) {
      p.put("host", p.get("hostaddr"));
    }
    String host = p.get("host");
    if (host == null || host.isEmpty()) {
      throw new IllegalArgumentException("no host in '" + redact(text) + "': shade reaches PostgreSQL over TCP only "
          + "(the JDBC driver has no Unix sockets); give host=127.0.0.1 (or the server's address) and port=");
    }
    if (host.startsWith("/") || host.startsWith("@")) {
      throw new IllegalArgumentException("host " + host + " in '" + redact(text) + "' is a Unix socket directory; "
          + "shade reaches PostgreSQL over TCP only (the JDBC driver has no Unix sockets): give host=127.0.0.1 "
          + "and make the server listen there (listen_addresses)");
    }
    if (host.contains(",")) {
      throw new IllegalArgumentException("several hosts in '" + redact(text) + "': a backup needs one server");
    }
    String port = p.getOrDefault("port", "5432");
    try {
      int n = Integer.parseInt(port);
      if (n < 1 || n > 65535) {
        throw new NumberFormatException();
      }
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("port " + port + " in '" + redact(text) + "' is not a TCP port (1-65535)");
    }
    return new ConnInfo(p);
  }

  /** libpq's keyword = value list; values may be single-quoted with backslash escapes. */
  private static Map<String, String> parseKeywords(String text) {
    Map<String, String> p = new LinkedHashMap<>();
    int i = 0;
    int n = text.length();
    while (true) {
      while (i < n && Character.isWhitespace(text.charAt(i))) {
        i++;
      }
      if (i >= n) {
        return p;
      }
      int k = i;
      while (i < n && text.charAt(i) != '=' && !Character.isWhitespace(text.charAt(i))) {
        i++;
      }
      String key = text.substring(k, i);
      while (i < n && Character.isWhitespace(text.charAt(i))) {
        i++;
      }
      if (i >= n || text.charAt(i) != '=') {
        throw new IllegalArgumentException("missing '=' after \"" + key + "\" in connection string '"
            + redact(text) + "' (expected keyword=value ...)");
      }
      i++;
      while (i < n && Character.isWhitespace(text.charAt(i))) {
        i++;
      }
      StringBuilder v = new StringBuilder();
      if (i < n && text.charAt(i) == '\'') {
        i++;
        while (true) {
          if (i >= n) {
            throw new IllegalArgumentException("unterminated quoted value of " + key + " in '" + redact(text) + "'");
          }
          char c = text.charAt(i++);
          if (c == '\'') {
            break;
          }
          if (c == '\\' && i < n) {
            c = text.charAt(i++);
          }
          v.append(c);
        }
      } else {
        while (i < n && !Character.isWhitespace(text.charAt(i))) {
          char c = text.charAt(i++);
          if (c == '\\' && i < n) {
            c = text.charAt(i++);
          }
          v.append(c);
        }
      }
      if (p.put(key, v.toString()) != null) {
        throw new IllegalArgumentException(key + " is given twice in '" + redact(text) + "'");
      }
    }
  }

  /** {@code postgresql://[user[:password]@][host][:port][/dbname][?keyword=value&...]}. */
  private static Map<String, String> parseUri(String text) {
    Map<String, String> p = new LinkedHashMap<>();
    String rest = text.substring(text.indexOf("://") + 3);
    String query = null;
    int q = rest.indexOf('?');
    if (q >= 0) {
      query = rest.substring(q + 1);
      rest = rest.substring(0, q);
    }
    int slash = rest.indexOf('/');
    String authority = slash >= 0 ? rest.substring(0, slash) : rest;
    if (slash >= 0 && slash + 1 < rest.length()) {
      p.put("dbname", decode(rest.substring(slash + 1)));
    }
    int at = authority.lastIndexOf('@');
    if (at >= 0) {
      String userInfo = authority.substring(0, at);
      authority = authority.substring(at + 1);
      int colon = userInfo.indexOf(':');
      if (colon >= 0) {
        p.put("user", decode(userInfo.substring(0, colon)));
        p.put("password", decode(userInfo.substring(colon + 1)));
      } else if (!userInfo.isEmpty()) {
        p.put("user", decode(userInfo));
      }
    }
    String host = authority;
    if (authority.startsWith("[")) {
      int close = authority.indexOf(']');
      if (close < 0) {
        throw new IllegalArgumentException("unterminated [IPv6 address] in '" + redact(text) + "'");
      }
      host = authority.substring(1, close);
      if (close + 1 < authority.length() && authority.charAt(close + 1) == ':') {
        p.put("port", authority.substring(close + 2));
      }
    } else {
      int colon = authority.lastIndexOf(':');
      if (colon >= 0) {
        host = authority.substring(0, colon);
        p.put("port", authority.substring(colon + 1));
      }
    }
    if (!host.isEmpty()) {
      p.put("host", decode(host));
    }
    if (query != null && !query.isEmpty()) {
      for (String kv : query.split("&")) {
        int eq = kv.indexOf('=');
        if (eq < 0) {
          throw new IllegalArgumentException("missing '=' in URI parameter \"" + kv + "\" of '" + redact(text) + "'");
        }
        p.put(decode(kv.substring(0, eq)), decode(kv.substring(eq + 1)));
      }
    }
    return p;
  }

  private static String decode(String s) {
    return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
  }

  /** The text with any password replaced, for messages. */
  static String redact(String text) {
    return text.replaceAll("(password\\s*=\\s*)('([^'\\\\]|\\\\.)*'|\\S*)", "$1***")
        .replaceAll("(://[^:/@]*:)[^@]*@", "$1***@");
  }

  /** The JDBC URL: {@code jdbc:postgresql://HOST:PORT/DBNAME}. */
  String jdbcUrl() {
    String host = params.get("host");
    String h = host.contains(":") ? "[" + host + "]" : host; // IPv6
    String db = params.getOrDefault("dbname", params.getOrDefault("user", ""));
    return "jdbc:postgresql://" + h + ":" + port() + "/" + java.net.URLEncoder.encode(db, StandardCharsets.UTF_8);
  }

  /** The JDBC connection properties for the given libpq keywords. */
  Properties jdbcProperties() {
    Properties props = new Properties();
    putIf(props, "user", "user");
    putIf(props, "password", "password");
    putIf(props, "sslmode", "sslmode");
    putIf(props, "sslrootcert", "sslrootcert");
    putIf(props, "sslcert", "sslcert");
    putIf(props, "sslkey", "sslkey");
    putIf(props, "connect_timeout", "connectTimeout");
    putIf(props, "options", "options");
    props.setProperty("ApplicationName", params.getOrDefault("application_name", "shade"));
    return props;
  }

  private void putIf(Properties props, String key, String jdbcKey) {
    String v = params.get(key);
    if (v != null) {
      props.setProperty(jdbcKey, v);
    }
  }

  String host() {
    return params.get("host");
  }

  int port() {
    return Integer.parseInt(params.getOrDefault("port", "5432"));
  }

  /** The WAL archive to clean up after a backup ({@code shade.archive}), or null. */
  String archive() {
    return params.get(ARCHIVE);
  }

  @Override
  public String toString() {
    return "host=" + host() + " port=" + port() + " dbname=" + params.getOrDefault("dbname", "")
        + " user=" + params.getOrDefault("user", "");
  }
}
