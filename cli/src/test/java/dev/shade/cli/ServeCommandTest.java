package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.provider.BlockSource;
import dev.shade.provider.Volume;
import dev.shade.testing.Tools;
import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code shade serve} as a real process (a JVM on the test class path, as bin/shade runs the
 * jar): what it prints, what clients see, and that SIGTERM and SIGINT stop it cleanly with
 * every acknowledged write in the volume. Bad command lines are checked in this JVM, since
 * they fail before anything is served.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ServeCommandTest {
  private static final int MIB = 1 << 20;
  /** Export line: name, size, access, URIs. */
  private static final Pattern LINE = Pattern.compile("(\\S+)\\s+(\\d+(?:\\.\\d)? \\S+)\\s+(rw|ro|rw-local)\\s+(.+)");

  @TempDir Path tmp;
  /** Servers started by the test; killed afterwards if a test left one running. */
  @RegisterExtension final Leftovers started = new Leftovers();

  // ---------------------------------------------------------------- as a process

  @Test
  void serve_printsOneLinePerExportAndStopsOnSigterm() throws Exception {
    Path db = volumeWithSnapshot("db");
    Path sock = tmp.resolve("nbd.sock");
    Server s = serve(db, "--listen", "127.0.0.1:0", "--socket", sock);

    List<String> lines = s.out().lines().toList();
    assertEquals(2, lines.size(), s::toString);
    Matcher origin = LINE.matcher(lines.get(0));
    Matcher snap = LINE.matcher(lines.get(1));
    assertTrue(origin.matches() && snap.matches(), s::toString);
    assertEquals(List.of("db", "4 MiB", "rw"), List.of(origin.group(1), origin.group(2), origin.group(3)));
    assertEquals(List.of("db@s1", "4 MiB", "ro"), List.of(snap.group(1), snap.group(2), snap.group(3)));
    int port = s.port();
    assertTrue(port > 0, s::toString);
    assertEquals(List.of("nbd://127.0.0.1:" + port + "/db", "nbd+unix:///db?socket=" + sock),
        Arrays.asList(origin.group(4).split("\\s+")));
    assertEquals(List.of("nbd://127.0.0.1:" + port + "/db@s1", "nbd+unix:///db@s1?socket=" + sock),
        Arrays.asList(snap.group(4).split("\\s+")));
    assertTrue(Files.exists(sock), "socket while serving");

    assertEquals(0, s.stop(), s::toString);
    assertFalse(Files.exists(sock), "socket removed on stop: " + sock);
    assertTrue(s.err().contains("stopped; 1 volume flushed and closed"), s::toString);
    try (Volume v = Volume.open(db)) {
      assertEquals(1, v.snapshots().size(), "the lock is released and the volume intact");
    }
  }

  @Test
  void serve_jsonIsOneDocumentWithExportsAndListeners() throws Exception {
    Path a = TestVolumes.create(tmp.resolve("a"), "1M");
    Path b = volumeWithSnapshot("b");
    Path sock = tmp.resolve("b.sock");
    Server s = serve(List.of(a, b, "--socket", sock, "--json"));

    JsonNode doc = Cli.JSON.readTree(s.out());
    assertTrue(doc.get("listen").isNull(), "only a socket was asked for: " + doc);
    assertEquals(sock.toString(), doc.get("socket").asText());
    assertFalse(doc.get("tls").asBoolean());
    assertEquals(s.process.pid(), doc.get("pid").asLong());
    JsonNode exports = doc.get("exports");
    assertEquals(3, exports.size(), doc::toString);
    assertExport(exports.get(0), "a", "a", null, MIB, "rw", "nbd+unix:///a?socket=" + sock);
    assertExport(exports.get(1), "b", "b", null, 4 * MIB, "rw", "nbd+unix:///b?socket=" + sock);
    assertExport(exports.get(2), "b@s1", "b", "s1", 4 * MIB, "ro", "nbd+unix:///b@s1?socket=" + sock);
    assertEquals(0, s.stop(), s::toString);
    assertFalse(Files.exists(sock));
  }

  @Test
  void nbdinfo_listsEveryExportOverTcpAndReadsOverTheSocket() throws Exception {
    Tools.require("nbdinfo", "libnbd-bin");
    Path db = volumeWithSnapshot("db");
    Path sock = tmp.resolve("nbd.sock");
    Server s = serve(db, "--listen", "127.0.0.1:0", "--socket", sock);

    Run list = run("nbdinfo", "--list", "--json", "nbd://127.0.0.1:" + s.port());
    assertEquals(0, list.code(), list::toString);
    JsonNode exports = Cli.JSON.readTree(list.out()).get("exports");
    assertEquals(2, exports.size(), list::toString);
    assertEquals("db", exports.get(0).get("export-name").asText());
    assertFalse(exports.get(0).get("is_read_only").asBoolean(), list::toString);
    assertEquals("db@s1", exports.get(1).get("export-name").asText());
    assertTrue(exports.get(1).get("is_read_only").asBoolean(), list::toString);
    Run size = run("nbdinfo", "--size", "nbd+unix:///db@s1?socket=" + sock);
    assertEquals(0, size.code(), size::toString);
    assertEquals(String.valueOf(4 * MIB), size.out().strip());
    assertEquals(0, s.stop(), s::toString);
  }

  @Test
  void sigterm_writeThroughExportIsInVolumeAfterStop() throws Exception {
    Tools.require("qemu-io", "qemu-utils");
    Path db = volumeWithSnapshot("db");
    byte[] before = TestVolumes.image(db);
    Path sock = tmp.resolve("nbd.sock");
    Server s = serve(db, "--listen", "127.0.0.1:0", "--socket", sock);

    Run write = run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 64k", "nbd://127.0.0.1:" + s.port() + "/db");
    assertEquals(0, write.code(), write::toString);
    Run refused = run("qemu-io", "-f", "raw", "-c", "write -P 0x11 0 4k", "nbd://127.0.0.1:" + s.port() + "/db@s1");
    assertTrue(refused.code() != 0 || refused.err().toLowerCase().contains("read-only")
        || refused.out().toLowerCase().contains("read-only"), "a snapshot export refuses writes: " + refused);
    assertEquals(0, s.stop(), s::toString);
    assertFalse(Files.exists(sock), "socket removed on stop: " + sock);

    byte[] expected = before.clone();
    Arrays.fill(expected, 0, 64 * 1024, (byte) 0x5a);
    try (Volume v = Volume.open(db)) {
      assertArrayEquals(expected, read(v), "the origin holds the write made through the export");
      try (BlockSource s1 = v.openSnapshot("s1")) {
        assertArrayEquals(before, read(s1), "the snapshot kept what it held");
      }
    }
  }

  @Test
  void nbdcopyOfSnapshotExport_equalsShadeSnapshotExport() throws Exception {
    Tools.require("nbdcopy", "libnbd-bin");
    Tools.require("qemu-img", "qemu-utils");
    Path db = volumeWithSnapshot("db");
    Path data = TestVolumes.file(tmp, "later.bin", TestVolumes.random(11, 512 * 1024));
    Cli.run("volume", "import", db, data, "--offset", "131072").ok(); // the origin moves on after s1
    Path exported = tmp.resolve("s1-export.img");
    Cli.run("snapshot", "export", db, "s1", exported).ok();
    Path sock = tmp.resolve("nbd.sock");
    Server s = serve(db, "--socket", sock);
    Path copied = tmp.resolve("s1-nbdcopy.img");
    String uri = "nbd+unix:///db@s1?socket=" + sock;
    Run copy = run("nbdcopy", uri, copied.toString());
    assertEquals(0, copy.code(), copy::toString);
    assertArrayEquals(Files.readAllBytes(exported), Files.readAllBytes(copied),
        "nbdcopy of db@s1 equals shade snapshot export of s1");
    Run compare = run("qemu-img", "compare", "-f", "raw", "-F", "raw", exported.toString(), uri);
    assertEquals(0, compare.code(), compare::toString);
    Run differs = run("qemu-img", "compare", "-f", "raw", "-F", "raw", exported.toString(), "nbd+unix:///db?socket=" + sock);
    assertEquals(1, differs.code(), "the origin differs from s1: " + differs);
    assertEquals(0, s.stop(), s::toString);
  }

  @Test
  void sigint_stopsCleanlyWithExitZero() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    Path sock = tmp.resolve("nbd.sock");
    // A build started in the background (nohup, a CI runner, `mvn ... &`) ignores SIGINT, and so
    // would every process it starts: the JVM then installs no handler. perl sets it back to the
    // default before it runs the server's JVM in its place.
    Tools.require("perl", "perl-base");
    Server s = serve(List.of("perl", "-e", "$SIG{INT} = 'DEFAULT'; exec @ARGV or die \"exec: $!\";"),
        List.of(db, "--socket", sock));
    assertFalse(ignores(s.process.pid(), 2), "SIGINT is not ignored by the server: " + s);
    Run kill = run("kill", "-INT", String.valueOf(s.process.pid()));
    assertEquals(0, kill.code(), kill::toString);
    assertTrue(s.process.waitFor(60, TimeUnit.SECONDS), "stopped within 60 s: " + s);
    assertEquals(0, s.process.exitValue(), s::toString);
    assertFalse(Files.exists(sock));
  }

  // ---------------------------------------------------------------- bad command lines

  @Test
  void serve_missingVolumeDirectory_exitsOneWithOneLine() {
    Cli.Result r = Cli.run("serve", tmp.resolve("nope"), "--listen", "127.0.0.1:0");
    assertEquals(1, r.code(), r::toString);
    assertEquals(List.of("shade serve: volume directory does not exist: " + tmp.resolve("nope")), r.errLines());
    assertEquals("", r.out());
  }

  @Test
  void serve_nonLoopbackWithoutTls_isUsageError() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    Cli.Result r = Cli.run("serve", db, "--listen", "0.0.0.0:0");
    assertEquals(2, r.code(), r::toString);
    assertEquals(1, r.errLines().size(), r::toString);
    assertTrue(r.err().contains("not a loopback address") && r.err().contains("--tls-cert"), r::toString);
  }

  @ParameterizedTest
  @ValueSource(strings = {"localhost", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
      ":10809", "::1:10809", "[::1]", "127.0.0.1:http"})
  void serve_badListenAddress_isUsageError(String address) throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    Cli.Result r = Cli.run("serve", db, "--listen", address);
    assertEquals(2, r.code(), r::toString);
    assertEquals(1, r.errLines().size(), r::toString);
    assertTrue(r.err().startsWith("shade serve: Invalid value for option '--listen': invalid "), r::toString);
  }

  @Test
  void serve_partialTls_isUsageError() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    Cli.Result r = Cli.run("serve", db, "--tls-cert", tmp.resolve("cert.pem"));
    assertEquals(2, r.code(), r::toString);
    assertTrue(r.err().contains("TLS needs all three of --tls-cert, --tls-key and --tls-ca"), r::toString);
  }

  @Test
  void serve_sameVolumeTwice_isUsageError() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    Cli.Result r = Cli.run("serve", db, tmp.resolve("x/../db"));
    assertEquals(2, r.code(), r::toString);
    assertTrue(r.err().contains("volume named twice"), r::toString);
  }

  @Test
  void serve_twoVolumesWithOneName_isUsageError() throws Exception {
    Path one = TestVolumes.create(tmp.resolve("one/db"), "1M");
    Path two = TestVolumes.create(tmp.resolve("two/db"), "1M");
    Cli.Result r = Cli.run("serve", one, two);
    assertEquals(2, r.code(), r::toString);
    assertTrue(r.err().contains("would both be exported as 'db'"), r::toString);
  }

  @Test
  void serve_existingSocketPath_exitsOne() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    Path taken = Files.writeString(tmp.resolve("taken"), "x");
    Cli.Result r = Cli.run("serve", db, "--socket", taken);
    assertEquals(1, r.code(), r::toString);
    assertEquals(1, r.errLines().size(), r::toString);
    assertTrue(r.err().contains("socket path is an existing file") && r.err().contains(taken.toString()), r::toString);
  }

  @Test
  void serve_portInUse_exitsOneAndReleasesTheVolume() throws Exception {
    Path db = TestVolumes.create(tmp.resolve("db"), "1M");
    try (ServerSocket busy = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      Cli.Result r = Cli.run("serve", db, "--listen", "127.0.0.1:" + busy.getLocalPort());
      assertEquals(1, r.code(), r::toString);
      assertEquals(1, r.errLines().size(), r::toString);
      assertTrue(r.err().contains("cannot listen on 127.0.0.1:" + busy.getLocalPort()), r::toString);
    }
    try (Volume v = Volume.open(db)) {
      assertEquals(MIB, v.size(), "the volume was closed after the failed start");
    }
  }

  // ---------------------------------------------------------------- helpers

  /** A 4 MiB volume holding random data at 0, with snapshot s1 of it. */
  private Path volumeWithSnapshot(String name) throws IOException {
    Path dir = TestVolumes.create(tmp.resolve(name), "4M");
    Path data = TestVolumes.file(tmp, name + ".bin", TestVolumes.random(7, 256 * 1024));
    Cli.run("volume", "import", dir, data).ok();
    Cli.run("snapshot", "create", dir).ok();
    return dir;
  }

  private static void assertExport(JsonNode e, String name, String volume, String snapshot, long size,
      String access, String uri) {
    assertEquals(name, e.get("name").asText(), e::toString);
    assertEquals(volume, e.get("volume").asText(), e::toString);
    assertEquals(snapshot, e.get("snapshot").isNull() ? null : e.get("snapshot").asText(), e::toString);
    assertEquals(size, e.get("size").asLong(), e::toString);
    assertEquals(access, e.get("access").asText(), e::toString);
    assertEquals(List.of(uri), Cli.JSON.convertValue(e.get("uris"), List.class), e::toString);
  }

  private static byte[] read(BlockSource s) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(s.size()));
    s.read(0, b);
    return b.array();
  }

  /** True if process {@code pid} ignores signal {@code signal} (its SigIgn mask in /proc). */
  private static boolean ignores(long pid, int signal) throws IOException {
    try (Stream<String> lines = Files.lines(Path.of("/proc", String.valueOf(pid), "status"))) {
      Optional<String> mask = lines.filter(l -> l.startsWith("SigIgn:")).findFirst();
      return mask.isPresent() && (Long.parseUnsignedLong(mask.get().substring(7).strip(), 16) & (1L << (signal - 1))) != 0;
    }
  }


  private Server serve(Path dir, Object... options) throws Exception {
    List<Object> args = new ArrayList<>();
    args.add(dir);
    args.addAll(Arrays.asList(options));
    return serve(args);
  }

  /**
   * Starts {@code shade serve ARGS} in a JVM of its own and waits until it says it is serving
   * (or fails with what it printed if it exits first).
   */
  private Server serve(List<Object> args) throws Exception {
    return serve(List.of(), args);
  }

  /** {@link #serve(List)} with {@code launcher} (may be empty) in front of the java command. */
  private Server serve(List<String> launcher, List<Object> args) throws Exception {
    List<String> command = new ArrayList<>(launcher);
    command.addAll(List.of(
        ProcessHandle.current().info().command().orElse("java"),
        "-cp", System.getProperty("java.class.path"), Shade.class.getName(), "serve"));
    args.forEach(a -> command.add(String.valueOf(a)));
    int n = started.size();
    Path out = tmp.resolve("serve-" + n + ".out");
    Path err = tmp.resolve("serve-" + n + ".err");
    ProcessBuilder pb = new ProcessBuilder(command)
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
        .redirectOutput(out.toFile())
        .redirectError(err.toFile());
    pb.environment().remove("SHADE_DEBUG");
    Process p = pb.start();
    started.add(p);
    Server s = new Server(p, out, err);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!s.err().contains("shade serve: serving ")) {
      if (!p.isAlive() || System.nanoTime() > deadline) {
        throw new AssertionError("shade serve did not start serving: " + s);
      }
      Thread.sleep(20);
    }
    return s;
  }

  /** A running {@code shade serve} process and the files its output goes to. */
  private record Server(Process process, Path outFile, Path errFile) {
    String out() throws IOException {
      return Files.readString(outFile, StandardCharsets.UTF_8);
    }

    String err() throws IOException {
      return Files.readString(errFile, StandardCharsets.UTF_8);
    }

    /** The TCP port of the first URI printed. */
    int port() throws IOException {
      Matcher m = Pattern.compile("nbd://127\\.0\\.0\\.1:(\\d+)/").matcher(out());
      assertTrue(m.find(), "a TCP URI in the output: " + out());
      return Integer.parseInt(m.group(1));
    }

    /** Sends SIGTERM and returns the exit code. */
    int stop() throws Exception {
      process.destroy(); // SIGTERM
      assertTrue(process.waitFor(60, TimeUnit.SECONDS), "stopped within 60 s after SIGTERM");
      return process.exitValue();
    }

    @Override
    public String toString() {
      try {
        return "shade serve (" + (process.isAlive() ? "running" : "exit " + process.exitValue()) + ")\n--- stdout\n"
            + out() + "--- stderr\n" + err();
      } catch (IOException e) {
        return "shade serve: " + e;
      }
    }
  }

  /** What a client tool did. */
  private record Run(int code, String out, String err) {}

  private Run run(String... command) throws Exception {
    Path out = Files.createTempFile(tmp, "run-", ".out");
    Path err = Files.createTempFile(tmp, "run-", ".err");
    ProcessBuilder pb = new ProcessBuilder(command)
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
        .redirectOutput(out.toFile())
        .redirectError(err.toFile());
    pb.environment().put("LC_ALL", "C");
    Process p = pb.start();
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError(String.join(" ", command) + " did not finish within 60 s");
    }
    return new Run(p.exitValue(), Files.readString(out), Files.readString(err));
  }
}
