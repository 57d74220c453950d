package dev.shade.offhost.files;

import static dev.shade.testing.live.TreeFixture.sh;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.offhost.backup.ImageArchiveWriter.PieceOutput;
import dev.shade.testing.Tools;
import dev.shade.testing.live.TreeFixture;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A files archive written in pieces (a piece output that reports its medium full past a
 * threshold, as a tape past its early warning) with files larger than a part: every piece is a
 * tar that GNU tar lists and extracts, the dd lines of docs/tape-format.md put the parts back,
 * {@link FilesExtractor} restores every file from the pieces, {@link FilesExtractor#verify}
 * passes, and a damaged byte, a missing piece or a piece out of order fails naming the member
 * or the piece.
 */
class FilesArchivePiecesTest {
  /** A piece is reported full after this many bytes. */
  private static final int FULL_AFTER = 1 << 20;
  /** The most data bytes of one member. */
  private static final long PART = 256 * 1024;
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;
  private Path src;
  private List<Path> pieces;
  private FilesArchiveWriter.Result written;

  /** The pieces as files, reported full once past {@link #FULL_AFTER} bytes. */
  private final class FilePieces implements PieceOutput {
    private final List<Path> files = new ArrayList<>();
    private CountingOut out;

    @Override
    public Started begin(int piece) throws IOException {
      Path p = tmp.resolve("piece-" + piece + ".tar");
      files.add(p);
      out = new CountingOut(Files.newOutputStream(p));
      return new Started(out, "C" + piece, 1);
    }

    @Override
    public boolean full() {
      return out.count >= FULL_AFTER;
    }

    @Override
    public void end() throws IOException {
      out.close();
    }
  }

  private static final class CountingOut extends java.io.FilterOutputStream {
    long count;

    CountingOut(OutputStream out) {
      super(out);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      out.write(b, off, len);
      count += len;
    }
  }

  @BeforeEach
  void write() throws Exception {
    src = Files.createDirectories(tmp.resolve("src"));
    Files.createDirectories(src.resolve("db/base"));
    for (int i = 0; i < 40; i++) {
      Files.write(src.resolve("db/base/" + i), TreeFixture.random(i, 20_000 + i * 997));
    }
    Files.write(src.resolve("db/big.bin"), TreeFixture.random(99, 2_500_000)); // in parts, over pieces
    try (FileChannel ch = FileChannel.open(src.resolve("db/holes.img"), StandardOpenOption.CREATE_NEW,
        StandardOpenOption.WRITE)) {
      // data, a hole, data: 600 KiB of data in a 64 MiB file, so in parts with a hole between them
      ch.write(ByteBuffer.wrap(TreeFixture.random(7, 300 * 1024)), 0);
      ch.write(ByteBuffer.wrap(TreeFixture.random(8, 300 * 1024)), 32L << 20);
      ch.truncate(64L << 20);
    }
    Files.writeString(src.resolve("db/empty"), "");
    Files.writeString(src.resolve("zz-last"), "the last file\n");
    FilesManifest header = new FilesManifest("db", "0f0e", "s1", 7, Instant.parse("2026-01-02T03:04:05Z"), 1 << 30,
        "ext4", 10240, Instant.now(), null, null, null);
    FilePieces out = new FilePieces();
    written = FilesArchiveWriter.write(out, 10240, src, header, 3, false, PART, (d, t) -> {});
    pieces = out.files;
  }

  @Test
  void pieces_eachATarThatGnuTarListsAndExtracts_partsPutBackWithDd() throws Exception {
    Tools.require("tar", "tar");
    assertTrue(pieces.size() >= 3, "pieces: " + pieces.size());
    assertEquals(pieces.size(), written.pieces().size());
    Path gnu = Files.createDirectories(tmp.resolve("gnu"));
    for (int i = 0; i < pieces.size(); i++) {
      List<String> names = sh("tar -t -f '" + pieces.get(i) + "'").lines().toList();
      assertEquals(FilesManifest.HEADER_MEMBER, names.get(0), names::toString);
      assertEquals(i == pieces.size() - 1 ? FilesManifest.MANIFEST_MEMBER : "continued.json",
          names.get(names.size() - 1), names::toString);
      assertEquals(i, written.pieces().get(i).piece());
      assertEquals(Files.size(pieces.get(i)), written.pieces().get(i).bytes());
      // each piece alone, as an operator with GNU tar and no shade extracts them in order
      sh("cd '" + gnu + "' && tar -x -f '" + pieces.get(i) + "'");
    }
    // docs/tape-format.md: each parts/PATH/OFFSET goes into files/PATH at OFFSET
    sh("cd '" + gnu + "' && find parts -type f | sort | while read -r p; do f=\"files/${p#parts/}\"; f=\"${f%/*}\";"
        + " off=\"${p##*/}\"; dd if=\"$p\" of=\"$f\" bs=1M seek=$((16#$off)) oflag=seek_bytes conv=notrunc,sparse"
        + " status=none; done");
    for (String f : List.of("db/big.bin", "db/holes.img", "db/base/0", "db/base/39", "zz-last", "db/empty")) {
      assertArrayEquals(Files.readAllBytes(src.resolve(f)), Files.readAllBytes(gnu.resolve("files/" + f)), f);
    }

    JsonNode manifest = JSON.readTree(gnu.resolve(FilesManifest.MANIFEST_MEMBER).toFile());
    assertEquals(pieces.size(), manifest.get("pieces").size());
    JsonNode big = null;
    for (JsonNode c : manifest.get("checksums")) {
      if (c.get("path").asText().equals("db/big.bin")) {
        big = c;
      }
    }
    assertEquals(sha256(Files.readAllBytes(src.resolve("db/big.bin"))), big.get("sha256").asText(), "sha256sum's");
    assertTrue(big.get("parts").asInt() >= 10, big::toString);
    assertEquals(44, manifest.get("checksums").size(), "every regular file");
  }

  @Test
  void extractor_restoresEveryFileFromThePieces_verifyPasses() throws Exception {
    Path to = tmp.resolve("to");
    FilesExtractor.Result r = FilesExtractor.extract(archive(pieces), List.of("*"), to, p -> {});
    assertEquals(44, r.checked(), r::toString);
    assertTrue(r.notes().isEmpty(), r.notes()::toString);
    assertEquals(written.manifestSha256(), r.manifestSha256());
    try (var walk = Files.walk(src)) {
      for (Path p : walk.filter(Files::isRegularFile).toList()) {
        Path got = to.resolve(src.relativize(p));
        assertArrayEquals(Files.readAllBytes(p), Files.readAllBytes(got), p.toString());
        assertEquals(Files.getLastModifiedTime(p), Files.getLastModifiedTime(got), "mtime of " + p);
      }
    }
    assertTrue(TreeFixture.allocated(to.resolve("db/holes.img")) < 8 << 20, "the hole stays a hole");
    // one file in parts alone
    Path one = tmp.resolve("one");
    FilesExtractor.extract(archive(pieces), List.of("db/big.bin"), one, p -> {});
    assertArrayEquals(Files.readAllBytes(src.resolve("db/big.bin")), Files.readAllBytes(one.resolve("db/big.bin")));

    FilesExtractor.Result v = FilesExtractor.verify(archive(pieces));
    assertEquals(44, v.checked());
    assertEquals(written.manifestSha256(), v.manifestSha256());
  }

  @Test
  void damagedByte_failsVerifyAndRestoreNamingTheMember() throws Exception {
    // a byte of db/big.bin's data in a later piece than the one its file starts in
    int starts = -1;
    int damaged = -1;
    byte[] b = null;
    int at = -1;
    for (int i = 0; i < pieces.size() && damaged < 0; i++) {
      byte[] t = Files.readAllBytes(pieces.get(i));
      if (starts < 0 && indexOf(t, "GNU.sparse.name=files/db/big.bin".getBytes()) >= 0) {
        starts = i;
      } else if (starts >= 0 && (at = indexOf(t, "parts/db/big.bin/".getBytes())) >= 0) {
        damaged = i;
        b = t;
      }
    }
    assertTrue(starts >= 0 && damaged > starts, "big.bin starts in piece " + starts + ", a part in " + damaged);
    b[at + 4096] ^= 1; // past the part's headers, inside its data
    Files.write(pieces.get(damaged), b);
    int first = starts;
    FilesExtractor.MemberException e = assertThrows(FilesExtractor.MemberException.class,
        () -> FilesExtractor.verify(archive(pieces)));
    assertEquals("files/db/big.bin", e.member(), e::getMessage);
    assertEquals(first, e.piece(), "named by the piece its file starts in: " + e.getMessage());
    assertTrue(e.getMessage().contains("file db/big.bin") && e.getMessage().contains("damaged"), e::getMessage);
    FilesExtractor.MemberException r = assertThrows(FilesExtractor.MemberException.class,
        () -> FilesExtractor.extract(archive(pieces), List.of("db"), tmp.resolve("r"), x -> {}));
    assertEquals("files/db/big.bin", r.member(), r::getMessage);
  }

  @Test
  void missingPiece_orPieceOutOfOrder_failsNamingThePiece() throws Exception {
    List<Path> short1 = pieces.subList(0, pieces.size() - 1);
    FilesExtractor.MemberException e = assertThrows(FilesExtractor.MemberException.class,
        () -> FilesExtractor.verify(archive(short1)));
    assertTrue(e.getMessage().contains("goes on after its last piece"), e::getMessage);
    List<Path> swapped = new ArrayList<>(pieces);
    swapped.set(1, pieces.get(2));
    swapped.set(2, pieces.get(1));
    e = assertThrows(FilesExtractor.MemberException.class, () -> FilesExtractor.verify(archive(swapped)));
    assertEquals(1, e.piece());
    assertNull(e.member());
    assertTrue(e.getMessage().contains("holds piece 3 of a files archive, not piece 2"), e::getMessage);
  }

  @Test
  void manifestListingAFileNotInTheArchive_orMissingOne_failsVerify() throws Exception {
    Path a = tmp.resolve("a.tar");
    String sha = sha256("hello\n".getBytes());
    writeSmall(a, "[{\"path\":\"a\",\"size\":6,\"data\":6,\"sha256\":\"" + sha + "\"},"
        + "{\"path\":\"b\",\"size\":1,\"data\":1,\"sha256\":\"00\"}]");
    FilesExtractor.MemberException e = assertThrows(FilesExtractor.MemberException.class,
        () -> FilesExtractor.verify(archive(List.of(a))));
    assertEquals("files/b", e.member(), e::getMessage);
    assertTrue(e.getMessage().contains("listed in the manifest but not in the archive"), e::getMessage);

    writeSmall(a, "[]");
    e = assertThrows(FilesExtractor.MemberException.class, () -> FilesExtractor.verify(archive(List.of(a))));
    assertEquals("files/a", e.member(), e::getMessage);
    assertTrue(e.getMessage().contains("not in the manifest's checksums"), e::getMessage);

    writeSmall(a, "[{\"path\":\"a\",\"size\":6,\"data\":6,\"sha256\":\"" + sha + "\"}]");
    assertEquals(1, FilesExtractor.verify(archive(List.of(a))).checked());
  }

  /** A one-piece archive of files/a ("hello\n") whose manifest lists {@code checksums}. */
  private static void writeSmall(Path to, String checksums) throws Exception {
    FilesManifest h = new FilesManifest("db", "0f0e", "s1", 7, Instant.EPOCH, 0, "ext4", 512, Instant.EPOCH, null,
        null, null);
    com.fasterxml.jackson.databind.node.ObjectNode m = h.complete(Instant.EPOCH,
        new FilesManifest.Counts(2, 1, 1, 0, 0, 0, 0, 0, 6, 6)).toJson();
    m.set("checksums", JSON.readTree(checksums));
    try (var t = new org.apache.commons.compress.archivers.tar.TarArchiveOutputStream(Files.newOutputStream(to),
        "UTF-8")) {
      put(t, FilesManifest.HEADER_MEMBER, h.bytes());
      put(t, "files/a", "hello\n".getBytes());
      put(t, FilesManifest.MANIFEST_MEMBER, JSON.writeValueAsBytes(m));
    }
  }

  private static void put(org.apache.commons.compress.archivers.tar.TarArchiveOutputStream t, String name,
      byte[] body) throws IOException {
    var e = new org.apache.commons.compress.archivers.tar.TarArchiveEntry(name);
    e.setSize(body.length);
    t.putArchiveEntry(e);
    t.write(body);
    t.closeArchiveEntry();
  }

  private static int indexOf(byte[] b, byte[] what) {
    outer:
    for (int i = 0; i + what.length <= b.length; i++) {
      for (int j = 0; j < what.length; j++) {
        if (b[i + j] != what[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
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

  private static String sha256(byte[] b) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
  }
}
