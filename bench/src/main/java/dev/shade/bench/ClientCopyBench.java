package dev.shade.bench;

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
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Copies one export served by nbdkit into a file, alternately with {@code nbdcopy} and with
 * shade's {@link ExportCopier}, with the same connections, request size and requests in flight,
 * and reports the throughput of each (min, median, max) and the ratio of the medians.
 *
 * <p>Not a test: run it by hand, {@code java -cp ... dev.shade.cli.bench.ClientCopyBench [MiB]
 * [runs] [connections] [requestKiB] [requests]} (defaults 1024 5 4 256 64). The source is a
 * non-sparse random file in tmpfs (/dev/shm) served by {@code nbdkit file} over a Unix socket,
 * and each copy goes to a fresh file in tmpfs too, so the figures compare the two clients and
 * not a disk. Two untimed copies of each come first (they warm the JIT and the page cache).
 */
public final class ClientCopyBench {
  private ClientCopyBench() {}

  /** Untimed copies of each client before the timed ones. */
  static final int WARMUP = 2;

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
    Path dir = Files.createTempDirectory(s.baseDir(), "shade-client-bench-");
    Process server = null;
    try {
      Path source = dir.resolve("source.img");
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
        nbdcopy(s, uri, dst);
        shade(copier, dst, s.bytes());
      }
      List<Double> theirs = new ArrayList<>();
      List<Double> ours = new ArrayList<>();
      for (int i = 0; i < s.runs(); i++) {
        theirs.add(nbdcopy(s, uri, dst));
        ours.add(shade(copier, dst, s.bytes()));
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

  /** One nbdcopy run into a fresh file; MiB/s. */
  private static double nbdcopy(Settings s, String uri, Path dst) throws IOException, InterruptedException {
    Files.deleteIfExists(dst);
    Files.createFile(dst);
    List<String> cmd = List.of("nbdcopy", "-C", String.valueOf(s.connections()), "--request-size=" + s.requestSize(),
        "-R", String.valueOf(s.requests()), uri, dst.toString());
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
