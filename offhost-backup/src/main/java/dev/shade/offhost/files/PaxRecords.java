package dev.shade.offhost.files;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The records of one POSIX extended header ({@code typeflag 'x'}): {@code "LEN KEY=VALUE\n"},
 * LEN counting the whole record in bytes, values raw bytes (xattr values are binary, as GNU tar
 * writes them).
 *
 * <p>Not thread-safe.
 */
final class PaxRecords {
  /** Keys in the order added, values as bytes. */
  private final Map<String, byte[]> records = new LinkedHashMap<>();

  /** Adds (or replaces) {@code key} with the UTF-8 text {@code value}. */
  PaxRecords put(String key, String value) {
    return put(key, value.getBytes(StandardCharsets.UTF_8));
  }

  /** Adds (or replaces) {@code key} with the bytes {@code value}. */
  PaxRecords put(String key, byte[] value) {
    if (key.isEmpty() || key.indexOf('=') >= 0 || key.indexOf('\n') >= 0) {
      throw new IllegalArgumentException("not a PAX key: " + key);
    }
    records.put(key, value.clone());
    return this;
  }

  /** Adds (or replaces) every record of {@code other}, in its order. */
  PaxRecords putAll(PaxRecords other) {
    records.putAll(other.records);
    return this;
  }

  /** A copy, to add to without changing this one. */
  PaxRecords copy() {
    return new PaxRecords().putAll(this);
  }

  boolean isEmpty() {
    return records.isEmpty();
  }

  /** The header's body. */
  byte[] bytes() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (Map.Entry<String, byte[]> r : records.entrySet()) {
      byte[] key = r.getKey().getBytes(StandardCharsets.UTF_8);
      int rest = 1 + key.length + 1 + r.getValue().length + 1; // " " KEY "=" VALUE "\n"
      int len = rest + Integer.toString(rest).length();
      if (Integer.toString(len).length() != Integer.toString(rest).length()) {
        len = rest + Integer.toString(len).length(); // the length's own digits made it one digit longer
      }
      out.writeBytes(Integer.toString(len).getBytes(StandardCharsets.US_ASCII));
      out.write(' ');
      out.writeBytes(key);
      out.write('=');
      out.writeBytes(r.getValue());
      out.write('\n');
    }
    return out.toByteArray();
  }

  /** A time as PAX writes it: seconds since the epoch and nine digits of fraction ({@code 1700000000.123456789}). */
  static String time(FileTime t) {
    Instant i = t.toInstant();
    long s = i.getEpochSecond();
    int n = i.getNano();
    return s + "." + String.format("%09d", n);
  }

  /** Parses a PAX time ({@code SECONDS[.FRACTION]}, possibly negative); null when it is not one. */
  static Instant parseTime(String v) {
    if (!v.matches("-?[0-9]{1,19}(\\.[0-9]{0,30})?")) {
      return null;
    }
    boolean negative = v.startsWith("-");
    String u = negative ? v.substring(1) : v;
    int dot = u.indexOf('.');
    long sec = Long.parseLong(dot < 0 ? u : u.substring(0, dot));
    String frac = dot < 0 ? "" : u.substring(dot + 1);
    frac = (frac + "000000000").substring(0, 9);
    long nanos = Long.parseLong(frac);
    Instant i = Instant.ofEpochSecond(sec, nanos);
    return negative ? Instant.ofEpochSecond(-sec, 0).minusNanos(nanos) : i;
  }
}
