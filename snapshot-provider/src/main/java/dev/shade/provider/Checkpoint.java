package dev.shade.provider;

import dev.shade.nativeio.AtomicFile;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * The full snapshot state of a volume at one moment, in the file {@code checkpoint}; the
 * journal holds what happened since.
 *
 * <pre>
 * int 'SHCK' | int version | long generation | long nextId | long revertPending (-1: none)
 * int snapshots, each: long id | long created | utf name | utf setId ("" none)
 *                      | (version 2) short members | members × utf uuid | byte setComplete
 *                      | (version 3) attributes (see {@link Attributes}: int count |
 *                        count × (short keyLength | key | int valueLength | UTF-8 value))
 *                      | int entries | entries × (long block | long slot&lt;&lt;32|crc)
 * int crc32c of everything before
 * </pre>
 *
 * <p>Version 2 added the set members, version 3 the attributes; versions 1 and 2 are still
 * read (a version 1 set has no members and counts as complete; snapshots of both have no
 * attributes). Only version 3 is written.
 */
final class Checkpoint {
  static final String FILE = "checkpoint";
  private static final int MAGIC = 0x5348434b;
  private static final int VERSION = 3;

  private Checkpoint() {}

  /** The state a checkpoint holds. */
  record State(long generation, long nextId, long revertPending, List<Snapshot> snapshots) {}

  static void write(Path dir, State state) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(1024);
    DataOutputStream out = new DataOutputStream(bytes);
    out.writeInt(MAGIC);
    out.writeInt(VERSION);
    out.writeLong(state.generation());
    out.writeLong(state.nextId());
    out.writeLong(state.revertPending());
    out.writeInt(state.snapshots().size());
    for (Snapshot s : state.snapshots()) {
      out.writeLong(s.id);
      out.writeLong(s.createdMillis);
      out.writeUTF(s.name);
      out.writeUTF(s.setId == null ? "" : s.setId);
      out.writeShort(s.members.size());
      for (String m : s.members) {
        out.writeUTF(m);
      }
      out.writeByte(s.setComplete() ? 1 : 0);
      Attributes.write(out, s.attributes());
      long[] blocks = s.sortedBlocks();
      out.writeInt(blocks.length);
      for (long b : blocks) {
        out.writeLong(b);
        out.writeLong(s.get(b));
      }
    }
    out.flush();
    CRC32C crc = new CRC32C();
    crc.update(bytes.toByteArray());
    out.writeInt((int) crc.getValue());
    out.flush();
    AtomicFile.write(dir.resolve(FILE), bytes.toByteArray(), 0600);
  }

  static State read(Path dir) throws IOException {
    Path file = dir.resolve(FILE);
    byte[] all;
    try {
      all = Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      throw new VolumeException("volume state is missing: " + file
          + " does not exist; the volume cannot be opened safely");
    }
    if (all.length < 40) {
      throw damaged(file, "too short (" + all.length + " bytes)");
    }
    CRC32C crc = new CRC32C();
    crc.update(all, 0, all.length - 4);
    ByteBuffer in = ByteBuffer.wrap(all);
    if (in.getInt(all.length - 4) != (int) crc.getValue()) {
      throw damaged(file, "checksum mismatch");
    }
    try {
      if (in.getInt() != MAGIC) {
        throw damaged(file, "bad magic");
      }
      int version = in.getInt();
      if (version < 1 || version > VERSION) {
        throw damaged(file, "unknown version " + version);
      }
      long generation = in.getLong();
      long nextId = in.getLong();
      long revert = in.getLong();
      int n = in.getInt();
      List<Snapshot> snaps = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        long id = in.getLong();
        long created = in.getLong();
        String name = utf(in);
        String set = utf(in);
        List<String> members = new ArrayList<>();
        boolean complete = true;
        if (version >= 2) {
          int m = Short.toUnsignedInt(in.getShort());
          for (int k = 0; k < m; k++) {
            members.add(utf(in));
          }
          complete = in.get() != 0;
        }
        Map<String, String> attributes = version >= 3 ? Attributes.decode(in) : Map.of();
        int entries = in.getInt();
        BlockTable t = new BlockTable(entries);
        for (int e = 0; e < entries; e++) {
          t.put(in.getLong(), in.getLong());
        }
        snaps.add(new Snapshot(id, name, created, set.isEmpty() ? null : set, members, complete, attributes, t));
      }
      if (in.remaining() != 4) {
        throw damaged(file, (in.remaining() - 4) + " unexpected trailing bytes");
      }
      return new State(generation, nextId, revert, snaps);
    } catch (BufferUnderflowException | IllegalArgumentException e) {
      throw damaged(file, "malformed contents");
    }
  }

  private static String utf(ByteBuffer in) {
    int len = Short.toUnsignedInt(in.getShort());
    byte[] b = new byte[len];
    in.get(b);
    return new String(b, StandardCharsets.UTF_8);
  }

  private static VolumeException damaged(Path file, String why) {
    return new VolumeException("volume state is damaged (" + why + "): " + file);
  }
}
