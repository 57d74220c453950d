package dev.shade.offhost.tape;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.OptionalLong;

/**
 * One tape drive with a cartridge loaded, modelled on the Linux {@code st} driver in variable
 * block mode: a tape is a sequence of records (one per {@link #write}, at most
 * {@link #blockSize()} bytes each) and filemarks; a <em>tape file</em> is the records between two
 * filemarks, numbered from 0 at the beginning of the tape; the end of data is where writing
 * stopped. Both back-ends, the {@link VirtualTapeLibrary virtual library} and real {@code st}
 * devices ({@link #openDevice}), follow every rule below, so code written against this contract
 * runs the same on both.
 *
 * <h2>Writing and the end of the medium</h2>
 * Writing at any position other than the end of data makes everything after that position
 * unreadable, as on a real tape: the new record or filemark becomes the new end of data.
 * Near the end of the cartridge the drive passes an <em>early-warning</em> mark; the rules are
 * those of Documentation/scsi/st.rst, "EOM Behaviour When Writing":
 * <ol>
 *   <li>The write that reaches the early-warning zone completes normally.
 *   <li>The next {@link #write} throws {@link EarlyWarningException} and writes nothing.
 *   <li>After that, writes succeed again for at least {@link #trailerBytes()} bytes of records
 *       in all (room for a trailer: the end of a tar stream, a continuation note), and any
 *       number of filemarks.
 *   <li>A record that would go beyond that throws {@link EndOfMediumException} and writes
 *       nothing; so does every later record write. Filemarks are still accepted.
 * </ol>
 * Any positioning ({@link #rewind}, {@link #spaceFiles}, {@link #seekEndOfData}, {@link #locate})
 * starts these rules afresh from the new position. As the st driver does, a rewind, a backward
 * space, a locate or {@link #close} right after a record write first writes one filemark, so a
 * file is never left open-ended.
 *
 * <h2>What is left out</h2>
 * Fixed block mode, setmarks, partitions and record spacing: shade's archives need none of
 * them, and leaving them out keeps the two back-ends identical.
 *
 * <p>Not thread-safe: a drive has one position; one thread uses it at a time.
 */
public interface TapeDrive extends Closeable {
  /** The default largest record: 256 KiB, a common tape block for streaming drives. */
  int DEFAULT_BLOCK_SIZE = 256 * 1024;

  /** The largest record this drive writes and the buffer size that reads any of its records. */
  int blockSize();

  /**
   * The bytes of records that are still accepted after the {@link EarlyWarningException}, at
   * least; see the class comment.
   */
  long trailerBytes();

  /**
   * The bytes of records that can still be written at the current position before the
   * early-warning mark, when the drive knows: records of that many bytes in all complete without
   * reaching it, and the record that goes beyond it is the one that reaches it (rule 1 of the
   * class comment). 0 at or past the mark, and once the early warning was reported; empty when
   * the drive cannot tell, as a real {@code st} drive cannot (it reports the mark only when a
   * write meets it). A writer that knows the room can place a boundary right at the end of the
   * cartridge; one that does not must keep whatever follows the warning within
   * {@link #trailerBytes()}.
   */
  default OptionalLong roomBeforeEarlyWarning() throws IOException {
    return OptionalLong.empty();
  }

  /**
   * Writes {@code record}'s remaining bytes (1 to {@link #blockSize()}) as one record at the
   * current position and advances the buffer. Throws {@link EarlyWarningException} or
   * {@link EndOfMediumException} as the class comment says, with nothing written and the buffer
   * unchanged; {@link TapeException} when the cartridge is write-protected or the medium fails.
   */
  void write(ByteBuffer record) throws IOException;

  /** Writes {@code count} filemarks (0 only flushes) and makes everything before them durable. */
  void writeFilemarks(int count) throws IOException;

  /**
   * Reads the record at the current position into {@code dst} and advances past it. Returns
   * its length; 0 at a filemark (now positioned just after it: the start of the next file); -1
   * at the end of data (the position does not move). A record longer than {@code dst.remaining()}
   * throws {@link TapeException} and leaves the position before it, as st does with ENOMEM.
   */
  int read(ByteBuffer dst) throws IOException;

  /** Moves to the beginning of the tape: file 0, block 0. */
  void rewind() throws IOException;

  /**
   * Spaces over {@code count} filemarks, with the st driver's {@code MTFSF}/{@code MTBSF}
   * semantics:
   * <ul>
   *   <li>{@code count > 0}: forward past {@code count} filemarks; positioned just after the
   *       last one, at block 0 of file {@code current + count}. If the end of data comes first,
   *       throws {@link TapeException} positioned at the end of data.
   *   <li>{@code count < 0}: backward over {@code -count} filemarks; positioned just
   *       <em>before</em> the last one crossed, i.e. at the end of file {@code current + count}
   *       (after its last record). To reach the start of the previous file, space back two and
   *       forward one. If the beginning of the tape comes first, throws {@link TapeException}
   *       positioned there.
   *   <li>{@code count == 0}: nothing.
   * </ul>
   */
  void spaceFiles(int count) throws IOException;

  /** Moves to the end of recorded data, ready to append a file ({@code MTEOM}). */
  void seekEndOfData() throws IOException;

  /**
   * Moves to block 0 of tape file {@code fileNumber}: rewind, then space forward that many
   * filemarks, as {@code mt rewind; mt fsf N} does.
   */
  default void seekFile(int fileNumber) throws IOException {
    if (fileNumber < 0) {
      throw new IllegalArgumentException("file number is negative: " + fileNumber);
    }
    rewind();
    spaceFiles(fileNumber);
  }

  /**
   * The logical block number ({@code MTIOCPOS}): records and filemarks from the beginning of
   * the tape, each counting one.
   */
  long position() throws IOException;

  /** Moves to logical block {@code block} ({@code MTSEEK}), as {@link #position()} counts them. */
  void locate(long block) throws IOException;

  /** Where the drive is and what it knows of the cartridge ({@code MTIOCGET}). */
  TapeStatus status() throws IOException;

  /** Flushes and releases the drive (writing a filemark first after a record write). */
  @Override
  void close() throws IOException;

  /**
   * Opens the Linux tape device {@code device} (use the no-rewind one, {@code /dev/nstN}) in
   * variable block mode with the default block size and a trailer allowance of 16 MiB.
   */
  static TapeDrive openDevice(Path device) throws IOException {
    return StTapeDrive.open(device, false, DEFAULT_BLOCK_SIZE, StTapeDrive.DEFAULT_TRAILER_BYTES);
  }

  /** {@link #openDevice(Path)} opened read-only: every write fails as on a write-protected cartridge. */
  static TapeDrive openDeviceReadOnly(Path device) throws IOException {
    return StTapeDrive.open(device, true, DEFAULT_BLOCK_SIZE, StTapeDrive.DEFAULT_TRAILER_BYTES);
  }
}
