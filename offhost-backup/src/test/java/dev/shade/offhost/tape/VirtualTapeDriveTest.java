package dev.shade.offhost.tape;

import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.io.TempDir;

/** The {@link TapeDrive} contract on a drive of the virtual library. */
class VirtualTapeDriveTest extends TapeDriveContractTest {
  @TempDir Path dir;
  private VirtualTapeLibrary library;

  @Override
  TapeDrive newDrive() throws IOException {
    library = VirtualTapeLibrary.create(dir.resolve("vtl"), new LibraryConfig(1, 1, CAPACITY, ZONE, BLOCK));
    return library.load(1);
  }

  @AfterEach
  void closeLibrary() throws IOException {
    library.close();
  }
}
