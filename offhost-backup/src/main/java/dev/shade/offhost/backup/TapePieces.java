package dev.shade.offhost.backup;

import dev.shade.offhost.tape.CartridgeInfo;
import dev.shade.offhost.tape.EarlyWarningException;
import dev.shade.offhost.tape.TapeDrive;
import dev.shade.offhost.tape.TapeFileInfo;
import dev.shade.offhost.tape.TapeLabel;
import dev.shade.offhost.tape.TapeLibrary;
import dev.shade.offhost.tape.TapeOutputStream;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.function.Consumer;

/**
 * The tape files a backup writes, in drive 0 of a virtual library: the pieces of its archive, on
 * as many cartridges of its pool as it takes, then the job's record.
 *
 * <p>Not thread-safe: used by the one thread of a backup (and, inside, by the writer thread of
 * the tape file being written, see {@link Stream}).
 */
final class TapePieces implements ImageArchiveWriter.PieceOutput {
  /** The piece begun last. */
  private int currentPiece;
  /*
   * Spanning follows the drive's end-of-medium rules (TapeDrive's class comment): the record
   * that meets the early warning is refused with EarlyWarningException and stays buffered in the
   * TapeOutputStream; Stream retries it at once, now in the trailer allowance, and remembers the
   * warning, so the tar above never sees an exception in the middle of a member. The writer asks
   * full() at each member boundary and ends the piece there: what is left of the member in
   * flight, the continuation member and the tar's end go into the trailer. That needs a trailer
   * of about a chunk and two records; a smaller one ends in EndOfMediumException, which fails the
   * job (the message says how big the trailer must be). A files archive bounds what follows the
   * warning the same way, by the size of its parts (FilesBackupService.partBytes). When the drive
   * knows its room before the warning (roomBeforeEarlyWarning: the virtual library's does), a
   * files archive ends its piece itself once it reaches that point; the record that crossed the
   * mark may then be the piece's last, so no write met the warning: begin() also moves on when
   * the drive says it is past the mark.
   *
   * The next cartridge is the pool's newest one short of its early warning, else a blank one
   * labelled into the pool, exactly as for the first piece; cartridges of other pools are never
   * taken.
   *
   * The drive's writes run on a thread of their own when the drive knows its room before the
   * early warning (the virtual library's cartridge file: its pwrite of new pages is a third of a
   * full backup's writing time, docs/performance.md, "Where a full backup's time goes"): the tar
   * goes into a queue of QUEUE_BUFFERS buffers, and the writer thread takes them to the drive.
   * The warning then comes up to the queue's bytes after the tar wrote the record, too late to
   * end the piece within a small trailer, so full() says so from the bytes given to the stream,
   * once they reach the room the drive had when the tape file began; the warning itself, when the
   * writer thread meets it, is remembered as before. A drive that does not know its room (st)
   * is written synchronously, on the backup's thread, with the warning as its only sign: a files
   * archive's parts use the whole trailer there.
   */

  /** Buffers of the queue between the tar and the drive's writer thread. */
  static final int QUEUE_BUFFERS = 8;
  /** Bytes of each queue buffer (a whole number of records, at least one). */
  static final int QUEUE_BUFFER_BYTES = 1 << 20;

  /** The library. */
  private final TapeLibrary library;
  /** The pool the pieces go to. */
  private final String pool;
  /** Told which cartridge is labelled and loaded. */
  private final Consumer<String> notes;
  /** Labels given to blank cartridges by this backup. */
  private final List<String> labelled = new ArrayList<>();
  /** The drive, once a cartridge is loaded. */
  private TapeDrive drive;
  /** The label of the cartridge in the drive. */
  private String cartridge;
  /** Its slot. */
  private int slot;
  /** The tape file being written, or null between files. */
  private TapeOutputStream tape;
  /** Set when the current tape file met the early warning (by the writer thread, when there is one). */
  private volatile boolean warned;
  /** The stream of the tape file being written, or null between files. */
  private Stream stream;
  /** The chunk size, for the message when the trailer is too small. */
  private final int chunkSize;

