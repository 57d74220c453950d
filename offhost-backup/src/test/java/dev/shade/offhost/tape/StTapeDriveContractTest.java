package dev.shade.offhost.tape;

import java.io.IOException;

/** The {@link TapeDrive} contract on {@link StTapeDrive} over the scripted st driver. */
class StTapeDriveContractTest extends TapeDriveContractTest {
  @Override
  TapeDrive newDrive() throws IOException {
    return new StTapeDrive(new FakeStDevice(CAPACITY - ZONE, CAPACITY), false, BLOCK, TRAILER);
  }
}
