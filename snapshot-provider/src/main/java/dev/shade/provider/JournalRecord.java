package dev.shade.provider;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** One logical change to a volume's snapshot state, as written to the journal. */
sealed interface JournalRecord {
  byte CREATE = 1;
  byte DELETE = 2;
  byte COW = 3;
  byte REVERT_BEGIN = 4;
  byte REVERT_END = 5;

  /** Appends the encoding (type byte first) to {@code out}. */
  void encode(ByteBuffer out);

  /** Upper bound of the encoded size. */
  int maxSize();

  /** Snapshot {@code id} named {@code name} took effect at {@code createdMillis}. */
  record Create(long id, long createdMillis, String name, String setId) implements JournalRecord {
    @Override
    public void encode(ByteBuffer out) {
      out.put(CREATE).putLong(id).putLong(createdMillis);
      putString(out, name);
      putString(out, setId == null ? "" : setId);
    }

    @Override
    public int maxSize() {
      return 1 + 16 + 4 + 3 * (name.length() + (setId == null ? 0 : setId.length()));
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

  /** Decodes one record at the buffer's position; throws IllegalArgumentException if malformed. */
  static JournalRecord decode(ByteBuffer in) {
    byte type = in.get();
    switch (type) {
      case CREATE: {
        long id = in.getLong();
        long created = in.getLong();
        String name = getString(in);
        String set = getString(in);
        return new Create(id, created, name, set.isEmpty() ? null : set);
      }
      case DELETE:
        return new Delete(in.getLong());
      case COW:
        return new Cow(in.getLong(), in.getLong(), in.getInt(), in.getInt());
      case REVERT_BEGIN:
        return new RevertBegin(in.getLong());
      case REVERT_END:
        return new RevertEnd(in.getLong());
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