  TapePieces(TapeLibrary library, String pool, int chunkSize, Consumer<String> notes) {
    this.library = library;
    this.pool = pool;
    this.chunkSize = chunkSize;
    this.notes = notes;
  }

  /** Loads the first cartridge (the pool's appendable one, else a blank one labelled into the pool). */
  void mountFirst() throws IOException {
    mount(BackupService.chooseCartridge(library, pool));
  }

  /** The cartridge in the drive, null before {@link #mountFirst}. */
  String cartridge() {
    return cartridge;
  }

  /** The bytes the drive takes after its early warning; 0 before {@link #mountFirst}. */
  long trailerBytes() {
    return drive == null ? 0 : drive.trailerBytes();
  }

  /**
   * The record bytes the tape file just begun may take before the drive's early warning, when the
   * drive knows (the virtual library's does, st does not); asked right after {@link #begin}, before
   * anything is written to it (the stream buffers a record).
   */
  OptionalLong roomBeforeEarlyWarning() throws IOException {
    if (stream != null) {
      return stream.room < 0 ? OptionalLong.empty() : OptionalLong.of(stream.room); // as it was before any write
    }
    return drive == null ? OptionalLong.empty() : drive.roomBeforeEarlyWarning();
  }

  /** The labels this backup gave to blank cartridges, in order. */
  List<String> labelled() {
    return List.copyOf(labelled);
  }

  private void mount(int newSlot) throws IOException {
    CartridgeInfo info = library.cartridgeInfo(newSlot);
    if (info.blank()) {
      TapeLabel l = library.writeLabel(newSlot, newLabel(library, newSlot), pool, false);
      labelled.add(l.label());
      notes.accept("labelled the blank cartridge of slot " + newSlot + " '" + l.label() + "' into pool " + pool);
      info = library.cartridgeInfo(newSlot);
    }
    OptionalInt inDrive = library.loadedSlot(0);
    if (inDrive.isPresent() && inDrive.getAsInt() != newSlot) {
      library.unload(0);
    }
    int elsewhere = library.driveOf(newSlot);
    if (elsewhere > 0) {
      library.unload(elsewhere);
    }
    drive = library.load(0, newSlot);
    drive.seekEndOfData();
    List<TapeFileInfo> files = library.cartridgeInfo(newSlot).files();
    if (!files.isEmpty() && !files.get(files.size() - 1).closed()) {
      drive.writeFilemarks(1); // an archive cut short by a crash: end its file
    }
    cartridge = info.label();
    slot = newSlot;
  }

  /** The tape file the next file written goes to. */
  private int nextFileNumber() throws IOException {
    return library.cartridgeInfo(slot).files().size();
  }

  /** The number of the piece begun last (0 before the first). */
  int piece() {
    return currentPiece;
  }

  @Override
  public Started begin(int piece) throws IOException {
    currentPiece = piece;
    if (drive == null) {
      mountFirst();
    } else if (warned || pastRoom || drive.status().earlyWarning()) {
      String from = cartridge;
      mount(BackupService.chooseCartridge(library, pool));
      notes.accept("cartridge " + from + " is full: the archive continues with piece " + (piece + 1)
          + " on cartridge " + cartridge + " (slot " + slot + ")");
    }
    return new Started(open(), cartridge, nextFileNumber());
  }

  /** Set when the last tape file's stream reached the room its drive had before the early warning. */
  private boolean pastRoom;

  private OutputStream open() throws IOException {
    warned = false;
    pastRoom = false;
    tape = new TapeOutputStream(drive);
    stream = new Stream(tape, drive.roomBeforeEarlyWarning().orElse(-1));
    return stream;
  }

  @Override
  public boolean full() {
    return warned || stream != null && stream.pastRoom();
  }

  @Override
  public void end() throws IOException {
    TapeOutputStream t = tape;
    Stream s = stream;
    stream = null;
    s.finish(); // the queue's records on the drive, or the writer thread's failure
    pastRoom = s.pastRoom();
    try {
      t.close();
    } catch (EarlyWarningException e) {
      warned = true;
      t.close(); // the last record, refused at the early warning, goes into the trailer
    }
    tape = null;
  }

