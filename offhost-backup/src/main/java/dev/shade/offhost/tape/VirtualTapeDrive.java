package dev.shade.offhost.tape;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.OptionalLong;

/**
 * A drive of the virtual tape library with a {@link CartridgeFile} loaded.
 *
 * <p>Not thread-safe: one thread at a time, as for every {@link TapeDrive}.
 */
final class VirtualTapeDrive implements TapeDrive {
  /*
   * The position is a frame number (0 = beginning of tape, frames() = end of data), which is
   * also the logical block number of position()/locate(). The file and block numbers of the
   * status are counted from the index, so unlike st they are always known.
   *
   * Early warning: the zone is the last earlyWarningZone bytes of the capacity. A write that
   * ends inside it completes and arms the rules; the zone is at least blockSize + trailerBytes
   * long, so a crossing write (at most blockSize) leaves the whole trailer allowance before the
   * capacity, and the capacity itself is never exceeded.
   */

  /** The loaded cartridge; owned by the library, not closed here. */
  private final CartridgeFile cartridge;
  /** What this drive is, for messages ("drive 0 of /srv/vtl, slot 3"). */
  private final String name;
  /** Largest record. */
  private final int blockSize;
  /** Writes fail as on a write-protected cartridge. */
  private final boolean readOnly;
  /** The shared early-warning rules. */
  private final EndOfMediumRules rules;
  /** Called on close, once. */
  private final Runnable onClose;
  /** Current frame number. */
  private int pos;
  /** The last operation wrote a record (a rewind, backward space, locate or close then writes a filemark). */
  private boolean lastWasRecordWrite;
  /** Set by close. */
  private boolean closed;

  VirtualTapeDrive(CartridgeFile cartridge, String name, int blockSize, boolean readOnly, Runnable onClose) {
    long trailer = cartridge.earlyWarningZone() - blockSize;
    if (trailer <= 0) {
      throw new IllegalArgumentException("the early-warning zone of " + cartridge.earlyWarningZone()
          + " bytes leaves no trailer after a record of " + blockSize + " bytes: " + cartridge);
    }
    this.cartridge = cartridge;
    this.name = name;
    this.blockSize = blockSize;
    this.readOnly = readOnly;
    this.rules = new EndOfMediumRules(trailer);
    this.onClose = onClose;
  }

  @Override
  public int blockSize() {
    return blockSize;
  }

  @Override
  public long trailerBytes() {
    return rules.trailerBytes();
  }

  /** Known exactly: the capacity less the early-warning zone less the record bytes before the position. */
  @Override
  public OptionalLong roomBeforeEarlyWarning() throws IOException {
    open();
    if (rules.state() != EndOfMediumRules.State.NORMAL) {
      return OptionalLong.of(0); // the warning is pending or was reported
    }
    // a write reaches the zone when it ends past capacity - zone (write() below), so this many bytes do not
    long room = cartridge.capacity() - cartridge.earlyWarningZone() - cartridge.bytesBefore(pos);
    return OptionalLong.of(Math.max(0, room));
  }

  private void open() throws TapeException {
    if (closed) {
      throw new TapeException("drive is closed: " + this);
    }
    if (pos > cartridge.frames()) {
      // another handle on this cartridge (a label write, the library's drive) cut the tape before us
      pos = cartridge.frames();
    }
  }

  private void writable() throws TapeException {
    open();
    if (readOnly) {
      throw new TapeException("cartridge is write-protected (opened for reading only): " + this);
    }
  }

  @Override
  public void write(ByteBuffer record) throws IOException {
    int length = record.remaining();
    if (length == 0 || length > blockSize) {
      throw new IllegalArgumentException("record length must be 1 to " + blockSize + " bytes: " + length);
    }
    writable();
    rules.checkWrite(length, this);
    long start = cartridge.bytesBefore(pos);
    if (start + length > cartridge.capacity()) {
      // only reachable when positioned past the capacity's reach by a locate into a full tape
      rules.physicalEnd();
      throw new EndOfMediumException("end of medium: a record of " + length + " bytes at " + start
          + " bytes would pass the capacity of " + cartridge.capacity() + " bytes: " + this);
    }
    cartridge.truncate(pos);
    cartridge.appendRecord(record);
    pos++;
    lastWasRecordWrite = true;
    rules.wrote(length);
    if (start + length > cartridge.capacity() - cartridge.earlyWarningZone()) {
      rules.reachedEarlyWarning();
    }
  }

