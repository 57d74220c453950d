/**
 * Tape back-ends: the {@link dev.shade.offhost.tape.TapeDrive} contract (records, filemarks,
 * positioning, and st's early-warning rules), the file-backed
 * {@link dev.shade.offhost.tape.VirtualTapeLibrary}, real Linux {@code st} drives
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
 * </table>
 * Within a process nothing is locked: a library, its drives and a st drive are used by one thread
 * at a time (each class says so).
 *
 * <p>docs/tapes.md describes the cartridge format and the rules.
 */
package dev.shade.offhost.tape;
