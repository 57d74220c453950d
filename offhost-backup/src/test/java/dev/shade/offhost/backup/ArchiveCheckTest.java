package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.offhost.tape.LibraryConfig;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reading a job's archive back from its cartridge: a good one counts every chunk, a damaged one is named. */
class ArchiveCheckTest {
  private static final int CHUNK = 64 * 1024;
  @TempDir Path tmp;

  @Test
  void check_goodArchive_readsEveryChunk_damagedOne_namesCartridgeAndFile() throws IOException {
    byte[] image = new byte[1024 * 1024];
    new Random(3).nextBytes(image);
    Arrays.fill(image, 4 * CHUNK, 6 * CHUNK, (byte) 0);
    Map<Long, byte[]> host = new HashMap<>();
    host.put(1L, image);
    Path dir = tmp.resolve("vtl");
    long jobId;
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(dir, LibraryConfig.of(2, 64L << 20));
        Catalog cat = Catalog.open(lib.directory())) {
      BackupService.Result r = BackupService.run(lib, cat, new FakeSource("s1", 1, image, host),
          new BackupService.Request("nightly", "full", CHUNK, null), BackupProgress.NONE, n -> { });
      jobId = r.jobId();
      ArchiveCheck.Result ok = ArchiveCheck.check(lib, cat, jobId);
      assertEquals(14, ok.chunks(), "16 chunks less 2 zero ones");
      assertEquals(14L * CHUNK, ok.bytes());
      assertEquals("SHD001", ok.cartridge());
      assertEquals(1, ok.fileNumber());
      BackupException none = assertThrows(BackupException.class, () -> ArchiveCheck.check(lib, cat, 99));
      assertTrue(none.getMessage().contains("no job 99"), none.getMessage());
    }
    Path cart = dir.resolve("slot-0001.tape");
    byte[] tape = Files.readAllBytes(cart);
    byte[] needle = Arrays.copyOfRange(image, 9 * CHUNK + 1000, 9 * CHUNK + 1064);
    int at = -1;
    for (int i = 0; i + needle.length <= tape.length && at < 0; i++) {
      if (Arrays.equals(tape, i, i + needle.length, needle, 0, needle.length)) {
        at = i;
      }
    }
    assertTrue(at > 0, "chunk 9's bytes are on the cartridge");
    tape[at + 5] ^= 0x01;
    Files.write(cart, tape);
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(dir);
        Catalog cat = Catalog.open(lib.directory())) {
      BackupException e = assertThrows(BackupException.class, () -> ArchiveCheck.check(lib, cat, jobId));
      assertTrue(e.getMessage().contains("cartridge SHD001, tape file 1") && e.getMessage().contains("reading back"),
          e.getMessage());
    }
  }
}
