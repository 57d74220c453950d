/**
 * Tape back-ends: the {@link dev.shade.offhost.tape.TapeDrive} contract (records, filemarks,
 * positioning, and st's early-warning rules), the {@link dev.shade.offhost.tape.TapeLibrary}
 * contract the services use, with two implementations: the file-backed
 * {@link dev.shade.offhost.tape.VirtualTapeLibrary} and one real Linux {@code st} drive whose
 * cartridges an operator changes ({@link dev.shade.offhost.tape.TapeLibrary#openDevice},
 * {@link dev.shade.offhost.tape.CartridgeOperator}); real drives on their own
 * ({@link dev.shade.offhost.tape.TapeDrive#openDevice}), cartridge labels
 * ({@link dev.shade.offhost.tape.TapeLabel}), and streams that write and read one tape file.
 *
 * <p>Locks:
 * <table>
 *   <caption>Locks of the tape package</caption>
 *   <tr><th>lock</th><th>guards</th><th>order</th></tr>
 *   <tr><td>{@code flock(LOCK_EX)} on {@code DIR/library.lock}</td><td>a whole virtual library:
 *       its properties, cartridge files and drives, against other processes</td><td>the only
 *       one; held from open to close</td></tr>
 *   <tr><td>{@code flock(LOCK_EX)} on {@code STATE.lock} beside a drive's state file</td><td>a
 *       one-drive library: its state file and its drive, against other processes (the st
 *       driver also opens a device only once)</td><td>the only one; held from open to
 *       close</td></tr>
 * </table>
 * Within a process nothing is locked: a library, its drives and a st drive are used by one thread
 * at a time (each class says so).
 *
 * <p>docs/tapes.md describes the cartridge format and the rules.
 */
package dev.shade.offhost.tape;
