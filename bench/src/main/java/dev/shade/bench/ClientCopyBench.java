package dev.shade.bench;

import dev.shade.nativeio.StatVfs;
import dev.shade.nbd.client.ExportCopier;
import dev.shade.nbd.client.NbdClientConfig;
import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Copies one export served by nbdkit into a file, alternately with {@code nbdcopy} and with
 * shade's {@link ExportCopier}, with the same connections, request size and requests in flight,
 * and reports the throughput of each (min, median, max) and the ratio of the medians: the
 * benchmark of {@code shade bench client}.
 *
 * <p>{@code shade bench client} runs it ({@link #run}); {@code java -cp bench/target/shade-bench.jar
 * dev.shade.bench.ClientCopyBench [MiB] [runs] [connections] [requestKiB] [requests]} (defaults
 * 1024 5 4 256 64) runs it without the command line. The source is a non-sparse random file in
 * tmpfs (/dev/shm) served by {@code nbdkit file} over a Unix socket, and each copy goes to a fresh
 * file in tmpfs too, so the figures compare the two clients and not a disk. Two untimed copies of
 * each come first (they warm the JIT and the page cache).
 *
 * <p>Not thread-safe: one run at a time per thread; runs share nothing.
 */
public final class ClientCopyBench {
  private ClientCopyBench() {}

  /** Untimed copies of each client before the timed ones. */
  static final int WARMUP = 2;

  /** What shade's median must reach, as a fraction of nbdcopy's. */
  static final double TARGET = 0.9;

  /** Request size and requests in flight per connection, the same on both sides. */
  static final int REQUEST_SIZE = 256 << 10;
  static final int REQUESTS = 64;

  /** What to run. */
  public record Settings(Path baseDir, long bytes, int runs, int connections, int requestSize, int requests) {
    public Settings {
      if (bytes < (1 << 20) || runs < 1 || connections < 1 || requestSize < 4096 || requests < 1) {
        throw new IllegalArgumentException("bad settings: " + bytes + " bytes, " + runs + " runs, " + connections
            + " connections, " + requestSize + " bytes a request, " + requests + " requests");
      }
    }
  }

  /** Throughputs in MiB/s of every timed run of each client, in run order. */
  public record Figures(Settings settings, List<Double> nbdcopy, List<Double> shade) {
    public double nbdcopyMedian() {
      return median(nbdcopy);
    }

    public double shadeMedian() {
      return median(shade);
    }

    /** shade's median over nbdcopy's. */
    public double ratio() {
      return shadeMedian() / nbdcopyMedian();
    }

    /**
     * The median of the ratios of each pair of runs (shade's over the nbdcopy run just before
     * it): steadier than the ratio of medians when the machine's load changes during the run.
     */
    public double pairedRatio() {
      List<Double> r = new ArrayList<>();
      for (int i = 0; i < shade.size(); i++) {
        r.add(shade.get(i) / nbdcopy.get(i));
      }
      return median(r);
    }

    /** True when both ratios reach {@link #TARGET}. */
    public boolean targetMet() {
      return ratio() >= TARGET && pairedRatio() >= TARGET;
    }

    /** The figures as the ordered map that {@code shade bench client --json} prints. */
    Map<String, Object> toMap() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("ratio_paired_median", round(pairedRatio(), 3));
      m.put("ratio_of_medians", round(ratio(), 3));
      m.put("target", "shade >= " + TARGET + " x nbdcopy, both ratios");
      m.put("target_met", targetMet());
      m.put("nbdcopy_mib_s", spread(nbdcopy));
      m.put("shade_mib_s", spread(shade));
      List<Double> pairs = new ArrayList<>();
      for (int i = 0; i < shade.size(); i++) {
        pairs.add(round(shade.get(i) / nbdcopy.get(i), 3));
      }
      m.put("ratio_per_pair", pairs);
      m.put("bytes", settings.bytes());
      m.put("runs", settings.runs());
      m.put("warmup_runs", WARMUP);
      m.put("connections", settings.connections());
      m.put("request_size", settings.requestSize());
      m.put("requests_in_flight", settings.requests());
      return m;
    }

    private static Map<String, Object> spread(List<Double> v) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("min", round(min(v), 1));
      m.put("median", round(median(v), 1));
      m.put("max", round(max(v), 1));
      m.put("runs", v.stream().map(x -> round(x, 1)).toList());
      return m;
    }

    @Override
    public String toString() {
      return String.format(Locale.ROOT,
          "copy of %d MiB, %d connections, %d KiB requests, %d in flight each, %d runs%n"
              + "  nbdcopy: min %.0f  median %.0f  max %.0f MiB/s  %s%n"
              + "  shade:   min %.0f  median %.0f  max %.0f MiB/s  %s%n"
              + "  ratio shade/nbdcopy: %.2f of the medians, %.2f median of paired runs",
          settings.bytes() >> 20, settings.connections(), settings.requestSize() >> 10, settings.requests(), settings.runs(),
          min(nbdcopy), median(nbdcopy), max(nbdcopy), rounded(nbdcopy),
          min(shade), median(shade), max(shade), rounded(shade), ratio(), pairedRatio());
    }
  }

  public static void main(String[] args) throws Exception {
    long mib = args.length > 0 ? Long.parseLong(args[0]) : 1024;
    int runs = args.length > 1 ? Integer.parseInt(args[1]) : 5;
    int conns = args.length > 2 ? Integer.parseInt(args[2]) : 4;
    int kib = args.length > 3 ? Integer.parseInt(args[3]) : 256;
    int requests = args.length > 4 ? Integer.parseInt(args[4]) : 64;
    Path base = Path.of(System.getProperty("shade.bench.dir", "/dev/shm"));
    Figures f = measure(new Settings(base, mib << 20, runs, conns, kib << 10, requests));
    System.out.println(f);
  }

  /** Prepares the source, serves it, runs the copies and removes everything it made. */
  public static Figures measure(Settings s) throws IOException, InterruptedException {
    return measure(s, line -> {});
  }

  /**
   * {@link #measure(Settings)}, with one human-readable line per step to {@code progress}; fails
   * naming the package to install when nbdkit or nbdcopy is missing.
   */
  public static Figures measure(Settings s, Consumer<String> progress) throws IOException, InterruptedException {
    for (String[] tool : new String[][] {{"nbdkit", "nbdkit"}, {"nbdcopy", "libnbd-bin"}}) {
      if (Programs.Lookup.onPath().find(tool[0]).isEmpty()) {
        throw new IOException(tool[0] + " is not installed, and the benchmark needs it (Debian: apt-get install "
            + tool[1] + ")");
      }
    }
    Files.createDirectories(s.baseDir());
    long need = 2 * s.bytes() + (64L << 20);
    long available = StatVfs.of(s.baseDir()).availableBytes();
    if (available < need) {
      throw new IOException("not enough free space for the client benchmark in " + s.baseDir() + ": "
          + (available >> 20) + " MiB available, " + (need >> 20) + " MiB needed (the source and one copy)");
    }
    Path dir = Files.createTempDirectory(s.baseDir(), "shade-client-bench-");
    Process server = null;
    try {
      Path source = dir.resolve("source.img");
      progress.accept("writing " + (s.bytes() >> 20) + " MiB of random data into " + source);
      fillRandom(source, s.bytes());
      Path sock = dir.resolve("nbdkit.sock");
      Path log = dir.resolve("nbdkit.log");
      server = new ProcessBuilder("nbdkit", "-f", "--exit-with-parent", "-U", sock.toString(), "file", source.toString())
          .redirectErrorStream(true).redirectOutput(log.toFile()).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
          .start();
      waitFor(sock, server, log);
      String uri = "nbd+unix:///?socket=" + sock;
      Path dst = dir.resolve("copy.img");
      NbdClientConfig config = NbdClientConfig.builder(uri).build();
      ExportCopier copier = ExportCopier.builder(config).connections(s.connections()).requestSize(s.requestSize())
          .window(s.requests()).build();
      // warm-up, untimed: the page cache, nbdkit, and the JIT (shade's first copies of a
      // process spend some 0.2 s of CPU compiling; from the third on it uses no more CPU per GiB
      // than nbdcopy)
      for (int i = 0; i < WARMUP; i++) {
        progress.accept(String.format(Locale.ROOT, "warm-up %d/%d: nbdcopy %.0f MiB/s, shade %.0f MiB/s (not counted)",
            i + 1, WARMUP, nbdcopy(s, uri, dst), shade(copier, dst, s.bytes())));
      }
      List<Double> theirs = new ArrayList<>();
      List<Double> ours = new ArrayList<>();
      for (int i = 0; i < s.runs(); i++) {
        theirs.add(nbdcopy(s, uri, dst));
        ours.add(shade(copier, dst, s.bytes()));
        progress.accept(String.format(Locale.ROOT, "run %d/%d: nbdcopy %.0f MiB/s, shade %.0f MiB/s, ratio %.2f",
            i + 1, s.runs(), theirs.get(i), ours.get(i), ours.get(i) / theirs.get(i)));
      }
      return new Figures(s, theirs, ours);
    } finally {
      if (server != null) {
        server.destroyForcibly();
        server.waitFor(10, TimeUnit.SECONDS);
      }
      try (var files = Files.walk(dir)) {
        for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
          Files.deleteIfExists(p);
        }
      }
    }
  }

  /**
   * {@link #measure} as {@code shade bench client} runs it: the figures ({@link Figures#toMap})
   * followed by the commands and the machine (load average before and after, tool versions).
   */
  public static Map<String, Object> run(Settings s, Consumer<String> progress) throws IOException, InterruptedException {
    long start = System.nanoTime();
    String loadBefore = Machine.loadAverage();
    Figures f = measure(s, progress);
    Map<String, Object> out = f.toMap();
    out.put("nbdcopy_command", String.join(" ", nbdcopyCommand(s, "nbd+unix:///?socket=SOCK", "COPY")));
    out.put("shade_client", "ExportCopier, " + s.connections() + " connections, " + s.requestSize() + "-byte requests, "
        + s.requests() + " in flight each, in this JVM");
    out.put("server", "nbdkit -f -U SOCK file SOURCE (non-sparse random data)");
    out.put("dir", s.baseDir().toString());
    out.put("filesystem", Machine.fileSystem(s.baseDir()));
    out.put("nbdcopy", Machine.version(Programs.Lookup.onPath(), s.baseDir(), "nbdcopy", "--version"));
    out.put("nbdkit", Machine.version(Programs.Lookup.onPath(), s.baseDir(), "nbdkit", "--version"));
    out.put("java", Machine.java());
    out.put("cpus", Runtime.getRuntime().availableProcessors());
    out.put("load_average_before", loadBefore);
    out.put("load_average_after", Machine.loadAverage());
    out.put("elapsed_s", round((System.nanoTime() - start) / 1e9, 1));
    return out;
  }

  private static List<String> nbdcopyCommand(Settings s, String uri, String dst) {
    return List.of("nbdcopy", "-C", String.valueOf(s.connections()), "--request-size=" + s.requestSize(),
        "-R", String.valueOf(s.requests()), uri, dst);
  }

  static double round(double value, int digits) {
    double scale = Math.pow(10, digits);
    return Math.round(value * scale) / scale;
  }

  /** One nbdcopy run into a fresh file; MiB/s. */
  private static double nbdcopy(Settings s, String uri, Path dst) throws IOException, InterruptedException {
    Files.deleteIfExists(dst);
    Files.createFile(dst);
    List<String> cmd = nbdcopyCommand(s, uri, dst.toString());
    long t0 = System.nanoTime();
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0) {
      throw new IOException(String.join(" ", cmd) + " failed:\n" + out);
    }
    long t = System.nanoTime() - t0;
    check(dst, s.bytes());
    return mibPerSecond(s.bytes(), t);
  }

  /** One run of shade's copier into a fresh file; MiB/s. */
  private static double shade(ExportCopier copier, Path dst, long bytes) throws IOException {
    Files.deleteIfExists(dst);
    long t0 = System.nanoTime();
    ExportCopier.Result r = copier.copyTo(dst);
    long t = System.nanoTime() - t0;
    if (r.bytesRead() != bytes) {
      throw new IOException("shade read " + r.bytesRead() + " of " + bytes + " bytes: " + r);
    }
    check(dst, bytes);
    return mibPerSecond(bytes, t);
  }

  private static void check(Path dst, long bytes) throws IOException {
    if (Files.size(dst) != bytes) {
      throw new IOException("the copy " + dst + " has " + Files.size(dst) + " bytes, not " + bytes);
    }
  }

  private static double mibPerSecond(long bytes, long nanos) {
    return bytes / (1024.0 * 1024.0) / (nanos / 1e9);
  }

  /** Writes {@code bytes} of pseudo-random data (no zero blocks, so nothing is sparse). */
  private static void fillRandom(Path file, long bytes) throws IOException {
    SplittableRandom r = new SplittableRandom(42);
    ByteBuffer b = ByteBuffer.allocateDirect(4 << 20);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      for (long done = 0; done < bytes; ) {
        b.clear();
        int n = (int) Math.min(b.capacity(), bytes - done);
        b.limit(n);
        while (b.remaining() >= 8) {
          b.putLong(r.nextLong());
        }
        while (b.hasRemaining()) {
          b.put((byte) (r.nextInt(255) + 1));
        }
        b.flip();
        while (b.hasRemaining()) {
          done += ch.write(b, done);
        }
      }
    }
  }

  private static void waitFor(Path sock, Process server, Path log) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!Files.exists(sock)) {
      if (!server.isAlive() || System.nanoTime() > deadline) {
        throw new IOException("nbdkit did not start: " + Files.readString(log));
      }
      Thread.sleep(20);
    }
  }

  static double median(List<Double> v) {
    List<Double> s = new ArrayList<>(v);
    s.sort(null);
    int n = s.size();
    return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
  }

  static double min(List<Double> v) {
    return v.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN);
  }

  static double max(List<Double> v) {
    return v.stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN);
  }

  private static String rounded(List<Double> v) {
    StringBuilder b = new StringBuilder("[");
    for (double d : v) {
      b.append(b.length() > 1 ? " " : "").append(Math.round(d));
    }
    return b.append(']').toString();
  }
}