  /** After a failure: stops the tape file's writer thread and ends the file being written, if any, with a filemark. */
  void abort(Exception failure) {
    if (stream != null) {
      stream.stop();
      stream = null;
    }
    if (tape != null && drive != null) {
      tape = null;
      try {
        drive.writeFilemarks(1);
      } catch (IOException e) {
        failure.addSuppressed(e);
      }
    }
  }

  /** True if a cartridge is loaded, so that the job's record can be written. */
  boolean mounted() {
    return drive != null;
  }

  /**
   * Writes {@code record} (a job record) as a tape file after the last piece, in that
   * cartridge's trailer if it is past its early warning; if the trailer has no room left for it,
   * on the pool's next cartridge. Returns where it went.
   */
  Catalog.RecordLocation writeRecord(JobRecordFile record) throws IOException {
    return writeRecord((TapeRecord) record::write);
  }

  /** {@link #writeRecord(JobRecordFile)} for any record (verifications, drills), on the pool's cartridge. */
  Catalog.RecordLocation writeRecord(TapeRecord record) throws IOException {
    if (drive == null) {
      mountFirst();
    }
    for (int attempt = 0; ; attempt++) {
      int fileNumber = nextFileNumber();
      OutputStream out = open();
      try {
        record.write(out, drive.blockSize());
        end();
        return new Catalog.RecordLocation(cartridge, fileNumber);
      } catch (dev.shade.offhost.tape.EndOfMediumException e) {
        abort(e);
        if (attempt > 0) {
          throw e;
        }
        mount(BackupService.chooseCartridge(library, pool));
      }
    }
  }

  /** The message for a piece that could not be ended within the trailer. */
  String trailerTooSmall(int piece) {
    return "piece " + (piece + 1) + " of the archive on cartridge " + cartridge + " could not be ended within the "
        + drive.trailerBytes() + " bytes the drive allows after the early warning; spanning needs at least a chunk ("
        + chunkSize + " bytes) and two records (" + 2L * drive.blockSize() + " bytes) there";
  }

  /** {@code SHD} and the slot in three digits (as 'shade tape label --all-blank --label SHD'), or a free variant. */
  static String newLabel(TapeLibrary library, int slot) throws IOException {
    String label = String.format("SHD%03d", slot);
    for (int n = 2; library.find(label).isPresent(); n++) {
      label = String.format("SHD%03d-%d", slot, n);
    }
    return label;
  }

  /**
   * The stream the tar goes to: rides over the early warning into the trailer, remembering it;
   * when the drive knows its room, through a queue to a writer thread of its own (see the comment above).
   * Its methods are called from the backup's thread; {@link #drain} runs on the writer thread.
   */
  private final class Stream extends OutputStream {
    /** The tape file; used only by the writer thread while there is one, until {@link #finish}. */
    private final TapeOutputStream out;
    /** The record bytes the drive had before its early warning when the file began; -1: unknown. */
    final long room;
    /** Bytes given to this stream. */
    private long accepted;
    /** The writer thread, or null: writes go to the drive on the caller's thread. */
    private final Thread writer;
    /** Filled buffers in order, then {@link #END}. */
    private final BlockingQueue<ByteBuffer> filled;
    /** Buffers the writer thread has emptied. */
    private final BlockingQueue<ByteBuffer> free;
    /** Bytes of each buffer. */
    private final int bufferBytes;
    /** Buffers made so far (made as needed: a job record's file needs one). */
    private int made;
    /** The buffer being filled, or null. */
    private ByteBuffer current;
    /** The writer thread's first failure; it writes nothing after it. */
    private volatile IOException failed;

    Stream(TapeOutputStream out, long room) {
      this.out = out;
      this.room = room;
      if (room < 0) {
        writer = null;
        filled = null;
        free = null;
        bufferBytes = 0;
        return;
      }
      int block = drive.blockSize();
      bufferBytes = Math.max(1, QUEUE_BUFFER_BYTES / block) * block;
      filled = new ArrayBlockingQueue<>(QUEUE_BUFFERS + 1);
      free = new ArrayBlockingQueue<>(QUEUE_BUFFERS);
      writer = new Thread(this::drain, "shade-tape-writer " + cartridge);
      writer.setDaemon(true);
      writer.start();
    }

