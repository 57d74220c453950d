package dev.shade.testing.nbd;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Parses the JSON that nbdinfo and fio print into maps, lists, strings, longs, doubles,
 * booleans and null.
 */
public final class Json {
  /*
   * A plain recursive-descent reader of RFC 8259, enough for tool output: objects keep their
   * key order (LinkedHashMap), integers become Long, other numbers Double. Errors name the
   * offset and show the text around it.
   */
  /** The text being parsed. */
  private final String text;
  /** Index of the next character to read. */
  private int pos;

  private Json(String text) {
    this.text = text;
  }

  /** Parses {@code text}, which must hold exactly one JSON value (whitespace aside). */
  public static Object parse(String text) {
    Json j = new Json(text);
    Object v = j.value();
    j.skipSpace();
    if (j.pos != text.length()) {
      throw j.error("trailing text after the value");
    }
    return v;
  }

  /** Parses from the first '{' or '[' of {@code text}, ignoring lines a tool printed before. */
  public static Object parseFromFirstBracket(String text) {
    int obj = text.indexOf('{');
    int arr = text.indexOf('[');
    int start = obj < 0 ? arr : arr < 0 ? obj : Math.min(obj, arr);
    if (start < 0) {
      throw new IllegalArgumentException("no JSON object or array in: " + text);
    }
    return parse(text.substring(start));
  }

  @SuppressWarnings("unchecked")
  public static Map<String, Object> object(Object v) {
    if (!(v instanceof Map)) {
      throw new IllegalArgumentException("not a JSON object: " + v);
    }
    return (Map<String, Object>) v;
  }

  @SuppressWarnings("unchecked")
  public static List<Object> array(Object v) {
    if (!(v instanceof List)) {
      throw new IllegalArgumentException("not a JSON array: " + v);
    }
    return (List<Object>) v;
  }

  /** The integer member {@code key} of an object. */
  public static long integer(Map<String, Object> obj, String key) {
    Object v = obj.get(key);
    if (!(v instanceof Long)) {
      throw new IllegalArgumentException("member " + key + " is not an integer: " + v + " in " + obj);
    }
    return (Long) v;
  }

  private Object value() {
    skipSpace();
    if (pos >= text.length()) {
      throw error("unexpected end of text");
    }
    char c = text.charAt(pos);
    switch (c) {
      case '{':
        return objectValue();
      case '[':
        return arrayValue();
      case '"':
        return string();
      case 't':
        return literal("true", Boolean.TRUE);
      case 'f':
        return literal("false", Boolean.FALSE);
      case 'n':
        return literal("null", null);
      default:
        if (c == '-' || (c >= '0' && c <= '9')) {
          return number();
        }
        throw error("unexpected character '" + c + "'");
    }
  }

  private Map<String, Object> objectValue() {
    Map<String, Object> out = new LinkedHashMap<>();
    pos++; // '{'
    skipSpace();
    if (peek() == '}') {
      pos++;
      return out;
    }
    while (true) {
      skipSpace();
      if (peek() != '"') {
        throw error("expected a member name");
      }
      String key = string();
      skipSpace();
      expect(':');
      out.put(key, value());
      skipSpace();
      char c = next();
      if (c == '}') {
        return out;
      }
      if (c != ',') {
        throw error("expected ',' or '}'");
      }
    }
  }

  private List<Object> arrayValue() {
    List<Object> out = new ArrayList<>();
    pos++; // '['
    skipSpace();
    if (peek() == ']') {
      pos++;
      return out;
    }
    while (true) {
      out.add(value());
      skipSpace();
      char c = next();
      if (c == ']') {
        return out;
      }
      if (c != ',') {
        throw error("expected ',' or ']'");
      }
    }
  }

  private String string() {
    expect('"');
    StringBuilder sb = new StringBuilder();
    while (true) {
      char c = next();
      if (c == '"') {
        return sb.toString();
      }
      if (c != '\\') {
        sb.append(c);
        continue;
      }
      char e = next();
      switch (e) {
        case '"': case '\\': case '/': sb.append(e); break;
        case 'b': sb.append('\b'); break;
        case 'f': sb.append('\f'); break;
        case 'n': sb.append('\n'); break;
        case 'r': sb.append('\r'); break;
        case 't': sb.append('\t'); break;
        case 'u':
          if (pos + 4 > text.length()) {
            throw error("truncated \\u escape");
          }
          sb.append((char) Integer.parseInt(text.substring(pos, pos + 4), 16));
          pos += 4;
          break;
        default:
          throw error("bad escape \\" + e);
      }
    }
  }

  private Object number() {
    int start = pos;
    while (pos < text.length() && "+-0123456789.eE".indexOf(text.charAt(pos)) >= 0) {
      pos++;
    }
    String n = text.substring(start, pos);
    try {
      if (n.indexOf('.') < 0 && n.indexOf('e') < 0 && n.indexOf('E') < 0) {
        return Long.parseLong(n);
      }
      return Double.parseDouble(n);
    } catch (NumberFormatException e) {
      pos = start;
      throw error("bad number " + n);
    }
  }

  private Object literal(String word, Object v) {
    if (!text.startsWith(word, pos)) {
      throw error("expected " + word);
    }
    pos += word.length();
    return v;
  }

  private void skipSpace() {
    while (pos < text.length() && Character.isWhitespace(text.charAt(pos))) {
      pos++;
    }
  }

  private char peek() {
    if (pos >= text.length()) {
      throw error("unexpected end of text");
    }
    return text.charAt(pos);
  }

  private char next() {
    char c = peek();
    pos++;
    return c;
  }

  private void expect(char c) {
    if (next() != c) {
      pos--;
      throw error("expected '" + c + "'");
    }
  }

  private IllegalArgumentException error(String what) {
    int from = Math.max(0, pos - 40);
    int to = Math.min(text.length(), pos + 40);
    return new IllegalArgumentException("bad JSON at offset " + pos + ": " + what + " near «" + text.substring(from, to) + "»");
  }
}
