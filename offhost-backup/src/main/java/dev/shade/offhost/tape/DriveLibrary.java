package dev.shade.offhost.tape;

import dev.shade.nativeio.Errno;
import dev.shade.nativeio.ErrnoException;
import dev.shade.nativeio.FileHandle;
import dev.shade.nativeio.MagneticTape;
import dev.shade.nativeio.MtIo;
import dev.shade.offhost.tape.DriveState.FileRec;
import dev.shade.offhost.tape.DriveState.Known;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * One real tape drive without a changer, as a {@link TapeLibrary} of the cartridges it has seen:
 * an operator changes cartridges when asked ({@link CartridgeOperator}), and the library checks
 * the label of every cartridge loaded.
 *
 * <p>One process uses a drive at a time: an exclusive {@code flock} on {@code STATE.lock} (and the
 * st driver, which opens a device once). Not thread-safe: one thread uses the library and its
 * drive handles at a time.
 */
final class DriveLibrary implements TapeLibrary {
  /*
   * Slots. Slot 1..n are the labelled cartridges the library has seen, in the order it first saw
   * them (the state file's order). Slot n+1 is "the blank": the cartridge in the drive when it has
   * no label, else a blank one the operator is asked for when something labels it. Labelling it
   * makes it slot n+1 for good, and the blank becomes n+2.
   *
   * The state file (DriveState: JSON, rewritten atomically) remembers each cartridge's label,
   * pool, sequence, creation time, early warning and tape files (first block, records, bytes,
   * kind, closed), so that a job can tell what is on a cartridge that is on the shelf, and a
   * restore can check a tape file's size before it asks for the cartridge. The tapes stay the
   * truth: a cartridge whose label the state does not know (a new one, or the state was lost) is
   * read to its end once, when its files are first asked for while it is in the drive.
   *
   * What is in the drive is one of: a cartridge of the state; a blank (no record at all); a
   * "foreign" one, neither blank nor of the state: data without a shade label (another program's
   * tape), or a label the state knows with another creation time (another cartridge labelled the
   * same elsewhere). A foreign cartridge is never chosen nor accepted as the one wanted, and is
   * labelled over only by force. A write-protected cartridge (EROFS on opening for writing; it is
   * opened read-only then) is read from but never chosen for writing.
   *
   * Keeping the files right. Every handle this library gives out goes through Handle, which
   * tracks the drive's position (the file it is at, and whether at its start, or at the end of an
   * open last file) and applies each record and filemark written to the remembered files, as
   * st writes them: a record at the start of file k ends the tape there (files from k on are
   * dropped) and starts file k; a filemark ends the file being written, or is an empty file;
   * st's own filemark before a rewind, MTBSF or MTSEEK after a write ends the file too, and a
   * handle's close writes one (the device stays open). A write the tracking cannot place (after
   * reading into the middle of a file) forgets the cartridge's files, so they are read from the
   * tape the next time. The state is saved after every filemark.
   *
   * Positioning: seekFile uses MTSEEK to the file's first block when the state knows it (one
   * locate instead of a rewind and a space over the files before it), else MTREW + MTFSF; an
   * append goes to the end of data with MTEOM.
   *
   * A change: the handle is closed (a filemark after a write), the cartridge ejected (MTOFFL),
   * the device closed; the operator is asked; the device is opened again and the label of what
   * is there read and checked, and the operator asked again with the reason until the right
   * cartridge is in or they decline. Without an operator (no terminal), a change fails at once,
   * naming the cartridge wanted, and the cartridge in the drive stays where it is. unload() only
   * marks the cartridge to come out: the eject happens when another one is asked for (or at
   * close), so the services' "unload drive 0, load slot S" moves nothing when S is already in.
   */

  /** st's answer to an open without a tape in the drive. */
  private static final int ENOMEDIUM = 123;
  /** A shade tar's first member, whose middle is the kind of the tape file. */
  private static final Pattern KIND = Pattern.compile("shade-([a-z0-9-]+)\\.json");
  /** How much of a tape file's beginning is kept to tell what it holds. */
  private static final int PEEK_BYTES = 64 * 1024;

