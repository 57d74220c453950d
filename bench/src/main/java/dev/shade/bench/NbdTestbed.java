package dev.shade.bench;

import dev.shade.nbd.server.NbdServer;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.requestor.export.VolumeExports;
import java.io.Closeable;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.function.Consumer;

/** The images, volumes and NBD servers that {@code shade bench nbd} measures, all in one work directory. */
final class NbdTestbed implements Closeable {
  /*
   * Every target serves an export of the same size whose every byte was written before the
   * measurements (random data, each 4 KiB page stamped with its offset so no two pages are
   * alike), made durable, on the same file system:
   *
   *   nbdkit_file            nbdkit's file plugin on a plain file (its default cache: the page cache)
   *   qemu_nbd_raw           qemu-nbd -f raw on a plain file
   *   qemu_nbd_qcow2_chain8  qemu-nbd -f qcow2 on the top of a chain: a qcow2 base holding the
   *                          data and 8 external snapshots (qemu-img create -b prev -F qcow2)
   *   shade_origin           a shade volume without snapshots
   *   shade_origin_snap8     a shade volume with 8 snapshots
   *   shade_snapshot         the oldest of those 8 snapshots (read-only)
   *
   * Between two snapshots the same "history" is written on both sides: before layer i (1..8),
   * 1 MiB at every 1 MiB chunk whose index is i-1 modulo 16, filled with the byte 0x10 + i.
   * So reads of the qcow2 top find a sixteenth of the data in each of the 8 upper layers and
   * half of it only in the base, and the oldest shade snapshot finds each sixteenth in another
   * snapshot's table. Both use 64 KiB granularity (qcow2 clusters, shade blocks).
   *
   * qemu-nbd runs with --cache=writeback: like nbdkit's file plugin and like shade (pwrite,
   * reads through mmap), it goes through the host page cache, and a flush is an fdatasync. Its
   * I/O engine is --aio=io_uring unless told otherwise: with the default, threads, 4 KiB random
   * reads from the page cache ran at a quarter of the rate on the 2-core test machine (15k
   * against 57-63k IOPS), which would compare shade with a handicapped qemu-nbd. A qemu-nbd
   * that cannot use io_uring is started again with threads, and the output says so. The shade
   * server runs in this JVM (NbdServer on a Unix socket), the others as child processes on
   * Unix sockets.
   */

  static final String NBDKIT_FILE = "nbdkit_file";
  static final String QEMU_NBD_RAW = "qemu_nbd_raw";
  static final String QEMU_NBD_QCOW2 = "qemu_nbd_qcow2_chain8";
  static final String SHADE_ORIGIN = "shade_origin";
  static final String SHADE_ORIGIN_SNAP8 = "shade_origin_snap8";
  static final String SHADE_SNAPSHOT = "shade_snapshot";
  /** Every target in the order the results list them. */
  static final List<String> ALL = List.of(NBDKIT_FILE, QEMU_NBD_RAW, QEMU_NBD_QCOW2, SHADE_ORIGIN, SHADE_ORIGIN_SNAP8, SHADE_SNAPSHOT);

  /** Snapshots on the shade side, external snapshots (backing files below the top) on the qcow2 side. */
  static final int LAYERS = 8;
  /** The history of a layer covers every chunk whose index is the layer's modulo this. */
  private static final int HISTORY_STRIDE = 16;
  private static final long MIB = 1L << 20;
  private static final int PAGE = 4096;
  private static final Duration SETUP_TIMEOUT = Duration.ofMinutes(10);
  private static final Duration START_TIMEOUT = Duration.ofSeconds(30);
  private static final String PAGE_CACHE = "host page cache; flush = fdatasync";

  /** The work directory; everything the testbed makes is in it, and it is deleted on close. */
  private final Path work;
  /** Size of every export in bytes. */
  private final long size;
  /** Where the servers and tools are found. */
  private final Programs.Lookup tools;
  /** Gets one line per setup step. */
  private final Consumer<String> progress;
  /** qemu-nbd's --aio: the one asked for until a qemu-nbd refuses it, then threads. */
  private String qemuAio;
  /** The targets asked for, in result order. */
  final List<NbdTarget> targets = new ArrayList<>();
  /** Server processes started so far; stopped on close. */
  private final List<Process> processes = new ArrayList<>();
  /** Shade volumes opened so far; closed on close, after the server. */
  private final List<Volume> volumes = new ArrayList<>();
  /** The in-process server of the shade targets, or null before it starts. */
  private NbdServer shadeServer;
  /** True once close has run; guards against the shutdown hook and the normal path both closing. */
  private boolean closed;

