package dev.shade.offhost.tape;

import dev.shade.nativeio.Errno;
import dev.shade.nativeio.ErrnoException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A tape drive without a changer and a shelf of cartridges, for tests of the one-drive library:
 * each cartridge is a list of records and filemarks that outlives the devices opened over it
 * ({@link FakeStDevice}); a test, or a scripted operator, puts one into the drive by name. An
 * ejected cartridge (MTOFFL) is out of the drive once the device is closed.
 *
 * <p>Not thread-safe.
 */
public final class FakeDriveBay {
  /** The cartridges by the name written on their case (not their label). */
  private final Map<String, List<byte[]>> shelf = new LinkedHashMap<>();
  /** Record bytes after which the early warning is given. */
  private final long earlyWarningAt;
  /** Record bytes a cartridge holds. */
  private final long physicalEnd;
  /** The cartridge in the drive, or null. */
  private String inDrive;
  /** The device open now, or the last one. */
  private FakeStDevice device;
  /** Cartridges whose write-protect tab is set: st opens them for reading only (EROFS otherwise). */
  private final java.util.Set<String> writeProtected = new java.util.HashSet<>();
  /** Every device opened, in order. */
  private final List<FakeStDevice> opened = new ArrayList<>();

  public FakeDriveBay(long earlyWarningAt, long physicalEnd) {
    this.earlyWarningAt = earlyWarningAt;
    this.physicalEnd = physicalEnd;
  }

  /** Adds a blank cartridge named {@code name} to the shelf. */
  public FakeDriveBay blank(String name) {
    shelf.put(name, new ArrayList<>());
    return this;
  }

  /** Puts cartridge {@code name} into the drive (taking out the one there). */
  public void insert(String name) {
    if (!shelf.containsKey(name)) {
      throw new IllegalArgumentException("no cartridge " + name + " on the shelf: " + shelf.keySet());
    }
    if (device != null && !device.closed) {
      throw new IllegalStateException("the drive is open; the library must close it before a change");
    }
    settle();
    inDrive = name;
  }

  /** Sets the write-protect tab of cartridge {@code name}. */
  public void writeProtect(String name) {
    writeProtected.add(name);
  }

  /** Takes the cartridge out of the drive. */
  public void takeOut() {
    inDrive = null;
  }

  /** The cartridge in the drive, or null. */
  public String inDrive() {
    settle();
    return inDrive;
  }

  /** Records and filemarks on cartridge {@code name}: a record's bytes, or null for a filemark. */
  public List<byte[]> frames(String name) {
    return shelf.get(name);
  }

  /** How many times the device was opened. */
  public int opens() {
    return opened.size();
  }

  /** Every call of every device, in order. */
  public List<String> calls() {
    List<String> all = new ArrayList<>();
    opened.forEach(d -> all.addAll(d.calls));
    return all;
  }

  private void settle() {
    if (device != null && device.closed && device.ejected) {
      inDrive = null;
      device.ejected = false;
    }
  }

  /** Opens the one-drive library over this drive, with its state in {@code stateFile}. */
  public TapeLibrary open(Path stateFile, CartridgeOperator operator, int blockSize, long trailerBytes)
      throws IOException {
    return DriveLibrary.open(Path.of("/dev/fake-nst0"), readOnly -> {
      settle();
      if (device != null && !device.closed) {
        throw ErrnoException.of("open", "/dev/fake-nst0", Errno.EBUSY, null);
      }
      if (inDrive == null) {
        throw ErrnoException.of("open", "/dev/fake-nst0", 123 /* ENOMEDIUM */, null);
      }
      if (!readOnly && writeProtected.contains(inDrive)) {
        throw ErrnoException.of("open", "/dev/fake-nst0", Errno.EROFS, null);
      }
      device = new FakeStDevice(shelf.get(inDrive), earlyWarningAt, physicalEnd);
      device.writeProtected = writeProtected.contains(inDrive);
      opened.add(device);
      return device;
    }, stateFile, operator, blockSize, trailerBytes);
  }
}