  /** Opens the device (MagneticTape.open in production, a fake in tests). */
  interface Opener {
    MagneticTape open(boolean readOnly) throws IOException;
  }

  /** The device, as given: names the library. */
  private final Path device;
  /** Opens the device. */
  private final Opener opener;
  /** The state file. */
  private final Path stateFile;
  /** The lock on STATE.lock, held while open. */
  private final FileHandle lock;
  /** Asked to change cartridges. */
  private final CartridgeOperator operator;
  /** Largest record. */
  private final int blockSize;
  /** Trailer allowance after the early warning. */
  private final long trailerBytes;
  /** The labelled cartridges seen, slot = index + 1. */
  private final List<Known> known = new ArrayList<>();

  /** The open device, null when the drive is empty or the cartridge was ejected. */
  private MagneticTape tape;
  /** The drive over {@link #tape}. */
  private StTapeDrive raw;
  /** The cartridge in the drive: one of {@link #known}, a blank (label null), or null. */
  private Known current;
  /** The cartridge in the drive is write-protected (the device could be opened for reading only). */
  private boolean writeProtected;
  /**
   * Set by unload: the cartridge is to come out, which happens when another one is asked for
   * (so that unloading and loading the same cartridge moves nothing, and without an operator
   * nothing is ejected), or at close.
   */
  private boolean ejectPending;
  /** The handle given out last, null when closed. */
  private Handle handle;
  /** Set by close. */
  private boolean closed;

  /* The drive's position, as the handles track it (see the class comment). */
  /** The tape file the drive is in, -1 when unknown. */
  private int file = -1;
  /** At block 0 of {@link #file}. */
  private boolean atStart;
  /** At the end of the open last file of the tape (after MTEOM, or after writing a record). */
  private boolean openEnd;
  /** The last operation was a record write (st then writes a filemark before repositioning). */
  private boolean lastWrite;

  private DriveLibrary(Path device, Opener opener, Path stateFile, FileHandle lock, CartridgeOperator operator,
      int blockSize, long trailerBytes) {
    this.device = device;
    this.opener = opener;
    this.stateFile = stateFile;
    this.lock = lock;
    this.operator = operator;
    this.blockSize = blockSize;
    this.trailerBytes = trailerBytes;
  }

  /** Opens {@code device} in variable block mode with the default block size and trailer. */
  static DriveLibrary open(Path device, Path stateFile, CartridgeOperator operator) throws IOException {
    return open(device, readOnly -> MagneticTape.open(device, readOnly), stateFile, operator, TapeDrive.DEFAULT_BLOCK_SIZE,
        StTapeDrive.DEFAULT_TRAILER_BYTES);
  }

  /**
   * Opens the drive {@code opener} opens (named {@code device}), with the cartridges remembered in
   * {@code stateFile} (created with its directory if missing), and reads the label of the
   * cartridge in it, if any.
   */
  static DriveLibrary open(Path device, Opener opener, Path stateFile, CartridgeOperator operator, int blockSize,
      long trailerBytes) throws IOException {
    Path dir = stateFile.toAbsolutePath().getParent();
    Files.createDirectories(dir);
    Path lockPath = Path.of(stateFile + ".lock");
    FileHandle lock = FileHandle.create(lockPath);
    try {
      if (!lock.lock(true, false)) {
        throw new TapeException("tape drive " + device + " is in use by another process (it holds the lock on "
            + lockPath + ")");
      }
      DriveLibrary lib = new DriveLibrary(device, opener, stateFile, lock, operator, blockSize, trailerBytes);
      lib.loadState();
      lib.mount();
      return lib;
    } catch (IOException | RuntimeException e) {
      lock.close();
      throw e;
    }
  }

  @Override
  public Path directory() {
    return device;
  }