  NbdTestbed(Path work, long size, Set<String> wanted, String qemuAio, Programs.Lookup tools, Consumer<String> progress) {
    this.work = work;
    this.size = size;
    this.qemuAio = qemuAio;
    this.tools = tools;
    this.progress = progress;
    String pageCache = PAGE_CACHE;
    Map<String, NbdTarget> all = Map.of(
        NBDKIT_FILE, new NbdTarget(NBDKIT_FILE, "nbdkit file plugin on a plain file", false,
            "nbdkit file plugin defaults (cache=default: " + pageCache + ")"),
        QEMU_NBD_RAW, new NbdTarget(QEMU_NBD_RAW, "qemu-nbd -f raw on a plain file", false, null),
        QEMU_NBD_QCOW2, new NbdTarget(QEMU_NBD_QCOW2, "qemu-nbd -f qcow2 on the top of a base and "
            + LAYERS + " external snapshots (64 KiB clusters)", false, null),
        SHADE_ORIGIN, new NbdTarget(SHADE_ORIGIN, "shade volume origin, no snapshots (64 KiB blocks)", false,
            "shade (pwrite, reads through mmap: " + pageCache + " of origin and journal)"),
        SHADE_ORIGIN_SNAP8, new NbdTarget(SHADE_ORIGIN_SNAP8, "shade volume origin with " + LAYERS
            + " snapshots (64 KiB blocks)", false,
            "shade (pwrite, reads through mmap: " + pageCache + " of origin, diff area and journal)"),
        SHADE_SNAPSHOT, new NbdTarget(SHADE_SNAPSHOT, "oldest of the " + LAYERS
            + " snapshots of shade_origin_snap8, read-only", true,
            "shade (reads through mmap: host page cache)"));
    for (String name : ALL) {
      if (wanted.contains(name)) {
        targets.add(all.get(name));
      }
    }
  }

  Optional<NbdTarget> target(String name) {
    return targets.stream().filter(t -> t.name.equals(name)).findFirst();
  }

  /** Writes every image and volume, then starts every server; a target that cannot be had is skipped, with the reason. */
  void setUp() throws InterruptedException {
    target(NBDKIT_FILE).ifPresent(t -> attempt(t, () -> setUpNbdkit(t)));
    target(QEMU_NBD_RAW).ifPresent(t -> attempt(t, () -> setUpQemuRaw(t)));
    target(QEMU_NBD_QCOW2).ifPresent(t -> attempt(t, () -> setUpQcow2Chain(t)));
    List<NbdTarget> shade = targets.stream().filter(t -> t.name.startsWith("shade_")).toList();
    if (!shade.isEmpty()) {
      attempt(shade, () -> setUpShade(shade));
    }
    if (Thread.interrupted()) {
      throw new InterruptedException("setting up the NBD benchmark");
    }
  }

  /** Step of the setup that may fail; its failure skips the targets it was for. */
  private interface Step {
    void run() throws IOException, InterruptedException;
  }

  private void attempt(NbdTarget t, Step step) {
    attempt(List.of(t), step);
  }

  private void attempt(List<NbdTarget> ts, Step step) {
    try {
      step.run();
    } catch (IOException | RuntimeException e) {
      String reason = "setup failed: " + (e.getMessage() == null ? e.toString() : e.getMessage());
      ts.forEach(t -> t.skip(reason));
      progress.accept(ts.stream().map(t -> t.name).toList() + " skipped: " + reason);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      ts.forEach(t -> t.skip("interrupted"));
    }
  }

  /** The path of {@code program}, or null after skipping {@code t} for want of it. */
  private Path require(NbdTarget t, String program, String debianPackage) {
    Optional<Path> p = tools.find(program);
    if (p.isEmpty()) {
      t.skip(program + " not installed (Debian: apt-get install " + debianPackage + ")");
      progress.accept(t.name + " skipped: " + t.skipped);
      return null;
    }
    return p.get();
  }

  // ---------------------------------------------------------------- the targets

  private void setUpNbdkit(NbdTarget t) throws IOException, InterruptedException {
    Path nbdkit = require(t, "nbdkit", "nbdkit");
    if (nbdkit == null) {
      return;
    }
    Path image = work.resolve("nbdkit.img");
    progress.accept("writing " + mib(size) + " MiB of data for " + t.name);
    fillFile(image);
    Path sock = work.resolve("nbdkit.sock");
    startProcess(t, sock, List.of(nbdkit.toString(), "--foreground", "--exit-with-parent", "--unix", sock.toString(),
        "file", "file=" + image));
  }

