package dev.shade.offhost.tape;

import dev.shade.nativeio.FileHandle;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.Reader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * A tape library on disk: a directory of cartridge files in numbered slots and a few drives,
 * for tests and for staging backups on disk before they go to real tape.
 *
 * <p>Only one process opens a library at a time (an exclusive {@code flock} on
 * {@code library.lock}, held until {@link #close()}); a second one fails at once with a message
 * that says so. Not thread-safe: one thread uses a library and its drives at a time.
 */
public final class VirtualTapeLibrary implements TapeLibrary {
  /*
   * Layout of DIR:
   *   library.properties   format, slots, drives, capacity, earlyWarningZone, blockSize, created,
   *                        and drive.N.slot=S for each loaded drive; rewritten atomically
   *                        (temporary file, fsync, rename, fsync of DIR) on load and unload
   *   library.lock         the flock of the process that has the library open
   *   slot-0001.tape ...   one CartridgeFile per slot (see its class comment for the format)
   *
   * What a cartridge holds (label, pool, files) is read from the cartridge itself every time,
   * never cached in library.properties, so the tapes are the only truth: the label is file 0.
   *
   * Drives: load(drive, slot) opens a VirtualTapeDrive at the beginning of the tape and
   * remembers the slot in library.properties; a library opened later finds the cartridge still
   * in that drive (drive() gives a handle at the beginning of the tape, as a drive is after a
   * power cycle). Closing a drive handle flushes it and leaves the cartridge loaded; unload()
   * puts it back into its slot. Reading a cartridge with cat (openForReading) does not move it:
   * it is read where it is, with a read-only handle of its own.
   */

  static final String FORMAT = "shade-vtl-1";
  static final String PROPERTIES = "library.properties";
  static final String LOCK = "library.lock";
  private static final Pattern KIND = Pattern.compile("shade-([a-z0-9-]+)\\.json");
  /** How much of a tape file's beginning is read to tell what it holds. */
  private static final int PEEK_BYTES = 64 * 1024;

  /** The library's directory. */
  private final Path dir;
  /** Its shape. */
  private final LibraryConfig config;
  /** When it was created. */
  private final Instant created;
  /** The lock file, locked while this object is open. */
  private final FileHandle lock;
  /** Slot in each drive, 0 when empty. */
  private final int[] loaded;
  /** The open handle of each drive, null when none. */
  private final VirtualTapeDrive[] handles;
  /** Open cartridge files by slot, opened on first use. */
  private final Map<Integer, CartridgeFile> cartridges = new HashMap<>();
  /**
   * The tape files of each open cartridge as {@link #files} last listed them, with the
   * cartridge's {@link CartridgeFile#changes()} then: listing reads the start of every tape
   * file, which a restore of a chain of 24 archives did 24 times over the same cartridge.
   */
  private final Map<CartridgeFile, ListedFiles> listed = new IdentityHashMap<>();
  /** Set by close. */
  private boolean closed;

  /** A cartridge's tape files, listed when its index had changed {@code changes} times. */
  private record ListedFiles(long changes, List<TapeFileInfo> files) {}

  private VirtualTapeLibrary(Path dir, LibraryConfig config, Instant created, FileHandle lock, int[] loaded) {
    this.dir = dir;
    this.config = config;
    this.created = created;
    this.lock = lock;
    this.loaded = loaded;
    this.handles = new VirtualTapeDrive[config.drives()];
  }

  /** True if {@code dir} holds a virtual tape library. */
  public static boolean isLibrary(Path dir) {
    return Files.isRegularFile(dir.resolve(PROPERTIES));
  }

  /**
   * Creates a library in {@code dir} (created if missing, otherwise it must be empty) with
   * {@code config.slots()} blank cartridges, every drive empty; returns it open.
   */
  public static VirtualTapeLibrary create(Path dir, LibraryConfig config) throws IOException {
    if (Files.exists(dir) && !Files.isDirectory(dir)) {
      throw new TapeException("not a directory: " + dir);
    }
    if (Files.isDirectory(dir)) {
      try (Stream<Path> entries = Files.list(dir)) {
        if (entries.findAny().isPresent()) {
          throw new TapeException(isLibrary(dir) ? "a tape library already exists in " + dir
              : "directory is not empty, so no tape library is created there: " + dir);
        }
      }
    }
    Files.createDirectories(dir);
    FileHandle lock = lock(dir);
    try {
      for (int s = 1; s <= config.slots(); s++) {
        CartridgeFile.create(cartridgePath(dir, s), config.capacity(), config.earlyWarningZone()).close();
      }
      VirtualTapeLibrary lib = new VirtualTapeLibrary(dir, config, Instant.ofEpochMilli(System.currentTimeMillis()),
          lock, new int[config.drives()]);
      lib.saveProperties();
      return lib;
    } catch (IOException | RuntimeException e) {
      lock.close();
      throw e;
    }
  }

  /** {@link #create(Path, LibraryConfig)} with one drive, 256 KiB blocks and the default zone. */
  public static VirtualTapeLibrary create(Path dir, int slots, long capacityBytes) throws IOException {
    return create(dir, LibraryConfig.of(slots, capacityBytes));
  }

  /** Opens the library in {@code dir}. */
  public static VirtualTapeLibrary open(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new TapeException("tape library directory does not exist: " + dir);
    }
    if (!isLibrary(dir)) {
      throw new TapeException("not a tape library (no " + PROPERTIES + "): " + dir);
    }
    FileHandle lock = lock(dir);
    try {
      Properties p = new Properties();
      try (Reader r = Files.newBufferedReader(dir.resolve(PROPERTIES), StandardCharsets.UTF_8)) {
        p.load(r);
      }
      if (!FORMAT.equals(p.getProperty("format"))) {
        throw new TapeException("tape library format '" + p.getProperty("format") + "' is not supported (expected "
            + FORMAT + "): " + dir);
      }
      LibraryConfig config;
      try {
        config = new LibraryConfig(Integer.parseInt(p.getProperty("slots")), Integer.parseInt(p.getProperty("drives")),
            Long.parseLong(p.getProperty("capacity")), Long.parseLong(p.getProperty("earlyWarningZone")),
            Integer.parseInt(p.getProperty("blockSize")));
      } catch (RuntimeException e) {
        throw new TapeException("tape library properties are damaged (" + e.getMessage() + "): "
            + dir.resolve(PROPERTIES), e);
      }
      int[] loaded = new int[config.drives()];
      for (int d = 0; d < loaded.length; d++) {
        String s = p.getProperty("drive." + d + ".slot");
        loaded[d] = s == null ? 0 : Integer.parseInt(s);
      }
      return new VirtualTapeLibrary(dir, config, Instant.parse(p.getProperty("created")), lock, loaded);
    } catch (IOException | RuntimeException e) {
      lock.close();
      throw e;
    }
  }

  private static FileHandle lock(Path dir) throws IOException {
    Path path = dir.resolve(LOCK);
    FileHandle lock = FileHandle.create(path);
    try {
      if (!lock.lock(true, false)) {
        throw new TapeException("tape library is in use by another process (it holds the lock on " + path + "): " + dir);
      }
      return lock;
    } catch (IOException | RuntimeException e) {
      lock.close();
      throw e;
    }
  }

  static Path cartridgePath(Path dir, int slot) {
    return dir.resolve(String.format("slot-%04d.tape", slot));
  }

  @Override
  public Path directory() {
    return dir;
  }

  /** The drives' block size, {@code config().blockSize()}. */
  @Override
  public int blockSize() {
    return config.blockSize();
  }

  /** The number of slots, {@code config().slots()}. */
  @Override
  public int slots() {
    return config.slots();
  }

  public LibraryConfig config() {
    return config;
  }

  public Instant created() {
    return created;
  }

  private void requireOpen() throws TapeException {
    if (closed) {
      throw new TapeException("tape library is closed: " + dir);
    }
  }

  private void checkSlot(int slot) {
    if (slot < 1 || slot > config.slots()) {
      throw new IllegalArgumentException("slot must be 1 to " + config.slots() + ": " + slot);
    }
  }

  private void checkDrive(int drive) {
    if (drive < 0 || drive >= config.drives()) {
      throw new IllegalArgumentException("drive must be 0 to " + (config.drives() - 1) + ": " + drive);
    }
  }

  private CartridgeFile cartridge(int slot) throws IOException {
    requireOpen();
    checkSlot(slot);
    CartridgeFile c = cartridges.get(slot);
    if (c == null) {
      c = CartridgeFile.open(cartridgePath(dir, slot));
      cartridges.put(slot, c);
    }
    return c;
  }

  /** The slot whose cartridge is in {@code drive}, if any. */
  public OptionalInt loadedSlot(int drive) {
    checkDrive(drive);
    return loaded[drive] == 0 ? OptionalInt.empty() : OptionalInt.of(loaded[drive]);
  }

  /** The drive that holds the cartridge of {@code slot}, or -1. */
  public int driveOf(int slot) {
    for (int d = 0; d < loaded.length; d++) {
      if (loaded[d] == slot) {
        return d;
      }
    }
    return -1;
  }

  /** {@link #load(int, int)} into drive 0. */
  public TapeDrive load(int slot) throws IOException {
    return load(0, slot);
  }

  /**
   * Moves the cartridge of {@code slot} into {@code drive} and returns the drive, at the
   * beginning of the tape. Loading the cartridge that is already there returns the drive again,
   * rewound.
   */
  public TapeDrive load(int drive, int slot) throws IOException {
    requireOpen();
    checkDrive(drive);
    checkSlot(slot);
    if (loaded[drive] == slot) {
      TapeDrive d = drive(drive);
      d.rewind();
      return d;
    }
    if (loaded[drive] != 0) {
      throw new TapeException("drive " + drive + " holds the cartridge of slot " + loaded[drive]
          + "; unload it first: " + dir);
    }
    int other = driveOf(slot);
    if (other >= 0) {
      throw new TapeException("the cartridge of slot " + slot + " is in drive " + other + "; unload it first: " + dir);
    }
    cartridge(slot); // a damaged cartridge fails here, before anything moves
    loaded[drive] = slot;
    try {
      saveProperties();
    } catch (IOException | RuntimeException e) {
      loaded[drive] = 0;
      throw e;
    }
    return drive(drive);
  }

  /**
   * The open handle of {@code drive}; a new one at the beginning of the tape if the last was
   * closed or the library was reopened. Fails if the drive is empty.
   */
  public TapeDrive drive(int drive) throws IOException {
    requireOpen();
    checkDrive(drive);
    if (loaded[drive] == 0) {
      throw new TapeException("drive " + drive + " is empty; load a cartridge first: " + dir);
    }
    if (handles[drive] == null) {
      int slot = loaded[drive];
      handles[drive] = new VirtualTapeDrive(cartridge(slot), "drive " + drive + " (slot " + slot + ") of " + dir,
          config.blockSize(), false, () -> handles[drive] = null);
    }
    return handles[drive];
  }

  /** Puts the cartridge in {@code drive} back into its slot (closing the drive's handle first). */
  public void unload(int drive) throws IOException {
    requireOpen();
    checkDrive(drive);
    if (loaded[drive] == 0) {
      throw new TapeException("drive " + drive + " is empty; there is nothing to unload: " + dir);
    }
    if (handles[drive] != null) {
      handles[drive].close();
    }
    int slot = loaded[drive];
    cartridge(slot).sync();
    loaded[drive] = 0;
    try {
      saveProperties();
    } catch (IOException | RuntimeException e) {
      loaded[drive] = slot;
      throw e;
    }
  }

  /**
   * A read-only drive of its own on the cartridge of {@code slot}, wherever it is (in its slot or
   * in a drive), at the beginning of the tape; the cartridge does not move. For reading a tape
   * file out ({@code shade tape cat}) and for scans.
   */
  public TapeDrive openForReading(int slot) throws IOException {
    return new VirtualTapeDrive(cartridge(slot), "slot " + slot + " of " + dir + " (read-only)", config.blockSize(),
        true, () -> { });
  }

  /** The cartridge of {@code slot} and what is on it. */
  public CartridgeInfo cartridgeInfo(int slot) throws IOException {
    CartridgeFile c = cartridge(slot);
    Optional<TapeLabel> label = readLabel(c);
    return new CartridgeInfo(slot, label.map(TapeLabel::label).orElse(null), label.map(TapeLabel::pool).orElse(null),
        label.map(TapeLabel::sequence).orElse(0), driveOf(slot), c.capacity(), c.usedBytes(),
        c.usedBytes() > c.capacity() - c.earlyWarningZone(), files(c));
  }

  /** Every cartridge, by slot. */
  public List<CartridgeInfo> list() throws IOException {
    List<CartridgeInfo> all = new ArrayList<>();
    for (int s = 1; s <= config.slots(); s++) {
      all.add(cartridgeInfo(s));
    }
    return all;
  }

  /** The cartridge labelled {@code label}, if any. */
  public Optional<CartridgeInfo> find(String label) throws IOException {
    for (int s = 1; s <= config.slots(); s++) {
      CartridgeInfo c = cartridgeInfo(s);
      if (label.equals(c.label())) {
        return Optional.of(c);
      }
    }
    return Optional.empty();
  }

  /** The label of the cartridge in {@code slot}, if it has one. */
  public Optional<TapeLabel> label(int slot) throws IOException {
    return readLabel(cartridge(slot));
  }

  /**
   * Labels the cartridge of {@code slot} {@code label} in {@code pool}, with the next sequence
   * number of that pool, and returns the label. The tape is erased: the label becomes file 0 and
   * the end of data. A labelled cartridge is relabelled only with {@code force}; a label another
   * cartridge has is refused.
   */
  public TapeLabel writeLabel(int slot, String label, String pool, boolean force) throws IOException {
    TapeLabel.requireName("label", label);
    TapeLabel.requireName("pool", pool);
    CartridgeFile c = cartridge(slot);
    Optional<TapeLabel> existing = readLabel(c);
    if (existing.isPresent() && !force) {
      throw new TapeException("the cartridge of slot " + slot + " is already labelled '" + existing.get().label()
          + "' (pool " + existing.get().pool() + "); relabelling erases it: " + dir);
    }
    int sequence = 1;
    for (int s = 1; s <= config.slots(); s++) {
      if (s == slot) {
        continue;
      }
      Optional<TapeLabel> other = readLabel(cartridge(s));
      if (other.isPresent() && other.get().label().equals(label)) {
        throw new TapeException("label '" + label + "' is already on the cartridge of slot " + s + ": " + dir);
      }
      if (other.isPresent() && other.get().pool().equals(pool)) {
        sequence = Math.max(sequence, other.get().sequence() + 1);
      }
    }
    TapeLabel l = TapeLabel.of(label, pool, sequence);
    try (VirtualTapeDrive d = new VirtualTapeDrive(c, "slot " + slot + " of " + dir + " (labelling)",
        config.blockSize(), false, () -> { })) {
      l.write(d);
    }
    return l;
  }

  private Optional<TapeLabel> readLabel(CartridgeFile c) throws IOException {
    if (c.frames() == 0 || c.isFilemark(0)) {
      return Optional.empty();
    }
    return TapeLabel.parse(new ByteArrayInputStream(peek(c, 0)));
  }

  /** The tape files of {@code c} from its index; listed again only when the index changed. */
  private List<TapeFileInfo> files(CartridgeFile c) throws IOException {
    ListedFiles l = listed.get(c);
    if (l == null || l.changes() != c.changes()) {
      l = new ListedFiles(c.changes(), List.copyOf(listFiles(c)));
      listed.put(c, l);
    }
    return l.files();
  }

  private List<TapeFileInfo> listFiles(CartridgeFile c) throws IOException {
    List<TapeFileInfo> files = new ArrayList<>();
    int start = 0;
    long bytes = 0;
    for (int f = 0; f <= c.frames(); f++) {
      boolean end = f == c.frames();
      if (end || c.isFilemark(f)) {
        long records = f - start;
        if (!end || records > 0) {
          files.add(new TapeFileInfo(files.size(), start, records, bytes, records == 0 ? "empty" : kind(c, start, !end),
              !end));
        }
        start = f + 1;
        bytes = 0;
      } else {
        bytes += c.length(f);
      }
    }
    return files;
  }

  /**
   * What the file starting at {@code frame} holds: see {@link TapeFileInfo#kind()}. A closed file's
   * kind is kept in the cartridge's index (a note), so the next open of the library does not read
   * and parse the beginning of every tape file again.
   */
  private static String kind(CartridgeFile c, int frame, boolean closed) throws IOException {
    if (!closed) {
      return kind(c, frame);
    }
    String note = c.note(frame);
    if (note != null && note.startsWith(KIND_NOTE)) {
      return note.substring(KIND_NOTE.length());
    }
    String k = kind(c, frame);
    c.note(frame, KIND_NOTE + k);
    return k;
  }

  /** How a kind note starts; a new way of telling kinds apart gets a new prefix, so older notes are not taken. */
  private static final String KIND_NOTE = "kind1:";

  /** What the file starting at {@code frame} holds, from its first bytes. */
  private static String kind(CartridgeFile c, int frame) throws IOException {
    // the first KIND_PREFIX bytes hold the first member's headers (a PAX header, then the member's: shade's are
    // small), so a listing reads that much of each file rather than its first records whole (256 KiB each, and
    // a library lists every tape file of a cartridge when it opens it); unless they name a kind, the records
    // themselves, CRC-checked, decide as before (a catalog rebuild goes by the kinds)
    byte[] prefix = new byte[KIND_PREFIX];
    ByteBuffer b = ByteBuffer.wrap(prefix);
    for (int f = frame; f < c.frames() && !c.isFilemark(f) && b.hasRemaining(); f++) {
      c.readRecordPrefix(f, b);
    }
    String k = kindOf(Arrays.copyOf(prefix, b.position()));
    return k != null && !k.equals("data") ? k : Objects.requireNonNullElse(kindOf(peek(c, frame)), "data");
  }

  /** Bytes of a tape file {@link #kind} reads first. */
  private static final int KIND_PREFIX = 8192;

  /** The kind the tar in {@code data} names with its first member; "data" when it is not a tar; null when cut short. */
  private static String kindOf(byte[] data) throws TapeException {
    try {
      TarArchiveInputStream tar = new TarArchiveInputStream(new ByteArrayInputStream(data), "UTF-8");
      TarArchiveEntry e = tar.getNextEntry();
      if (e != null) {
        Matcher m = KIND.matcher(e.getName());
        if (m.matches()) {
          return m.group(1);
        }
      }
      return "data";
    } catch (java.io.EOFException e) {
      return null; // the headers go on past what was read
    } catch (IOException | IllegalArgumentException e) {
      if (e instanceof TapeException) {
        throw (TapeException) e;
      }
      return "data"; // not a tar
    }
  }

  /** The first records of the file starting at {@code frame}, up to about {@link #PEEK_BYTES}. */
  private static byte[] peek(CartridgeFile c, int frame) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int f = frame; f < c.frames() && !c.isFilemark(f) && out.size() < PEEK_BYTES; f++) {
      ByteBuffer b = ByteBuffer.allocate(c.length(f));
      c.readRecord(f, b);
      out.write(b.array(), 0, b.position());
    }
    return out.toByteArray();
  }

  /** Writes library.properties atomically. */
  private void saveProperties() throws IOException {
    Properties p = new Properties();
    p.setProperty("format", FORMAT);
    p.setProperty("slots", Integer.toString(config.slots()));
    p.setProperty("drives", Integer.toString(config.drives()));
    p.setProperty("capacity", Long.toString(config.capacity()));
    p.setProperty("earlyWarningZone", Long.toString(config.earlyWarningZone()));
    p.setProperty("blockSize", Integer.toString(config.blockSize()));
    p.setProperty("created", created.toString());
    for (int d = 0; d < loaded.length; d++) {
      if (loaded[d] != 0) {
        p.setProperty("drive." + d + ".slot", Integer.toString(loaded[d]));
      }
    }
    Path tmp = dir.resolve(PROPERTIES + ".tmp");
    try (OutputStream out = Files.newOutputStream(tmp)) {
      p.store(out, "shade virtual tape library");
    }
    try (FileHandle h = FileHandle.openReadWrite(tmp)) {
      h.fsync();
    }
    Files.move(tmp, dir.resolve(PROPERTIES), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    try (FileHandle d = FileHandle.open(dir, FileHandle.O_RDONLY | FileHandle.O_DIRECTORY, 0)) {
      d.fsync();
    }
  }

  /** Flushes every drive and cartridge, and releases the lock; the drives' handles are closed. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    IOException failure = null;
    for (int d = 0; d < handles.length; d++) {
      try {
        if (handles[d] != null) {
          handles[d].close();
        }
      } catch (IOException e) {
        failure = add(failure, e);
      }
    }
    for (CartridgeFile c : cartridges.values()) {
      try {
        c.close();
      } catch (IOException e) {
        failure = add(failure, e);
      }
    }
    cartridges.clear();
    listed.clear();
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

  private static IOException add(IOException first, IOException next) {
    if (first == null) {
      return next;
    }
    first.addSuppressed(next);
    return first;
  }

  @Override
  public String toString() {
    return "tape library " + dir;
  }
}