  @Override
  public int blockSize() {
    return blockSize;
  }

  @Override
  public int slots() {
    return known.size() + (current != null && current.label == null && !current.foreign ? 1 : 0);
  }

  @Override
  public List<CartridgeInfo> list() throws IOException {
    List<CartridgeInfo> all = new ArrayList<>();
    for (int s = 1; s <= slots(); s++) {
      all.add(cartridgeInfo(s));
    }
    return all;
  }

  @Override
  public Optional<CartridgeInfo> find(String label) throws IOException {
    for (int s = 1; s <= known.size(); s++) {
      if (known.get(s - 1).label.label().equals(label)) {
        return Optional.of(cartridgeInfo(s));
      }
    }
    return Optional.empty();
  }

  @Override
  public CartridgeInfo cartridgeInfo(int slot) throws IOException {
    requireOpen();
    Known k = known(slot);
    if (k == null) {
      boolean blankIn = current != null && current.label == null && !ejectPending;
      // a tape of another program shows as one unlabelled file of data of unknown size
      List<TapeFileInfo> data = blankIn && current.foreign ? List.of(new TapeFileInfo(0, 0, -1, -1, "data", false))
          : List.of();
      return new CartridgeInfo(slot, null, null, 0, blankIn ? 0 : -1, 0, 0, false, data);
    }
    if (k.files == null && k == current) {
      scan();
    }
    List<TapeFileInfo> files = new ArrayList<>();
    long used = 0;
    if (k.files != null) {
      for (FileRec f : k.files) {
        files.add(new TapeFileInfo(files.size(), f.firstBlock, f.records, f.bytes, f.kind, f.closed));
        used += f.bytes;
      }
    }
    TapeLabel l = k.label;
    return new CartridgeInfo(slot, l.label(), l.pool(), l.sequence(), k == current && !ejectPending ? 0 : -1, 0, used,
        k.earlyWarning,
        files);
  }

  @Override
  public Optional<TapeLabel> label(int slot) throws IOException {
    requireOpen();
    Known k = known(slot);
    return k == null ? Optional.empty() : Optional.of(k.label);
  }

  @Override
  public TapeLabel writeLabel(int slot, String label, String pool, boolean force) throws IOException {
    TapeLabel.requireName("label", label);
    TapeLabel.requireName("pool", pool);
    requireOpen();
    Known k = known(slot);
    if (k != null && !force) {
      throw new TapeException("cartridge " + k.label.label() + " (pool " + k.label.pool() + ") is already labelled;"
          + " relabelling erases it: " + this);
    }
    // a tape that is neither blank nor this library's is labelled over only when forced; else a blank one is asked for
    boolean foreignIn = force && k == null && current != null && current.foreign && !ejectPending;
    int sequence = 1;
    for (Known other : known) {
      if (other == k) {
        continue;
      }
      if (other.label.label().equals(label)) {
        throw new TapeException("label '" + label + "' is already on cartridge " + label + " (pool "
            + other.label.pool() + ") of " + this);
      }
      if (other.label.pool().equals(pool)) {
        sequence = Math.max(sequence, other.label.sequence() + 1);
      }
    }
    if (!foreignIn) {
      bring(slot, pool);
    }
    TapeLabel l = TapeLabel.of(label, pool, sequence);
    closeHandle();
    current.files = new ArrayList<>(); // writing the label erases the tape
    Handle h = new Handle(false);
    handle = h;
    try {
      l.write(h);
    } finally {
      closeHandle();
    }
    Known c = current;
    c.label = l;
    c.foreign = false;
    c.earlyWarning = false;
    if (!known.contains(c)) {
      known.add(c);
    }
    saveState();
    return l;
  }

  @Override
  public OptionalInt loadedSlot(int drive) {
    checkDrive(drive);
    if (current == null || ejectPending) {
      return OptionalInt.empty();
    }
    int i = known.indexOf(current);
    return OptionalInt.of(i >= 0 ? i + 1 : known.size() + 1);
  }

