package dev.shade.provider;

import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetEncoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A snapshot's attributes: the checks on them and their one encoding, shared by the journal
 * records and the checkpoint.
 *
 * <pre>
 * int count | count × (short keyLength | key bytes | int valueLength | value bytes), UTF-8
 * </pre>
 *
 * <p>Thread-safe: stateless; the maps it returns are unmodifiable.
 */
final class Attributes {
  /** Longest key, in characters. */
  static final int MAX_KEY = 200;
  /** Largest encoding of one snapshot's map, in bytes. */
  static final int MAX_ENCODED = 256 << 10;
  private static final Pattern KEY = Pattern.compile("[A-Za-z0-9._-]{1," + MAX_KEY + "}");

  private Attributes() {}

  /**
   * An unmodifiable copy of {@code attributes} (null: none) in its iteration order, after
   * checking every key and value and the size of the whole.
   *
   * @throws IllegalArgumentException naming the offending key
   */
  static Map<String, String> checked(Map<String, String> attributes) {
    if (attributes == null || attributes.isEmpty()) {
      return Map.of();
    }
    LinkedHashMap<String, String> copy = new LinkedHashMap<>();
    CharsetEncoder utf8 = StandardCharsets.UTF_8.newEncoder()
        .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
    long size = 4;
    for (Map.Entry<String, String> e : attributes.entrySet()) {
      String k = e.getKey();
      String v = e.getValue();
      if (k == null || !KEY.matcher(k).matches()) {
        throw new IllegalArgumentException("invalid snapshot attribute key '" + k
            + "': use 1-" + MAX_KEY + " letters, digits and . _ -");
      }
      if (v == null) {
        throw new IllegalArgumentException("snapshot attribute '" + k + "' has no value (null)");
      }
      int valueBytes;
      try {
        valueBytes = utf8.encode(CharBuffer.wrap(v)).remaining();
      } catch (CharacterCodingException ex) {
        throw new IllegalArgumentException("snapshot attribute '" + k + "' is not valid UTF-8 text (an unpaired surrogate)");
      }
      size += 2 + k.length() + 4 + (long) valueBytes;
      if (size > MAX_ENCODED) {
        throw new IllegalArgumentException("snapshot attributes exceed " + MAX_ENCODED + " bytes encoded at key '" + k
            + "' (" + valueBytes + " bytes of value)");
      }
      copy.put(k, v);
    }
    return Collections.unmodifiableMap(copy);
  }

  /** Bytes of the encoding of a checked map. */
  static int encodedSize(Map<String, String> attributes) {
    int n = 4;
    for (Map.Entry<String, String> e : attributes.entrySet()) {
      n += 2 + e.getKey().length() + 4 + e.getValue().getBytes(StandardCharsets.UTF_8).length;
    }
    return n;
  }

  static void encode(ByteBuffer out, Map<String, String> attributes) {
    out.putInt(attributes.size());
    for (Map.Entry<String, String> e : attributes.entrySet()) {
      byte[] k = e.getKey().getBytes(StandardCharsets.US_ASCII);
      byte[] v = e.getValue().getBytes(StandardCharsets.UTF_8);
      out.putShort((short) k.length).put(k).putInt(v.length).put(v);
    }
  }

  static void write(DataOutputStream out, Map<String, String> attributes) throws IOException {
    out.writeInt(attributes.size());
    for (Map.Entry<String, String> e : attributes.entrySet()) {
      byte[] k = e.getKey().getBytes(StandardCharsets.US_ASCII);
      byte[] v = e.getValue().getBytes(StandardCharsets.UTF_8);
      out.writeShort(k.length);
      out.write(k);
      out.writeInt(v.length);
      out.write(v);
    }
  }

  /**
   * Decodes a map at the buffer's position, in its stored order; throws
   * IllegalArgumentException (or BufferUnderflowException) if malformed.
   */
  static Map<String, String> decode(ByteBuffer in) {
    int n = in.getInt();
    if (n < 0 || n > in.remaining()) {
      throw new IllegalArgumentException("implausible attribute count " + n);
    }
    if (n == 0) {
      return Map.of();
    }
    LinkedHashMap<String, String> m = new LinkedHashMap<>();
    for (int i = 0; i < n; i++) {
      byte[] k = new byte[Short.toUnsignedInt(in.getShort())];
      in.get(k);
      int len = in.getInt();
      if (len < 0 || len > in.remaining()) {
        throw new IllegalArgumentException("implausible attribute value length " + len);
      }
      byte[] v = new byte[len];
      in.get(v);
      m.put(new String(k, StandardCharsets.US_ASCII), new String(v, StandardCharsets.UTF_8));
    }
    return Collections.unmodifiableMap(m);
  }
}