    /** True once the bytes given reach the room the drive had before its early warning. */
    boolean pastRoom() {
      return room >= 0 && accepted >= room;
    }

    @Override
    public void write(int b) throws IOException {
      write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      if (writer == null) {
        toDrive(b, off, len);
        accepted += len;
        return;
      }
      checkFailed();
      try {
        while (len > 0) {
          if (current == null) {
            current = takeFree();
          }
          int n = Math.min(len, current.remaining());
          current.put(b, off, n);
          off += n;
          len -= n;
          accepted += n;
          if (!current.hasRemaining()) {
            filled.put(current.flip());
            current = null;
          }
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted while queueing records for " + cartridge);
      }
    }

    /** A free buffer, a new one while fewer than QUEUE_BUFFERS were made; fails as soon as the writer thread has failed. */
    private ByteBuffer takeFree() throws InterruptedException, IOException {
      ByteBuffer b = free.poll();
      if (b != null) {
        return b;
      }
      if (made < QUEUE_BUFFERS) {
        made++;
        return ByteBuffer.allocate(bufferBytes);
      }
      while (true) {
        b = free.poll(100, java.util.concurrent.TimeUnit.MILLISECONDS);
        if (b != null) {
          return b;
        }
        checkFailed();
      }
    }

    private void checkFailed() throws IOException {
      IOException f = failed;
      if (f != null) {
        throw f; // the drive's own exception (EndOfMediumException: the caller says how big the trailer must be)
      }
    }

    /** Writes to the drive; a record refused at the early warning is retried at once, in the trailer. */
    private void toDrive(byte[] b, int off, int len) throws IOException {
      long before = out.bytes();
      try {
        out.write(b, off, len);
      } catch (EarlyWarningException e) {
        // the refused record stays buffered; the retry writes it in the trailer allowance
        warned = true;
        int taken = (int) (out.bytes() - before);
        out.write(b, off + taken, len - taken);
      }
    }

    /** The writer thread: the filled buffers to the drive, in order, until {@link #END}. */
    private void drain() {
      try {
        while (true) {
          ByteBuffer b = filled.take();
          if (b == END) {
            return;
          }
          if (failed == null) {
            try {
              toDrive(b.array(), b.arrayOffset(), b.remaining());
            } catch (IOException e) {
              failed = e;
            } catch (RuntimeException e) {
              failed = new IOException("writing to " + cartridge + " failed: " + e, e);
            }
          }
          free.put(b.clear());
        }
      } catch (InterruptedException e) {
        failed = new InterruptedIOException("the tape writer thread of " + cartridge + " was interrupted");
      }
    }

    /** Every byte given on the drive (but the record the tape stream keeps until it closes); throws the writer's failure. */
    void finish() throws IOException {
      if (writer == null) {
        return;
      }
      try {
        if (current != null && current.position() > 0) {
          filled.put(current.flip());
        }
        current = null;
        filled.put(END);
        writer.join();
      } catch (InterruptedException e) {
        stop();
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted while the records queued for " + cartridge + " were written");
      }
      checkFailed();
    }

    /** After a failure: the writer thread drops what is queued and ends; waits for it. */
    void stop() {
      if (writer == null) {
        return;
      }
      filled.clear(); // what is left to take is END
      filled.offer(END);
      boolean interrupted = false;
      while (writer.isAlive()) {
        try {
          writer.join();
        } catch (InterruptedException e) {
          interrupted = true; // the drive must not be written from two threads: wait for the write in progress
        }
      }
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }

    @Override
    public void close() {
      // the piece's tape file ends with end()
    }
  }

  /** The writer thread's sign that the tape file's bytes are all queued. */
  private static final ByteBuffer END = ByteBuffer.allocate(0);
}
