package dev.shade.provider;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** One logical change to a volume's snapshot state, as written to the journal. */
sealed interface JournalRecord {
  byte CREATE = 1;
  byte DELETE = 2;
  byte COW = 3;
  byte REVERT_BEGIN = 4;
  byte REVERT_END = 5;
  /** A snapshot of a set, with the uuids of all the set's members (format 2 of CREATE). */
  byte CREATE_MEMBER = 6;
  byte SET_COMPLETE = 7;
  /** Snapshot {@code id}'s attributes were replaced. */
  byte ATTRIBUTES = 8;
  /** A snapshot with attributes (format 3 of CREATE: format 2 followed by the attributes). */
  byte CREATE_ATTRIBUTES = 9;
  /** A revert that keeps the newer snapshots began (see {@link RevertKeepBegin}). */
  byte REVERT_KEEP_BEGIN = 10;
  byte REVERT_KEEP_END = 11;

  /** Appends the encoding (type byte first) to {@code out}. */
  void encode(ByteBuffer out);

  /** Upper bound of the encoded size. */
  int maxSize();

  /**
   * Snapshot {@code id} named {@code name} took effect at {@code createdMillis}; as a member of
   * set {@code setId} (or null) whose volumes have the uuids {@code members} (empty for a single
   * snapshot), with {@code attributes} (checked by {@link Attributes#checked}). Encoded as
   * CREATE (format 1, what every snapshot used before sets recorded their members, and still
   * used without members and attributes), CREATE_MEMBER (format 1 followed by
   * {@code short count | count × utf uuid}) when it has members but no attributes, or
   * CREATE_ATTRIBUTES (CREATE_MEMBER's layout followed by the {@link Attributes} encoding)
   * when it has attributes.
   */
  record Create(long id, long createdMillis, String name, String setId, List<String> members,
      Map<String, String> attributes) implements JournalRecord {
    public Create {
      members = List.copyOf(members);
      attributes = Attributes.checked(attributes);
    }

    Create(long id, long createdMillis, String name, String setId, List<String> members) {
      this(id, createdMillis, name, setId, members, Map.of());
    }

    Create(long id, long createdMillis, String name, String setId) {
      this(id, createdMillis, name, setId, List.of(), Map.of());
    }

    @Override
    public void encode(ByteBuffer out) {
      byte type = !attributes.isEmpty() ? CREATE_ATTRIBUTES : members.isEmpty() ? CREATE : CREATE_MEMBER;
      out.put(type).putLong(id).putLong(createdMillis);
      putString(out, name);
      putString(out, setId == null ? "" : setId);
      if (type != CREATE) {
        out.putShort((short) members.size());
        for (String m : members) {
          putString(out, m);
        }
      }
      if (type == CREATE_ATTRIBUTES) {
        Attributes.encode(out, attributes);
      }
    }

    @Override
    public int maxSize() {
      int n = 1 + 16 + 4 + 3 * (name.length() + (setId == null ? 0 : setId.length()));
      for (String m : members) {
        n += 2 + 3 * m.length();
      }
      return n + 2 + (attributes.isEmpty() ? 0 : Attributes.encodedSize(attributes));
    }
  }

  /** Snapshot {@code id}'s attributes are now {@code attributes} (the whole map, replaced). */
  record SetAttributes(long id, Map<String, String> attributes) implements JournalRecord {
    public SetAttributes {
      attributes = Attributes.checked(attributes);
    }

    @Override
    public void encode(ByteBuffer out) {
      out.put(ATTRIBUTES).putLong(id);
      Attributes.encode(out, attributes);
    }

    @Override
    public int maxSize() {
      return 9 + Attributes.encodedSize(attributes);
    }
  }

  /**
   * Every member of the set of snapshot {@code id} holds its snapshot: no reconciliation may
   * remove it. Replay ignores it when the snapshot is gone.
   */
  record SetComplete(long id) implements JournalRecord {
    @Override
    public void encode(ByteBuffer out) {
      out.put(SET_COMPLETE).putLong(id);
    }

    @Override
    public int maxSize() {
      return 9;
    }
  }