  @Override
  public int driveOf(int slot) {
    OptionalInt in = loadedSlot(0);
    return in.isPresent() && in.getAsInt() == slot ? 0 : -1;
  }

  @Override
  public TapeDrive load(int drive, int slot) throws IOException {
    requireOpen();
    checkDrive(drive);
    Known k = known(slot);
    bring(slot, k == null ? null : k.label.pool());
    TapeDrive d = drive(drive);
    d.rewind();
    return d;
  }

  @Override
  public TapeDrive drive(int drive) throws IOException {
    requireOpen();
    checkDrive(drive);
    if (current == null || ejectPending) {
      throw new TapeException("no cartridge in tape drive " + device + "; load one first");
    }
    if (handle == null) {
      handle = new Handle(false);
      handle.rewind();
    }
    return handle;
  }

  @Override
  public void unload(int drive) throws IOException {
    requireOpen();
    checkDrive(drive);
    if (current == null || ejectPending) {
      throw new TapeException("tape drive " + device + " is empty; there is nothing to unload");
    }
    closeHandle();
    ejectPending = true;
  }

  @Override
  public TapeDrive openForReading(int slot) throws IOException {
    requireOpen();
    Known k = known(slot);
    bring(slot, k == null ? null : k.label.pool());
    closeHandle();
    Handle h = new Handle(true);
    handle = h;
    h.rewind();
    return h;
  }

