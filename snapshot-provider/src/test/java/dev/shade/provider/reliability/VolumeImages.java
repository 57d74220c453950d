package dev.shade.provider.reliability;

import dev.shade.provider.BlockSource;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.function.Function;
import java.util.zip.CRC32C;

/** Reads whole origins and snapshots into byte arrays and compares them with a model. */
final class VolumeImages {
  private VolumeImages() {}

  /** Every byte of {@code source}, read in 1 MiB requests. */
  static byte[] readAll(BlockSource source) throws IOException {
    byte[] all = new byte[Math.toIntExact(source.size())];
    int chunk = 1 << 20;
    for (int pos = 0; pos < all.length; pos += chunk) {
      source.read(pos, ByteBuffer.wrap(all, pos, Math.min(chunk, all.length - pos)));
    }
    return all;
  }

  /** Every byte of snapshot {@code name} of {@code volume}. */
  static byte[] readSnapshot(Volume volume, String name) throws IOException {
    try (BlockSource s = volume.openSnapshot(name)) {
      return readAll(s);
    }
  }

  static List<String> names(List<SnapshotInfo> infos) {
    List<String> names = new ArrayList<>(infos.size());
    for (SnapshotInfo i : infos) {
      names.add(i.name());
    }
    return names;
  }

  /** The first offset where the arrays differ, or -1; a length difference counts at the end. */
  static long firstDifference(byte[] expected, byte[] actual) {
    return Arrays.mismatch(expected, actual);
  }

  /** The first offset outside {@code skip} where the arrays differ, or -1. Same lengths. */
  static long firstDifference(byte[] expected, byte[] actual, BitSet skip) {
    int n = Math.min(expected.length, actual.length);
    int pos = 0;
    while (pos < n) {
      int m = Arrays.mismatch(expected, pos, n, actual, pos, n);
      if (m < 0) {
        break;
      }
      int at = pos + m;
      if (!skip.get(at)) {
        return at;
      }
      pos = skip.nextClearBit(at);
    }
    return expected.length == actual.length ? -1 : n;
  }

  /** A short description of the difference at {@code at}, for failure messages. */
  static String describe(byte[] expected, byte[] actual, long at) {
    if (at < 0) {
      return "no difference";
    }
    int i = (int) at;
    if (i >= expected.length || i >= actual.length) {
      return "length " + actual.length + " where " + expected.length + " was expected";
    }
    int end = i;
    while (end < expected.length && end < actual.length && expected[end] != actual[end] && end - i < 1 << 20) {
      end++;
    }
    return String.format(
        "first difference at offset %d (expected 0x%02x, got 0x%02x; %d differing bytes in a row)",
        at, expected[i] & 0xff, actual[i] & 0xff, end - i);
  }

  /** CRC32C of the origin, then of each snapshot's name and bytes, in the given order. */
  static long digest(byte[] origin, List<String> names, Function<String, byte[]> contents) {
    CRC32C crc = new CRC32C();
    crc.update(origin);
    for (String name : names) {
      crc.update(name.getBytes(StandardCharsets.UTF_8));
      crc.update(contents.apply(name));
    }
    return crc.getValue();
  }

  /** {@link #digest} of what {@code volume} holds now. */
  static long digest(Volume volume) throws IOException {
    CRC32C crc = new CRC32C();
    crc.update(readAll(volume));
    for (SnapshotInfo info : volume.snapshots()) {
      crc.update(info.name().getBytes(StandardCharsets.UTF_8));
      crc.update(readSnapshot(volume, info.name()));
    }
    return crc.getValue();
  }
}