  @Override
  public void writeFilemarks(int count) throws IOException {
    if (count < 0) {
      throw new IllegalArgumentException("filemark count is negative: " + count);
    }
    writable();
    if (count > 0) {
      cartridge.truncate(pos);
      cartridge.appendFilemarks(count);
      pos += count;
    }
    cartridge.sync();
    lastWasRecordWrite = false;
  }

  /** As st: a filemark before moving away from a file just written. */
  private void closeFileIfWritten() throws IOException {
    if (lastWasRecordWrite) {
      writeFilemarks(1);
    }
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    open();
    lastWasRecordWrite = false;
    if (pos == cartridge.frames()) {
      return -1;
    }
    if (cartridge.isFilemark(pos)) {
      pos++;
      return 0;
    }
    int length = cartridge.length(pos);
    if (length > dst.remaining()) {
      throw new TapeException("record of " + length + " bytes at block " + pos + " does not fit the buffer of "
          + dst.remaining() + " bytes (read with a buffer of the block size, " + blockSize + "): " + this);
    }
    cartridge.readRecord(pos, dst);
    pos++;
    return length;
  }

  @Override
  public void rewind() throws IOException {
    open();
    closeFileIfWritten();
    moveTo(0);
  }

  private void moveTo(int frame) {
    pos = frame;
    rules.reset();
    lastWasRecordWrite = false;
  }

  @Override
  public void spaceFiles(int count) throws IOException {
    open();
    if (count == 0) {
      return;
    }
    if (count < 0) {
      closeFileIfWritten();
      int crossed = 0;
      for (int f = pos - 1; f >= 0; f--) {
        if (cartridge.isFilemark(f) && ++crossed == -count) {
          moveTo(f); // before the filemark: the end of the earlier file
          return;
        }
      }
      moveTo(0);
      throw new TapeException("beginning of tape after spacing back over " + crossed + " of " + (-count)
          + " filemarks: " + this);
    }
    int crossed = 0;
    for (int f = pos; f < cartridge.frames(); f++) {
      if (cartridge.isFilemark(f) && ++crossed == count) {
        moveTo(f + 1); // after the filemark: block 0 of the next file
        return;
      }
    }
    moveTo(cartridge.frames());
    throw new TapeException("end of data after spacing forward over " + crossed + " of " + count
        + " filemarks (the tape has " + fileCount() + " files): " + this);
  }

  /** Files on the tape: filemarks, plus one if records follow the last one. */
  private int fileCount() {
    int marks = 0;
    for (int f = 0; f < cartridge.frames(); f++) {
      if (cartridge.isFilemark(f)) {
        marks++;
      }
    }
    int n = cartridge.frames();
    return marks + (n > 0 && !cartridge.isFilemark(n - 1) ? 1 : 0);
  }

  @Override
  public void seekEndOfData() throws IOException {
    open();
    moveTo(cartridge.frames());
  }

  @Override
  public long position() throws IOException {
    open();
    return pos;
  }

  @Override
  public void locate(long block) throws IOException {
    open();
    if (block < 0) {
      throw new IllegalArgumentException("block number is negative: " + block);
    }
    closeFileIfWritten();
    if (block > cartridge.frames()) {
      moveTo(cartridge.frames());
      throw new TapeException("block " + block + " is past the end of data at block " + cartridge.frames()
          + ": " + this);
    }
    moveTo((int) block);
  }

  @Override
  public TapeStatus status() throws IOException {
    open();
    int file = 0;
    int fileStart = 0;
    for (int f = 0; f < pos; f++) {
      if (cartridge.isFilemark(f)) {
        file++;
        fileStart = f + 1;
      }
    }
    long before = cartridge.bytesBefore(pos);
    boolean pastMark = before > cartridge.capacity() - cartridge.earlyWarningZone();
    return new TapeStatus(file, pos - fileStart, pos == 0, pos == cartridge.frames(),
        pastMark || rules.state() != EndOfMediumRules.State.NORMAL,
        rules.state() == EndOfMediumRules.State.END, readOnly);
  }

  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    try {
      if (!readOnly) {
        closeFileIfWritten();
        cartridge.sync();
      }
    } finally {
      closed = true;
      onClose.run();
    }
  }

  @Override
  public String toString() {
    return name + " at block " + pos;
  }
}
