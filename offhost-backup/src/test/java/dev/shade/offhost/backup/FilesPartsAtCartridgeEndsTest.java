package dev.shade.offhost.backup;

import static dev.shade.testing.live.TreeFixture.sh;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.offhost.files.FilesArchiveWriter;
import dev.shade.offhost.files.FilesExtractor;
import dev.shade.offhost.files.FilesManifest;
import dev.shade.offhost.tape.CartridgeInfo;
import dev.shade.offhost.tape.LibraryConfig;
import dev.shade.offhost.tape.TapeDrive;
import dev.shade.offhost.tape.TapeFileInfo;
import dev.shade.offhost.tape.TapeInputStream;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import dev.shade.testing.Tools;
import dev.shade.testing.live.TreeFixture;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Where a files archive splits a file, on the virtual library (whose drive tells its room before
 * the early warning) and on a drive that does not tell: through {@link TapePieces} into real
 * cartridge files, read back from tape, listed and extracted with GNU tar, restored and verified
 * by {@link FilesExtractor}.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class FilesPartsAtCartridgeEndsTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  /** 256 MiB cartridges, 32 MiB early-warning zone, 256 KiB records: a part is 30.75 MiB when the room is unknown. */
  private static final LibraryConfig LARGE = LibraryConfig.of(2, 256L << 20);
  /** 8 MiB cartridges, 1 MiB early-warning zone, 64 KiB records: about 7 MiB before each warning, 512 KiB parts. */
  private static final LibraryConfig SMALL = new LibraryConfig(8, 1, 8L << 20, 1L << 20, 64 * 1024);

  @TempDir Path tmp;

  /** What one archive came to: its pieces as tar files, and the writer's result. */
  private record Written(FilesArchiveWriter.Result result, List<Path> tars, long partBytes, List<String> notes) {}

  @Test
  void filesLargerThanAPart_onACartridgeWithRoom_areOneMemberEach_gnuTarExtractsThemWhole() throws Exception {
    Tools.require("tar", "tar", "sha256sum", "coreutils");
    Path src = Files.createDirectories(tmp.resolve("src/db"));
    writeRandom(src.resolve("big.bin"), 1, 0, 100 << 20); // 100 MiB of data
    try (FileChannel ch = FileChannel.open(src.resolve("holes.img"), StandardOpenOption.CREATE_NEW,
        StandardOpenOption.WRITE)) {
      // 40 MiB of data in a 100 MiB file: data, a hole, data, a hole at the end
      ch.write(ByteBuffer.wrap(TreeFixture.random(2, 20 << 20)), 0);
      ch.write(ByteBuffer.wrap(TreeFixture.random(3, 20 << 20)), 50L << 20);
      ch.truncate(100L << 20);
    }
    Written w = archive(LARGE, tmp.resolve("src"), false);
    assertTrue(w.partBytes() < 40L << 20, "both files have more data than a fixed part: " + w.partBytes());
    assertEquals(1, w.tars().size(), "one piece");
    List<String> names = sh("tar -t -f '" + w.tars().get(0) + "'").lines().toList();
    assertFalse(names.stream().anyMatch(n -> n.startsWith(FilesArchiveWriter.PARTS)), names::toString);
    assertEquals(1, names.stream().filter(n -> n.equals("files/db/big.bin")).count(), names::toString);
    for (JsonNode c : manifest(w).get("checksums")) {
      assertTrue(c.path("parts").isMissingNode(), c::toString);
    }
    // GNU tar alone gives each file whole: sha256sum's of the original, the hole still a hole
    Path gnu = Files.createDirectories(tmp.resolve("gnu"));
    sh("cd '" + gnu + "' && tar -x -f '" + w.tars().get(0) + "' files/db/big.bin files/db/holes.img");
    for (String f : List.of("big.bin", "holes.img")) {
      String want = sh("sha256sum < '" + src.resolve(f) + "'");
      assertEquals(want, sh("sha256sum < '" + gnu.resolve("files/db/" + f) + "'"), f);
    }
    assertTrue(TreeFixture.allocated(gnu.resolve("files/db/holes.img")) < 48L << 20, "extracted sparse");
    System.out.println("one member each: 100 MiB and 100 MiB with 40 MiB of data in one piece of "
        + w.result().archiveBytes() + " bytes; a fixed part would be " + w.partBytes() + " bytes");
  }

  @Test
  void roomUnknown_fileLargerThanAPart_isInFixedParts_gnuTarGivesTheFirstPart_ddPutsTheRestBack() throws Exception {
    Tools.require("tar", "tar");
    Path src = Files.createDirectories(tmp.resolve("src/db"));
    writeRandom(src.resolve("big.bin"), 4, 0, 40 << 20);
    Written w = archive(LARGE, tmp.resolve("src"), true);
    assertEquals(1, w.tars().size(), "one piece");
    long parts = (40L << 20) / w.partBytes() + 1;
    List<String> names = sh("tar -t -f '" + w.tars().get(0) + "'").lines().toList();
    assertEquals(parts - 1, names.stream().filter(n -> n.startsWith("parts/db/big.bin/")).count(), names::toString);
    assertEquals(parts, manifest(w).get("checksums").get(0).get("parts").asLong());
    Path gnu = Files.createDirectories(tmp.resolve("gnu"));
    sh("cd '" + gnu + "' && tar -x -f '" + w.tars().get(0) + "'");
    byte[] want = Files.readAllBytes(src.resolve("big.bin"));
    byte[] first = Files.readAllBytes(gnu.resolve("files/db/big.bin"));
    assertEquals(want.length, first.length, "the file's full size");
    assertArrayEquals(java.util.Arrays.copyOf(want, (int) w.partBytes()),
        java.util.Arrays.copyOf(first, (int) w.partBytes()), "the first part's data");
    assertEquals(0, first[first.length - 1], "the later parts read as zeros");
    sh("cd '" + gnu + "' && find parts -type f | sort | while read -r p; do f=\"files/${p#parts/}\"; f=\"${f%/*}\";"
        + " off=\"${p##*/}\"; dd if=\"$p\" of=\"$f\" bs=1M seek=$((16#$off)) oflag=seek_bytes conv=notrunc,sparse"
        + " status=none; done");
    assertArrayEquals(want, Files.readAllBytes(gnu.resolve("files/db/big.bin")));
  }

  /**
   * Trees whose big file starts at different distances from the first cartridge's early warning
   * ({@code before}: the bytes of the file before it, relative to that room; the archive's first
   * members take about 5 KiB more) and whose data runs {@code past} bytes past the warning if it
   * were one member: within what the trailer takes, just beyond, across two cartridge ends, and
   * starting within a few KiB of the warning (where the first part is a few blocks, or none).
   */
  static Stream<Arguments> crossings() {
    long mib = 1L << 20;
    List<Arguments> cases = new ArrayList<>(List.of(
        Arguments.of("fits in the trailer", -3 * mib, 256 * 1024, false, 1),
        Arguments.of("just past what the trailer takes", -3 * mib, 600 * 1024, false, 2),
        Arguments.of("crosses two cartridge ends", -2 * mib, 12 * mib, false, 3),
        Arguments.of("sparse, crosses a cartridge end", -2 * mib, 3 * mib, true, 2)));
    for (long d : new long[] {-4096, -5120, -6144, -6656, -7168, -7680, -8192, -9216, -12288, -20480}) {
      cases.add(Arguments.of("starts about " + (-d - 5120) + " bytes before the warning", d, 2 * mib, false, -1));
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("crossings")
  void fileCrossingCartridgeEnds_hasOnePartPerCartridge_eachPieceEndsAtTheWarning(String what, long before,
      long past, boolean holes, int expectParts) throws Exception {
    Tools.require("tar", "tar");
    long room;
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(tmp.resolve("probe"), SMALL)) {
      TapePieces t = new TapePieces(lib, "nightly", SMALL.blockSize(), n -> {});
      t.mountFirst();
      room = t.roomBeforeEarlyWarning().orElseThrow(); // the first cartridge's, once labelled
    }
    Path root = Files.createDirectories(tmp.resolve("src"));
    long prefix = room + before;
    writeRandom(root.resolve("a-before"), 5, 0, (int) prefix);
    long data = room - prefix + past;
    Path big = root.resolve("b-big");
    if (holes) {
      // data, a 1 MiB hole, data
      writeRandom(big, 6, 0, (int) (data / 2));
      writeRandom(big, 7, data / 2 + (1 << 20), (int) (data - data / 2));
    } else {
      writeRandom(big, 6, 0, (int) data);
    }
    for (int i = 0; i < 20; i++) {
      writeRandom(root.resolve("c-after-" + i), 10 + i, 0, 30_000 + 977 * i);
    }
    Written w = archive(SMALL, root, false);
    System.out.println(what + ": " + w.tars().size() + " pieces " + w.result().pieces() + ", parts of b-big: "
        + partsOf(w, "b-big"));

    List<List<String>> all = new ArrayList<>();
    for (Path t : w.tars()) {
      all.add(sh("tar -t -f '" + t + "'").lines().toList());
    }
    Map<String, Integer> piecesOf = new HashMap<>();
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(tmp.resolve("vtl"))) {
      for (int i = 0; i < all.size(); i++) {
        List<String> names = all.get(i);
        assertEquals(FilesManifest.HEADER_MEMBER, names.get(0));
        boolean last = i == all.size() - 1;
        assertEquals(last ? FilesManifest.MANIFEST_MEMBER : "continued.json", names.get(names.size() - 1));
        Map<String, Integer> here = new HashMap<>();
        for (String n : names) {
          String file = fileOf(n);
          if (file != null) {
            here.merge(file, 1, Integer::sum);
          }
        }
        for (Map.Entry<String, Integer> e : here.entrySet()) {
          assertEquals(1, e.getValue(), "one member of " + e.getKey() + " in piece " + i + ": " + names);
          piecesOf.merge(e.getKey(), 1, Integer::sum);
        }
        // every piece but the last fills its cartridge to the early warning and ends past it, within the trailer
        var p = w.result().pieces().get(i);
        CartridgeInfo c = lib.find(p.cartridge()).orElseThrow();
        long used = 0;
        for (TapeFileInfo f : c.files()) {
          if (f.fileNumber() < p.fileNumber()) {
            used += f.bytes();
          }
        }
        long pieceRoom = SMALL.capacity() - SMALL.earlyWarningZone() - used;
        assertTrue(p.bytes() <= pieceRoom + SMALL.trailerBytes(), "within the trailer: " + p);
        if (!last) {
          assertTrue(p.bytes() > pieceRoom, "piece " + i + " ends past the warning: " + p + ", room " + pieceRoom);
          String cut = fileOf(names.get(names.size() - 2));
          if (cut != null && all.get(i + 1).stream().anyMatch(n -> cut.equals(fileOf(n)))) {
            // a file cut at the warning: past it only the piece's end (continued.json, the tar's end, its last record)
            assertTrue(p.bytes() <= pieceRoom + SMALL.blockSize() + 4096, "cut at the warning: " + p + ", room "
                + pieceRoom);
          }
        }
      }
    }
    // a file has one member per piece it touches, and that many parts in the manifest
    for (JsonNode c : manifest(w).get("checksums")) {
      assertEquals(piecesOf.get(c.get("path").asText()), Math.max(1, c.path("parts").asInt()), c::toString);
    }
    if (expectParts > 0) {
      assertEquals(expectParts, partsOf(w, "b-big"));
    }

    // restored and verified from the pieces
    Path to = tmp.resolve("to");
    FilesExtractor.Result r = FilesExtractor.extract(archive(w.tars()), List.of("*"), to, x -> {});
    assertEquals(22, r.checked(), r::toString);
    try (var walk = Files.walk(root)) {
      for (Path f : walk.filter(Files::isRegularFile).toList()) {
        assertArrayEquals(Files.readAllBytes(f), Files.readAllBytes(to.resolve(root.relativize(f))), f.toString());
      }
    }
    assertEquals(22, FilesExtractor.verify(archive(w.tars())).checked());
  }

  /** The file a member of the tree or a part belongs to (its path in the tree), null for the others and directories. */
  private static String fileOf(String member) {
    if (member.startsWith(FilesArchiveWriter.PARTS)) {
      return member.substring(FilesArchiveWriter.PARTS.length(), member.lastIndexOf('/'));
    }
    if (member.startsWith(FilesManifest.TREE) && !member.endsWith("/")) {
      return member.substring(FilesManifest.TREE.length());
    }
    return null;
  }

  /** Archives {@code root} into a new library at tmp/vtl through {@link TapePieces}, and copies each piece from tape. */
  private Written archive(LibraryConfig config, Path root, boolean hideRoom) throws Exception {
    Path dir = tmp.resolve("vtl");
    List<String> notes = new ArrayList<>();
    FilesArchiveWriter.Result result;
    long partBytes;
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(dir, config)) {
      TapePieces tape = new TapePieces(lib, "nightly", config.blockSize(), notes::add);
      tape.mountFirst();
      partBytes = FilesBackupService.partBytes(tape.trailerBytes(), config.blockSize());
      FilesManifest header = new FilesManifest("db", "0f0e", "s1", 7, Instant.parse("2026-01-02T03:04:05Z"),
          1 << 30, "ext4", config.blockSize(), Instant.now(), null, null, null);
      result = FilesArchiveWriter.write(tape, config.blockSize(), root, header, 1, false, partBytes,
          hideRoom ? FilesArchiveWriter.Room.UNKNOWN : tape::roomBeforeEarlyWarning, (d, t) -> {});
      lib.unload(0);
      List<Path> tars = new ArrayList<>();
      for (var p : result.pieces()) {
        Path t = tmp.resolve("piece-" + p.piece() + ".tar");
        try (TapeDrive d = lib.openForReading(lib.find(p.cartridge()).orElseThrow().slot())) {
          d.seekFile(p.fileNumber());
          try (InputStream in = new TapeInputStream(d)) {
            Files.copy(in, t);
          }
        }
        assertEquals(Files.size(t), p.bytes(), "piece " + p);
        tars.add(t);
      }
      return new Written(result, tars, partBytes, notes);
    }
  }

  private static JsonNode manifest(Written w) throws Exception {
    return JSON.readTree(sh("tar -x -O -f '" + w.tars().get(w.tars().size() - 1) + "' "
        + FilesManifest.MANIFEST_MEMBER));
  }

  /** The parts the manifest gives {@code path} (1 for a file in one member). */
  private static int partsOf(Written w, String path) throws Exception {
    for (JsonNode c : manifest(w).get("checksums")) {
      if (c.get("path").asText().equals(path)) {
        return Math.max(1, c.path("parts").asInt());
      }
    }
    throw new AssertionError(path + " not in the manifest");
  }

  /** Writes {@code n} seeded random bytes into {@code file} at {@code at}, creating it if need be. */
  private static void writeRandom(Path file, long seed, long at, int n) throws IOException {
    Random r = new Random(seed);
    byte[] b = new byte[1 << 20];
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      long pos = at;
      for (int left = n; left > 0; ) {
        int k = Math.min(left, b.length);
        r.nextBytes(b);
        ch.write(ByteBuffer.wrap(b, 0, k), pos);
        pos += k;
        left -= k;
      }
    }
  }

  private static FilesExtractor.Archive archive(List<Path> files) {
    return new FilesExtractor.Archive() {
      private InputStream open;

      @Override
      public int pieces() {
        return files.size();
      }

      @Override
      public InputStream open(int piece) throws IOException {
        if (open != null) {
          open.close();
        }
        open = Files.newInputStream(files.get(piece));
        return open;
      }

      @Override
      public long bytes(int piece) {
        try {
          return Files.size(files.get(piece));
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      }

      @Override
      public String where(int piece) {
        return files.get(piece).getFileName().toString();
      }
    };
  }
}
