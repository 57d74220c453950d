package dev.shade.cli;

import dev.shade.provider.BlockSource;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Volumes and data for the command tests, read back through the provider's own API. */
final class TestVolumes {
  private TestVolumes() {}

  /**
   * Creates a volume of {@code size} with 4 KiB blocks through the command, its diff area as
   * large as the volume so that no test loses a snapshot for space.
   */
  static Path create(Path dir, String size) {
    Cli.run("volume", "create", dir, "--size", size, "--block-size", "4K", "--diff-max", size).ok();
    return dir;
  }

  /** Bytes that differ with the seed and are never all zeros in a page. */
  static byte[] random(long seed, int length) {
    byte[] b = new byte[length];
    new Random(seed).nextBytes(b);
    for (int i = 0; i < length; i += 512) {
      b[i] = 1;
    }
    return b;
  }

  static Path file(Path dir, String name, byte[] data) throws IOException {
    return Files.write(dir.resolve(name), data);
  }

  /** The volume's current contents. */
  static byte[] image(Path dir) throws IOException {
    try (Volume v = Volume.open(dir)) {
      return readAll(v);
    }
  }

  /** The contents of snapshot {@code name}. */
  static byte[] snapshotImage(Path dir, String name) throws IOException {
    try (Volume v = Volume.open(dir); BlockSource s = v.openSnapshot(name)) {
      return readAll(s);
    }
  }

  /** {@code data} at {@code offset} in an otherwise zero image of {@code size} bytes. */
  static byte[] placed(byte[] data, int offset, int size) {
    byte[] image = new byte[size];
    System.arraycopy(data, 0, image, offset, data.length);
    return image;
  }

  private static byte[] readAll(BlockSource source) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(Math.toIntExact(source.size()));
    source.read(0, buf);
    return buf.array();
  }

  /** Everything a command could change on a volume: its snapshots, their contents and the origin. */
  record State(List<SnapshotInfo> snapshots, Map<String, String> snapshotHashes, String originHash, long diffUsed) {}

  static State state(Path dir) throws IOException {
    try (Volume v = Volume.open(dir)) {
      Map<String, String> hashes = new LinkedHashMap<>();
      for (SnapshotInfo s : v.snapshots()) {
        try (BlockSource source = v.openSnapshot(s.name())) {
          hashes.put(s.name(), sha256(readAll(source)));
        }
      }
      return new State(v.snapshots(), hashes, sha256(readAll(v)), v.diffUsedBytes());
    }
  }

  static String sha256(byte[] data) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }
}
