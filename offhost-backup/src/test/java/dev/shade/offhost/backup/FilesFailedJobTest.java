package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.offhost.tape.LibraryConfig;
import dev.shade.offhost.tape.TapeFileInfo;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import dev.shade.testing.Tools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A files backup that fails writes its job's record on tape, as an image backup does, so a rebuilt catalog has it. */
class FilesFailedJobTest {
  @TempDir Path tmp;

  @Test
  void filesBackupOfAnExportThatIsNotThere_failsRecordedOnTape_andTheRebuiltCatalogHasTheFailure() throws Exception {
    Tools.require("nbdfuse", "nbdfuse");
    SnapshotIdentity id = new SnapshotIdentity("db", "0f0e-uuid", "s1", 1, Instant.parse("2026-12-01T02:00:00Z"),
        1 << 20);
    Path dir = tmp.resolve("vtl");
    String nowhere = "nbd+unix:///?socket=" + tmp.resolve("nobody-listens.sock");
    Catalog.JobRecord failed;
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.create(dir, LibraryConfig.of(2, 64L << 20));
        Catalog cat = Catalog.open(dir)) {
      IOException e = assertThrows(IOException.class, () -> FilesBackupService.run(lib, cat, id, nowhere,
          new FilesBackupService.Request("nightly", null), BackupProgress.NONE, n -> { }));
      failed = cat.jobs().get(0);
      assertEquals(Catalog.FAILED, failed.outcome());
      assertEquals(Catalog.FORMAT_FILES, failed.format());
      assertEquals(e.getMessage(), failed.message());
      assertNull(failed.archive());
      assertEquals(new Catalog.RecordLocation("SHD001", 1), cat.recordLocation(failed.id()).orElseThrow());
      assertEquals(List.of("label", "job"), lib.cartridgeInfo(1).files().stream().map(TapeFileInfo::kind).toList());
    }
    Files.delete(dir.resolve(Catalog.FILE));
    try (VirtualTapeLibrary lib = VirtualTapeLibrary.open(dir); Catalog cat = Catalog.open(dir)) {
      CatalogRebuild.rebuild(lib, cat, BackupProgress.NONE, n -> { });
      assertEquals(List.of(failed), cat.jobs(), "the failure, its message and times, from the tape alone");
    }
  }
}
