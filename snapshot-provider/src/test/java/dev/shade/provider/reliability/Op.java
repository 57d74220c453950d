package dev.shade.provider.reliability;

import dev.shade.provider.Volume;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One operation of a reliability script against a volume, with its text form.
 *
 * <p>The text form, one operation a line, is what a parent test hands a child JVM: {@code W
 * offset length dataSeed}, {@code F}, {@code C name}, {@code D name}, {@code T offset length},
 * {@code Z offset length}. Write data is never stored: both sides regenerate it from the seed.
 *
 * @param kind what the operation does
 * @param offset first byte, for writes, trims and zeroes; 0 otherwise
 * @param length bytes, for writes, trims and zeroes; 0 otherwise
 * @param dataSeed seed of the bytes a write stores; 0 otherwise
 * @param name snapshot name, for creates and deletes; null otherwise
 */
record Op(Kind kind, long offset, long length, long dataSeed, String name) {

  /** The operations a script can hold. */
  enum Kind {
    WRITE('W'),
    FLUSH('F'),
    CREATE('C'),
    DELETE('D'),
    TRIM('T'),
    ZERO('Z');

    /** The letter that starts the operation's line. */
    final char letter;

    Kind(char letter) {
      this.letter = letter;
    }
  }

  static Op write(long offset, long length, long dataSeed) {
    return new Op(Kind.WRITE, offset, length, dataSeed, null);
  }

  static Op flush() {
    return new Op(Kind.FLUSH, 0, 0, 0, null);
  }

  static Op create(String name) {
    return new Op(Kind.CREATE, 0, 0, 0, name);
  }

  static Op delete(String name) {
    return new Op(Kind.DELETE, 0, 0, 0, name);
  }

  static Op trim(long offset, long length) {
    return new Op(Kind.TRIM, offset, length, 0, null);
  }

  static Op zero(long offset, long length) {
    return new Op(Kind.ZERO, offset, length, 0, null);
  }

  /** True for operations that change origin bytes (write, trim, write zeroes). */
  boolean touchesOrigin() {
    return kind == Kind.WRITE || kind == Kind.TRIM || kind == Kind.ZERO;
  }

  /** True for operations after which every earlier write is durable (flush, snapshot create). */
  boolean makesDurable() {
    return kind == Kind.FLUSH || kind == Kind.CREATE;
  }

  /** True if this operation changes byte {@code pos} of the origin. */
  boolean covers(long pos) {
    return touchesOrigin() && pos >= offset && pos < offset + length;
  }

  /** The bytes a write with {@code seed} stores: the same on every JVM. */
  static byte[] data(long seed, int length) {
    byte[] b = new byte[length];
    new SplittableRandom(seed).nextBytes(b);
    return b;
  }

  /** The bytes this write stores. */
  byte[] data() {
    return data(dataSeed, Math.toIntExact(length));
  }

  /** Performs this operation on {@code volume}; returns when the volume call returns. */
  void applyTo(Volume volume) throws IOException {
    switch (kind) {
      case WRITE:
        volume.write(offset, ByteBuffer.wrap(data()));
        break;
      case FLUSH:
        volume.flush();
        break;
      case CREATE:
        volume.createSnapshot(name);
        break;
      case DELETE:
        volume.deleteSnapshot(name);
        break;
      case TRIM:
        volume.trim(offset, length);
        break;
      case ZERO:
        volume.writeZeroes(offset, length);
        break;
      default:
        throw new AssertionError(kind);
    }
  }

  String toLine() {
    switch (kind) {
      case WRITE:
        return "W " + offset + " " + length + " " + dataSeed;
      case FLUSH:
        return "F";
      case CREATE:
      case DELETE:
        return kind.letter + " " + name;
      case TRIM:
      case ZERO:
        return kind.letter + " " + offset + " " + length;
      default:
        throw new AssertionError(kind);
    }
  }

  static Op parse(String line) {
    String[] f = line.trim().split(" ");
    switch (f[0]) {
      case "W":
        return write(Long.parseLong(f[1]), Long.parseLong(f[2]), Long.parseLong(f[3]));
      case "F":
        return flush();
      case "C":
        return create(f[1]);
      case "D":
        return delete(f[1]);
      case "T":
        return trim(Long.parseLong(f[1]), Long.parseLong(f[2]));
      case "Z":
        return zero(Long.parseLong(f[1]), Long.parseLong(f[2]));
      default:
        throw new IllegalArgumentException("not an operation line: '" + line + "'");
    }
  }

  static void writeAll(Path file, List<Op> ops) throws IOException {
    StringBuilder sb = new StringBuilder();
    for (Op op : ops) {
      sb.append(op.toLine()).append('\n');
    }
    Files.writeString(file, sb, StandardCharsets.US_ASCII);
  }

  static List<Op> readAll(Path file) throws IOException {
    List<Op> ops = new ArrayList<>();
    for (String line : Files.readAllLines(file, StandardCharsets.US_ASCII)) {
      if (!line.isBlank()) {
        ops.add(parse(line));
      }
    }
    return ops;
  }

  @Override
  public String toString() {
    return toLine();
  }
}