  /** Snapshot {@code id} was deleted; its entries merge into the next-older snapshot. */
  record Delete(long id) implements JournalRecord {
    @Override
    public void encode(ByteBuffer out) {
      out.put(DELETE).putLong(id);
    }

    @Override
    public int maxSize() {
      return 9;
    }
  }

  /**
   * The old contents of {@code block} were copied into diff slot {@code slot} for snapshot
   * {@code snapId}; {@code crc} is the CRC32C of the copied bytes.
   */
  record Cow(long snapId, long block, int slot, int crc) implements JournalRecord {
    @Override
    public void encode(ByteBuffer out) {
      out.put(COW).putLong(snapId).putLong(block).putInt(slot).putInt(crc);
    }

    @Override
    public int maxSize() {
      return 25;
    }
  }

  /** A revert to snapshot {@code id} began; replay finishes it if no end follows. */
  record RevertBegin(long id) implements JournalRecord {
    @Override
    public void encode(ByteBuffer out) {
      out.put(REVERT_BEGIN).putLong(id);
    }

    @Override
    public int maxSize() {
      return 9;
    }
  }

  /** The origin holds snapshot {@code id}'s contents durably; its table can be dropped. */
  record RevertEnd(long id) implements JournalRecord {
    @Override
    public void encode(ByteBuffer out) {
      out.put(REVERT_END).putLong(id);
    }

    @Override
    public int maxSize() {
      return 9;
    }
  }

  /**
   * A revert to snapshot {@code id} that keeps the newer snapshots began: its copies back are
   * ordinary copy-on-write writes (their own COW records), so replay changes no table for it;
   * an open that finds no end after it runs the copy back again.
   */
  record RevertKeepBegin(long id) implements JournalRecord {
    @Override
    public void encode(ByteBuffer out) {
      out.put(REVERT_KEEP_BEGIN).putLong(id);
    }

    @Override
    public int maxSize() {
      return 9;
    }
  }

  /** The origin holds snapshot {@code id}'s contents durably; every snapshot's table stays. */
  record RevertKeepEnd(long id) implements JournalRecord {
    @Override
    public void encode(ByteBuffer out) {
      out.put(REVERT_KEEP_END).putLong(id);
    }

    @Override
    public int maxSize() {
      return 9;
    }
  }

  /** Decodes one record at the buffer's position; throws IllegalArgumentException if malformed. */
  static JournalRecord decode(ByteBuffer in) {
    byte type = in.get();
    switch (type) {
      case CREATE:
      case CREATE_MEMBER:
      case CREATE_ATTRIBUTES: {
        long id = in.getLong();
        long created = in.getLong();
        String name = getString(in);
        String set = getString(in);
        List<String> members = new ArrayList<>();
        if (type != CREATE) {
          int n = Short.toUnsignedInt(in.getShort());
          for (int i = 0; i < n; i++) {
            members.add(getString(in));
          }
        }
        Map<String, String> attributes = type == CREATE_ATTRIBUTES ? Attributes.decode(in) : Map.of();
        return new Create(id, created, name, set.isEmpty() ? null : set, members, attributes);
      }
      case ATTRIBUTES:
        return new SetAttributes(in.getLong(), Attributes.decode(in));
      case SET_COMPLETE:
        return new SetComplete(in.getLong());
      case DELETE:
        return new Delete(in.getLong());
      case COW:
        return new Cow(in.getLong(), in.getLong(), in.getInt(), in.getInt());
      case REVERT_BEGIN:
        return new RevertBegin(in.getLong());
      case REVERT_END:
        return new RevertEnd(in.getLong());
      case REVERT_KEEP_BEGIN:
        return new RevertKeepBegin(in.getLong());
      case REVERT_KEEP_END:
        return new RevertKeepEnd(in.getLong());
      default:
        throw new IllegalArgumentException("unknown journal record type " + type);
    }
  }

  static void putString(ByteBuffer out, String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    out.putShort((short) b.length).put(b);
  }

  static String getString(ByteBuffer in) {
    int len = Short.toUnsignedInt(in.getShort());
    byte[] b = new byte[len];
    in.get(b);
    return new String(b, StandardCharsets.UTF_8);
  }
}