  @Override
  public OptionalInt choose(String pool) throws IOException {
    requireOpen();
    if (current != null && !ejectPending && !writeProtected) {
      if (current.label == null && !current.foreign) {
        return loadedSlot(0);
      }
      if (current.label != null && current.label.pool().equals(pool) && !current.earlyWarning) {
        return loadedSlot(0);
      }
    }
    int best = -1;
    for (int s = 1; s <= known.size(); s++) {
      Known k = known.get(s - 1);
      if (k.label.pool().equals(pool) && !k.earlyWarning && !(k == current && writeProtected)
          && (best < 0 || k.label.sequence() > known.get(best - 1).label.sequence())) {
        best = s;
      }
    }
    return OptionalInt.of(best > 0 ? best : known.size() + 1);
  }

  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    IOException failure = null;
    try {
      closeHandle();
      if (ejectPending && operator.present()) {
        eject();
      }
      saveState();
    } catch (IOException e) {
      failure = e;
    }
    try {
      closeDevice();
    } catch (IOException e) {
      failure = add(failure, e);
    }
    closed = true;
    try {
      lock.close();
    } catch (IOException e) {
      failure = add(failure, e);
    }
    if (failure != null) {
      throw failure;
    }
  }

  @Override
  public String toString() {
    return "tape drive " + device;
  }

  private void requireOpen() throws TapeException {
    if (closed) {
      throw new TapeException("tape library is closed: " + this);
    }
  }

  private static void checkDrive(int drive) {
    if (drive != 0) {
      throw new IllegalArgumentException("a single tape drive is drive 0: " + drive);
    }
  }

  /** The labelled cartridge of {@code slot}, or null for the blank one (slot n+1). */
  private Known known(int slot) {
    if (slot < 1 || slot > known.size() + 1) {
      throw new IllegalArgumentException("slot must be 1 to " + (known.size() + 1) + " (the cartridges " + this
          + " has seen, then a blank one): " + slot);
    }
    return slot <= known.size() ? known.get(slot - 1) : null;
  }

  /** The cartridge in the drive in words. */
  private String holding() {
    if (current == null) {
      return "no cartridge";
    }
    if (current.foreign) {
      return current.label == null ? "a cartridge with data but no shade label"
          : "another cartridge labelled " + current.label.label() + " (labelled " + current.label.created()
              + " in pool " + current.label.pool() + ")";
    }
    return current.label == null ? "a blank cartridge" : "cartridge " + current.label.label() + " (pool "
        + current.label.pool() + ")";
  }

  /**
   * Makes the cartridge of {@code slot} (a blank one for slot n+1, to be labelled into
   * {@code pool}) the one in the drive, asking the operator to change it if it is not.
   */
  private void bring(int slot, String pool) throws IOException {
    Known wanted = known(slot);
    if (current != null && (wanted == null ? current.label == null && !current.foreign : current == wanted)) {
      ejectPending = false;
      return;
    }
    CartridgeOperator.ChangeRequest request = new CartridgeOperator.ChangeRequest(device.toString(),
        wanted == null ? null : wanted.label.label(), wanted == null ? pool : wanted.label.pool(), null);
    if (!operator.present()) {
      throw new TapeException(request.wanted() + " is needed in " + device + ", which holds " + holding()
          + "; nobody can be asked to change it: load it and run again");
    }
    for (;;) {
      if (current != null) {
        eject();
      }
      operator.change(request);
      closeDevice();
      mount();
      String refused;
      if (current == null) {
        refused = "the drive is still empty";
      } else if (wanted == null) {
        if (current.label == null && !current.foreign && !writeProtected) {
          return;
        }
        if (current.label == null && !current.foreign) {
          refused = "the blank cartridge in the drive is write-protected";
          request = new CartridgeOperator.ChangeRequest(request.device(), request.label(), request.pool(), refused);
          continue;
        }
        refused = "the drive holds " + holding() + ", not a blank one; labelling it would erase it";
      } else if (current == wanted) {
        return;
      } else if (current.label != null && current.label.label().equals(wanted.label.label())) {
        refused = "the drive holds " + holding() + "; the one wanted was labelled " + wanted.label.created();
      } else {
        refused = "the drive holds " + holding();
      }
      request = new CartridgeOperator.ChangeRequest(request.device(), request.label(), request.pool(), refused);
    }
  }

  /** Opens the device and reads the label of the cartridge in it; the drive may be empty. */
  private void mount() throws IOException {
    current = null;
    file = -1;
    atStart = false;
    openEnd = false;
    lastWrite = false;
    MagneticTape t;
    boolean readOnly = false;
    try {
      try {
        t = opener.open(false);
      } catch (ErrnoException e) {
        if (e.errno() != Errno.EROFS && e.errno() != Errno.EACCES) {
          throw e;
        }
        t = opener.open(true); // a write-protected cartridge: st opens it for reading only
        readOnly = true;
      }
    } catch (ErrnoException e) {
      if (e.errno() == ENOMEDIUM || e.errno() == Errno.EIO) {
        return; // no cartridge, or not ready: an empty drive
      }
      if (e.errno() == Errno.EBUSY) {
        throw new TapeException("tape drive " + device + " is open in another process (EBUSY); only one process"
            + " may use it at a time: " + e.getMessage(), e);
      }
      throw new TapeException("cannot open tape drive " + device + ": " + e.getMessage(), e);
    }
    writeProtected = readOnly;
    try {
      raw = new StTapeDrive(t, readOnly, blockSize, trailerBytes);
      tape = t;
    } catch (IOException | RuntimeException e) {
      t.close();
      throw e;
    }
    Optional<TapeLabel> l = TapeLabel.read(raw);
    file = l.isPresent() ? 1 : 0;
    atStart = true;
    if (l.isEmpty()) {
      Known blank = new Known();
      blank.files = new ArrayList<>();
      ByteBuffer first = ByteBuffer.allocate(blockSize);
      try {
        blank.foreign = raw.read(first) >= 0; // a record or a filemark: not blank
      } catch (TapeException e) {
        blank.foreign = true; // a record larger than the block size: certainly not blank
      }
      raw.rewind();
      file = 0;
      current = blank;
      return;
    }
    TapeLabel label = l.get();
    for (int i = 0; i < known.size(); i++) {
      Known k = known.get(i);
      if (k.label.label().equals(label.label())) {
        if (!k.label.created().equals(label.created())) {
          // another cartridge with this label: not the one remembered, and not used until relabelled
          Known other = new Known();
          other.label = label;
          other.foreign = true;
          current = other;
          return;
        }
        current = k;
        saveState();
        return;
      }
    }
    Known k = new Known();
    k.label = label;
    current = k;
    known.add(k);
    saveState();
  }

  /** Ends the handle, ejects the cartridge and closes the device. */
  private void eject() throws IOException {
    closeHandle();
    ejectPending = false;
    if (tape != null) {
      try {
        tape.operation(MtIo.MTOFFL, 1);
      } catch (ErrnoException e) {
        // a drive that cannot eject: the operator takes the cartridge out by hand
      }
    }
    closeDevice();
    saveState();
  }

  private void closeDevice() throws IOException {
    current = null;
    writeProtected = false;
    ejectPending = false;
    file = -1;
    if (tape != null) {
      MagneticTape t = tape;
      tape = null;
      raw = null;
      t.close();
    }
  }

  private void closeHandle() throws IOException {
    if (handle != null) {
      Handle h = handle;
      handle = null;
      h.close();
    }
  }

  /** Reads the cartridge in the drive to its end and remembers its files. */
  private void scan() throws IOException {
    closeHandle();
    raw.rewind();
    List<FileRec> files = new ArrayList<>();
    ByteBuffer buf = ByteBuffer.allocate(blockSize);
    long block = 0;
    FileRec f = new FileRec(0, 0, 0, "empty", false);
    f.peek = new ByteArrayOutputStream();
    for (;;) {
      buf.clear();
      int n = raw.read(buf);
      if (n > 0) {
        f.records++;
        f.bytes += n;
        peek(f, buf.array(), n);
        block++;
      } else if (n == 0) {
        f.closed = true;
        endFile(f);
        files.add(f);
        block++;
        f = new FileRec(block, 0, 0, "empty", false);
        f.peek = new ByteArrayOutputStream();
      } else {
        if (f.records > 0) {
          endFile(f);
          files.add(f);
        }
        break;
      }
    }
    current.files = files;
    current.earlyWarning = raw.status().earlyWarning();
    file = files.size() - (files.isEmpty() || files.get(files.size() - 1).closed ? 0 : 1);
    atStart = files.isEmpty() || files.get(files.size() - 1).closed;
    openEnd = !atStart;
    lastWrite = false;
    saveState();
  }

  private static void peek(FileRec f, byte[] b, int n) {
    if (f.peek != null && f.peek.size() < PEEK_BYTES) {
      f.peek.write(b, 0, Math.min(n, PEEK_BYTES - f.peek.size()));
    }
  }

  /** Tells the kind of {@code f} from its first bytes. */
  private static void endFile(FileRec f) {
    if (f.peek == null) {
      return;
    }
    f.kind = f.records == 0 ? "empty" : kind(f.peek.toByteArray());
    f.peek = null;
  }

  /** What a tape file starting with {@code peek} holds: see {@link TapeFileInfo#kind()}. */
  private static String kind(byte[] peek) {
    try {
      TarArchiveInputStream tar = new TarArchiveInputStream(new ByteArrayInputStream(peek), "UTF-8");
      TarArchiveEntry e = tar.getNextEntry();
      if (e != null) {
        Matcher m = KIND.matcher(e.getName());
        if (m.matches()) {
          return m.group(1);
        }
      }
    } catch (IOException | IllegalArgumentException e) {
      // not a tar
    }
    return "data";
  }

  private void loadState() throws IOException {
    known.addAll(DriveState.load(stateFile));
  }

  private void saveState() throws IOException {
    DriveState.save(stateFile, device, blockSize, known);
  }

  private static IOException add(IOException first, IOException next) {
    if (first == null) {
      return next;
    }
    first.addSuppressed(next);
    return first;
  }

  /** The drive as the services use it: the device, with the cartridge's files kept up to date. */
  private final class Handle implements TapeDrive {
    /** Writes refused. */
    private final boolean readOnly;
    /** The cartridge this handle was given for. */
    private final Known cartridge;
    /** Set by close, or when the cartridge leaves the drive. */
    private boolean done;

    Handle(boolean readOnly) {
      this.readOnly = readOnly;
      this.cartridge = current;
    }

    private StTapeDrive drive() throws TapeException {
      if (done || handle != this || current != cartridge || raw == null) {
        throw new TapeException("drive handle is closed (the cartridge was changed or the handle closed): "
            + DriveLibrary.this);
      }
      return raw;
    }

    /** The remembered files, or null when they are not tracked. */
    private List<FileRec> files() {
      return cartridge.files;
    }

    /** st's filemark before a repositioning that follows a record write. */
    private void implicitFilemark() {
      if (lastWrite) {
        lastWrite = false;
        List<FileRec> files = files();
        if (files != null && openEnd && !files.isEmpty()) {
          FileRec f = files.get(files.size() - 1);
          f.closed = true;
          endFile(f);
        }
        openEnd = false;
      }
    }

    private void requireWritable() throws TapeException {
      if (writeProtected) {
        throw new TapeException("the cartridge is write-protected, so nothing is written: " + this);
      }
    }

    @Override
    public int blockSize() {
      return blockSize;
    }

    @Override
    public long trailerBytes() {
      return trailerBytes;
    }

    @Override
    public void write(ByteBuffer record) throws IOException {
      StTapeDrive d = drive();
      if (readOnly) {
        throw new TapeException("drive is opened read-only, so nothing is written: " + DriveLibrary.this);
      }
      requireWritable();
      List<FileRec> files = files();
      FileRec target = null;
      boolean start = false;
      if (files != null) {
        if (openEnd && !files.isEmpty()) {
          target = files.get(files.size() - 1);
        } else if (atStart && file >= 0 && file <= files.size()) {
          start = true;
        } else {
          cartridge.files = null; // a write the tracking cannot place: the files are read from the tape next time
        }
      }
      long firstBlock = start ? d.position() : -1;
      int length = record.remaining();
      try {
        d.write(record);
      } catch (EarlyWarningException | EndOfMediumException e) {
        cartridge.earlyWarning = true;
        throw e;
      }
      if (start) {
        while (files.size() > file) {
          files.remove(files.size() - 1);
        }
        target = new FileRec(firstBlock, 0, 0, "data", false);
        target.peek = new ByteArrayOutputStream();
        files.add(target);
      }
      if (target != null) {
        target.records++;
        target.bytes += length;
        if (target.peek != null && target.peek.size() < PEEK_BYTES) {
          ByteBuffer b = record.duplicate();
          b.position(b.position() - length);
          byte[] bytes = new byte[Math.min(length, PEEK_BYTES - target.peek.size())];
          b.get(bytes);
          target.peek.write(bytes, 0, bytes.length);
        }
        openEnd = true;
      }
      atStart = false;
      lastWrite = true;
    }

    @Override
    public void writeFilemarks(int count) throws IOException {
      StTapeDrive d = drive();
      if (readOnly) {
        throw new TapeException("drive is opened read-only, so no filemark is written: " + DriveLibrary.this);
      }
      requireWritable();
      List<FileRec> files = files();
      long block = count > 0 && files != null ? d.position() : -1;
      d.writeFilemarks(count);
      if (count == 0) {
        return;
      }
      lastWrite = false;
      if (files != null) {
        for (int i = 0; i < count; i++) {
          if (openEnd && !files.isEmpty()) {
            FileRec f = files.get(files.size() - 1);
            f.closed = true;
            endFile(f);
            openEnd = false;
            file = files.size();
            atStart = true;
          } else if (atStart && file >= 0 && file <= files.size()) {
            while (files.size() > file) {
              files.remove(files.size() - 1);
            }
            files.add(new FileRec(block, 0, 0, "empty", true));
            file = files.size();
          } else {
            cartridge.files = null;
            break;
          }
          block++;
        }
      }
      saveState();
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
      StTapeDrive d = drive();
      lastWrite = false;
      int n = d.read(dst);
      if (n > 0) {
        atStart = false;
        openEnd = false;
      } else if (n == 0) {
        if (file >= 0) {
          file++;
        }
        atStart = true;
        openEnd = false;
      } else {
        atEndOfData();
      }
      return n;
    }

    /** The position after MTEOM or a read that met the end of data. */
    private void atEndOfData() {
      List<FileRec> files = files();
      if (files == null) {
        file = -1;
        atStart = false;
        openEnd = false;
      } else if (!files.isEmpty() && !files.get(files.size() - 1).closed) {
        file = files.size() - 1;
        atStart = false;
        openEnd = true;
      } else {
        file = files.size();
        atStart = true;
        openEnd = false;
      }
    }

    @Override
    public void rewind() throws IOException {
      StTapeDrive d = drive();
      implicitFilemark();
      d.rewind();
      file = 0;
      atStart = true;
      openEnd = false;
    }

    @Override
    public void spaceFiles(int count) throws IOException {
      StTapeDrive d = drive();
      if (count == 0) {
        return;
      }
      if (count < 0) {
        implicitFilemark();
      }
      lastWrite = false;
      openEnd = false;
      try {
        d.spaceFiles(count);
      } catch (TapeException e) {
        if (count > 0) {
          atEndOfData();
        } else {
          file = 0;
          atStart = true;
        }
        throw e;
      }
      if (count > 0) {
        file = file < 0 ? -1 : file + count;
        atStart = file >= 0;
      } else {
        file = file < 0 ? -1 : file + count;
        atStart = false;
      }
    }

    @Override
    public void seekFile(int fileNumber) throws IOException {
      if (fileNumber < 0) {
        throw new IllegalArgumentException("file number is negative: " + fileNumber);
      }
      List<FileRec> files = files();
      if (fileNumber > 0 && files != null && fileNumber < files.size() && files.get(fileNumber).firstBlock >= 0) {
        locate(files.get(fileNumber).firstBlock); // MTSEEK: one locate instead of rewinding and spacing
        return;
      }
      rewind();
      spaceFiles(fileNumber);
    }

    @Override
    public void seekEndOfData() throws IOException {
      StTapeDrive d = drive();
      lastWrite = false;
      d.seekEndOfData();
      atEndOfData();
    }

    @Override
    public long position() throws IOException {
      return drive().position();
    }

    @Override
    public void locate(long block) throws IOException {
      StTapeDrive d = drive();
      implicitFilemark();
      d.locate(block);
      file = -1;
      atStart = false;
      openEnd = false;
      List<FileRec> files = files();
      if (files != null) {
        for (int i = 0; i < files.size(); i++) {
          if (files.get(i).firstBlock == block) {
            file = i;
            atStart = true;
          }
        }
      }
    }

    @Override
    public TapeStatus status() throws IOException {
      TapeStatus s = drive().status();
      return readOnly ? new TapeStatus(s.fileNumber(), s.blockNumber(), s.beginningOfTape(), s.endOfData(),
          s.earlyWarning(), s.endOfMedium(), true) : s;
    }

    @Override
    public void close() throws IOException {
      if (done) {
        return;
      }
      try {
        if (handle == this && current == cartridge && raw != null && lastWrite && !readOnly) {
          writeFilemarks(1); // as st does when the device is closed after a write
        }
      } finally {
        done = true;
        if (handle == this) {
          handle = null;
        }
      }
    }

    @Override
    public String toString() {
      return DriveLibrary.this + (cartridge.label == null ? " (blank cartridge)"
          : " (cartridge " + cartridge.label.label() + ")") + (readOnly ? " (read-only)" : "");
    }
  }
}