  private void setUpQemuRaw(NbdTarget t) throws IOException, InterruptedException {
    Path qemuNbd = require(t, "qemu-nbd", "qemu-utils");
    if (qemuNbd == null) {
      return;
    }
    Path image = work.resolve("qemu.img");
    progress.accept("writing " + mib(size) + " MiB of data for " + t.name);
    fillFile(image);
    startQemuNbd(t, qemuNbd, "raw", work.resolve("qemu-raw.sock"), image);
  }

  private void setUpQcow2Chain(NbdTarget t) throws IOException, InterruptedException {
    Path qemuNbd = require(t, "qemu-nbd", "qemu-utils");
    Path qemuImg = qemuNbd == null ? null : require(t, "qemu-img", "qemu-utils");
    Path qemuIo = qemuImg == null ? null : require(t, "qemu-io", "qemu-utils");
    if (qemuIo == null) {
      return;
    }
    progress.accept("writing " + mib(size) + " MiB of data and a chain of " + LAYERS + " qcow2 snapshots for " + t.name);
    Path raw = work.resolve("chain-base.raw");
    fillFile(raw);
    Path layer = work.resolve("chain-0.qcow2");
    exec(List.of(qemuImg.toString(), "convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=64k",
        raw.toString(), layer.toString()));
    Files.delete(raw);
    for (int i = 1; i <= LAYERS; i++) {
      Path next = work.resolve("chain-" + i + ".qcow2");
      exec(List.of(qemuImg.toString(), "create", "-q", "-f", "qcow2", "-o", "cluster_size=64k",
          "-b", layer.toString(), "-F", "qcow2", next.toString()));
      List<String> write = new ArrayList<>(List.of(qemuIo.toString(), "-f", "qcow2"));
      for (long offset : history(i)) {
        write.add("-c");
        write.add(String.format(Locale.ROOT, "write -q -P 0x%02x %d %d", pattern(i), offset, MIB));
      }
      write.add(next.toString());
      exec(write);
      layer = next;
    }
    startQemuNbd(t, qemuNbd, "qcow2", work.resolve("qemu-qcow2.sock"), layer);
  }

  /** Starts qemu-nbd with the chosen --aio, falling back to threads (and saying so) if it refuses it. */
  private void startQemuNbd(NbdTarget t, Path qemuNbd, String format, Path sock, Path image)
      throws IOException, InterruptedException {
    try {
      startProcess(t, sock, qemuNbd(qemuNbd, format, sock, image, qemuAio));
    } catch (IOException e) {
      if (qemuAio.equals("threads")) {
        throw e;
      }
      progress.accept("qemu-nbd --aio=" + qemuAio + " failed (" + e.getMessage() + "); using --aio=threads");
      qemuAio = "threads";
      Files.deleteIfExists(sock);
      startProcess(t, sock, qemuNbd(qemuNbd, format, sock, image, qemuAio));
    }
    t.cache = "qemu-nbd " + qemuOptions() + " (" + PAGE_CACHE + ")";
  }

  /** The cache and I/O options every qemu-nbd target runs with. */
  String qemuOptions() {
    return "--cache=writeback --aio=" + qemuAio;
  }

  private static List<String> qemuNbd(Path qemuNbd, String format, Path sock, Path image, String aio) {
    return List.of(qemuNbd.toString(), "-f", format, "--cache=writeback", "--aio=" + aio, "--persistent",
        "--socket=" + sock, image.toString());
  }

  private void setUpShade(List<NbdTarget> shade) throws IOException {
    boolean plain = shade.stream().anyMatch(t -> t.name.equals(SHADE_ORIGIN));
    boolean snapped = shade.stream().anyMatch(t -> !t.name.equals(SHADE_ORIGIN));
    if (plain) {
      progress.accept("writing " + mib(size) + " MiB of data into a shade volume for " + SHADE_ORIGIN);
      Volume v = Volume.create(work.resolve("shade0"), VolumeConfig.of(size));
      volumes.add(v);
      fill(v::write);
      v.flush();
    }
    if (snapped) {
      progress.accept("writing " + mib(size) + " MiB of data and " + LAYERS + " snapshots into a shade volume for "
          + SHADE_ORIGIN_SNAP8 + " and " + SHADE_SNAPSHOT);
      // room for the history and a copy of every block: a full diff area would delete snapshots
      Volume v = Volume.create(work.resolve("shade8"), VolumeConfig.of(size).withDiffMax(2 * size));
      volumes.add(v);
      fill(v::write);
      v.flush();
      ByteBuffer chunk = ByteBuffer.allocateDirect((int) MIB);
      for (int i = 1; i <= LAYERS; i++) {
        v.createSnapshot("s" + i);
        for (long offset : history(i)) {
          chunk.clear();
          while (chunk.hasRemaining()) {
            chunk.put((byte) pattern(i));
          }
          v.write(offset, chunk.flip());
        }
        v.flush();
      }
    }
    Path sock = work.resolve("shade.sock");
    shadeServer = NbdServer.start(new VolumeExports(volumes), new NbdServer.Config().socket(sock));
    List<String> server = List.of("in-process NbdServer on a Unix socket (this JVM; 16 workers)");
    for (NbdTarget t : shade) {
      String export = switch (t.name) {
        case SHADE_ORIGIN -> "shade0";
        case SHADE_ORIGIN_SNAP8 -> "shade8";
        default -> "shade8@s1";
      };
      t.server = server;
      t.uri = "nbd+unix:///" + export + "?socket=" + sock;
    }
  }

