package dev.shade.offhost.tape;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * Cartridges and the drives that read and write them, as the backup, restore, verify, drill and
 * rebuild services use them: a {@link VirtualTapeLibrary} (cartridge files in slots, any number of
 * drives) or one real drive whose cartridges an operator changes ({@link #openDevice}).
 *
 * <p>Every cartridge has a <em>slot</em> number, from 1, that names it within the library for as
 * long as the library is open: the slot of a virtual library, the place in the list of cartridges
 * a one-drive library has seen. A cartridge's label is its name everywhere else (catalog, tapes).
 * Drives are numbered from 0.
 *
 * <p>What every implementation does:
 * <ul>
 *   <li>{@link #load} brings a cartridge into a drive (a changer, or an operator asked to) and
 *       hands back the drive at the beginning of the tape; {@link #unload} takes it out. A
 *       cartridge that cannot be brought in fails with a {@link TapeException} naming it.
 *   <li>{@link #cartridgeInfo} and {@link #list} tell what is on each cartridge (its label, its
 *       tape files with their sizes and whether a filemark ends them) without moving it.
 *   <li>{@link #writeLabel} erases a cartridge and writes its label as tape file 0; a label
 *       another cartridge of the library has is refused.
 * </ul>
 * Left out: import/export of cartridges and barcodes. The services name cartridges by label and
 * ask for them; how they get into the library is the operator's business.
 *
 * <p>Not thread-safe: one thread uses a library and its drives at a time.
 */
public interface TapeLibrary extends Closeable {
  /**
   * The path that names this library: the directory of a virtual library, the device of a
   * one-drive library. The catalog records it as the library of a job's process
   * ({@code JobOwner}), so the same library must give the same path every time.
   */
  Path directory();

  /** The largest record the drives write: the block size of archives written here. */
  int blockSize();

  /** The highest slot number: {@link #cartridgeInfo} answers for 1 to this. */
  int slots();

  /** Every cartridge, by slot. */
  List<CartridgeInfo> list() throws IOException;

  /** The cartridge labelled {@code label}, if the library has it. */
  Optional<CartridgeInfo> find(String label) throws IOException;

  /** The cartridge of {@code slot} and what is on it. */
  CartridgeInfo cartridgeInfo(int slot) throws IOException;

  /** The label of the cartridge in {@code slot}, if it has one. */
  Optional<TapeLabel> label(int slot) throws IOException;

  /**
   * Labels the cartridge of {@code slot} {@code label} in {@code pool}, with the next sequence
   * number of that pool, and returns the label. The tape is erased: the label becomes file 0 and
   * the end of data. A labelled cartridge is relabelled only with {@code force}; a label another
   * cartridge has is refused.
   */
  TapeLabel writeLabel(int slot, String label, String pool, boolean force) throws IOException;

  /** The slot whose cartridge is in {@code drive}, if any. */
  OptionalInt loadedSlot(int drive);

  /** The drive that holds the cartridge of {@code slot}, or -1. */
  int driveOf(int slot);

  /**
   * Brings the cartridge of {@code slot} into {@code drive} and returns the drive, at the
   * beginning of the tape. Loading the cartridge that is already there returns the drive again,
   * rewound.
   */
  TapeDrive load(int drive, int slot) throws IOException;

  /** The drive {@code drive}, holding its cartridge; fails if the drive is empty. */
  TapeDrive drive(int drive) throws IOException;

  /** Takes the cartridge out of {@code drive} (closing the drive's handle first). */
  void unload(int drive) throws IOException;

  /**
   * A read-only drive on the cartridge of {@code slot}, at the beginning of the tape, for reading
   * tape files out and for scans. A virtual library reads the cartridge where it is; a one-drive
   * library brings it into its drive first.
   */
  TapeDrive openForReading(int slot) throws IOException;

  /**
   * The cartridge the next archive of {@code pool} should go to, when this library has its own
   * rule for that; empty to let the caller choose from {@link #list()} (the pool's newest
   * cartridge short of its early warning, else a blank one). A library whose cartridges an
   * operator changes by hand prefers the one already in its drive.
   */
  default OptionalInt choose(String pool) throws IOException {
    return OptionalInt.empty();
  }

  /**
   * Opens one real tape drive, {@code device} (its no-rewind node, {@code /dev/nstN}), as a
   * library of the cartridges it has seen, remembered in {@code stateFile}; {@code operator} is
   * asked to change cartridges.
   */
  static TapeLibrary openDevice(Path device, Path stateFile, CartridgeOperator operator) throws IOException {
    return DriveLibrary.open(device, stateFile, operator);
  }
}