  // ---------------------------------------------------------------- servers

  /** Starts a server process listening on {@code sock} and waits until it accepts connections. */
  private void startProcess(NbdTarget t, Path sock, List<String> command) throws IOException, InterruptedException {
    Path log = work.resolve(t.name + ".log");
    Process p = Programs.start(work, log, command);
    synchronized (this) {
      processes.add(p);
    }
    t.server = command;
    long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
    while (true) {
      if (!p.isAlive()) {
        throw new IOException("`" + String.join(" ", command) + "` exited " + p.exitValue() + ": " + Programs.tail(log, 3));
      }
      if (Files.exists(sock) && accepts(sock)) {
        break;
      }
      if (System.nanoTime() > deadline) {
        throw new IOException("`" + String.join(" ", command) + "` did not listen on " + sock + " within "
            + START_TIMEOUT.toSeconds() + " s: " + Programs.tail(log, 3));
      }
      Thread.sleep(20);
    }
    t.uri = "nbd+unix:///?socket=" + sock;
  }

  private static boolean accepts(Path sock) {
    try (SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      return c.connect(UnixDomainSocketAddress.of(sock));
    } catch (IOException e) {
      return false;
    }
  }

  private void exec(List<String> command) throws IOException, InterruptedException {
    Programs.Result r = Programs.run(work, SETUP_TIMEOUT, command);
    if (!r.ok()) {
      throw new IOException(r.failure());
    }
  }

  // ---------------------------------------------------------------- data

  /** A sink of data at an offset, like {@link Volume#write}. */
  private interface Sink {
    void write(long offset, ByteBuffer data) throws IOException;
  }

  private void fillFile(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      fill((offset, data) -> {
        long at = offset;
        while (data.hasRemaining()) {
          at += ch.write(data, at);
        }
      });
      ch.force(false);
    }
  }

  /** Writes {@code size} bytes of data to {@code sink}, 1 MiB at a time, every 4 KiB page unlike any other. */
  private void fill(Sink sink) throws IOException {
    ByteBuffer chunk = ByteBuffer.allocateDirect((int) MIB);
    byte[] random = new byte[(int) MIB];
    new Random(0x5eed).nextBytes(random);
    for (long offset = 0; offset < size; offset += MIB) {
      chunk.clear();
      chunk.put(random);
      for (int page = 0; page < MIB; page += PAGE) {
        chunk.putLong(page, offset + page);
      }
      chunk.clear().limit((int) Math.min(MIB, size - offset));
      sink.write(offset, chunk);
    }
  }

  /** Offsets of the 1 MiB chunks written between snapshot {@code layer} and the next. */
  private List<Long> history(int layer) {
    List<Long> offsets = new ArrayList<>();
    for (long chunk = layer - 1; (chunk + 1) * MIB <= size; chunk += HISTORY_STRIDE) {
      offsets.add(chunk * MIB);
    }
    return offsets;
  }

  private static int pattern(int layer) {
    return 0x10 + layer;
  }

  private static long mib(long bytes) {
    return bytes / MIB;
  }

  // ---------------------------------------------------------------- stop

  /** Stops the servers (SIGTERM; in-flight requests answered), closes the volumes and deletes the work directory. */
  @Override
  public synchronized void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    IOException first = null;
    for (Process p : processes) {
      try {
        Programs.stop(p, Duration.ofSeconds(10));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        p.destroyForcibly();
      }
    }
    if (shadeServer != null) {
      try {
        shadeServer.close();
      } catch (IOException e) {
        first = e;
      }
    }
    for (Volume v : volumes) {
      try {
        v.close();
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    try {
      dev.shade.cli.Directories.delete(work, false);
    } catch (IOException e) {
      first = first == null ? e : first;
    }
    if (first != null) {
      throw first;
    }
  }

}
