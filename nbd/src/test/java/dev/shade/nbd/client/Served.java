package dev.shade.nbd.client;

import dev.shade.testing.nbd.Exec;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * An NBD server process (nbdkit or qemu-nbd) run for a test on a Unix socket or a loopback
 * port, killed on close.
 */
final class Served implements AutoCloseable {
  /** The process. */
  final Process process;
  /** Where it listens: a Unix socket, or null for TCP. */
  final Path socket;
  /** The TCP port, or -1. */
  final int port;
  /** Its output (both streams), for failure messages. */
  final Path log;

  private Served(Process process, Path socket, int port, Path log) {
    this.process = process;
    this.socket = socket;
    this.port = port;
    this.log = log;
  }

  /** {@code nbdkit -f --exit-with-parent -U SOCK args...}. */
  static Served nbdkit(Path dir, String... args) throws IOException, InterruptedException {
    Exec.assumeTools("nbdkit");
    Path sock = dir.resolve("nbdkit-" + System.nanoTime() + ".sock");
    List<String> cmd = new ArrayList<>(List.of("nbdkit", "-f", "--exit-with-parent", "-U", sock.toString()));
    cmd.addAll(List.of(args));
    return start(dir, cmd, sock, -1);
  }

  /** {@code nbdkit -f --exit-with-parent -i 127.0.0.1 -p PORT args...}. */
  static Served nbdkitTcp(Path dir, String... args) throws IOException, InterruptedException {
    Exec.assumeTools("nbdkit");
    int port = freePort();
    List<String> cmd = new ArrayList<>(List.of("nbdkit", "-f", "--exit-with-parent", "-i", "127.0.0.1", "-p", String.valueOf(port)));
    cmd.addAll(List.of(args));
    return start(dir, cmd, null, port);
  }

  /** {@code qemu-nbd -t -k SOCK args...} (persistent). */
  static Served qemuNbd(Path dir, String... args) throws IOException, InterruptedException {
    Exec.assumeTools("qemu-nbd");
    Path sock = dir.resolve("qemu-" + System.nanoTime() + ".sock");
    List<String> cmd = new ArrayList<>(List.of("qemu-nbd", "-t", "-k", sock.toString()));
    cmd.addAll(List.of(args));
    return start(dir, cmd, sock, -1);
  }

  /** {@code qemu-nbd -t -b 127.0.0.1 -p PORT args...} (persistent). */
  static Served qemuNbdTcp(Path dir, String... args) throws IOException, InterruptedException {
    Exec.assumeTools("qemu-nbd");
    int port = freePort();
    List<String> cmd = new ArrayList<>(List.of("qemu-nbd", "-t", "-b", "127.0.0.1", "-p", String.valueOf(port)));
    cmd.addAll(List.of(args));
    return start(dir, cmd, null, port);
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private static Served start(Path dir, List<String> cmd, Path sock, int port) throws IOException, InterruptedException {
    Path log = dir.resolve("server-" + System.nanoTime() + ".log");
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile())
        .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    Process p = pb.start();
    Served s = new Served(p, sock, port, log);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (System.nanoTime() < deadline) {
      if (!p.isAlive()) {
        throw new IOException(String.join(" ", cmd) + " exited with " + p.exitValue() + ":\n" + s.output());
      }
      if (sock != null ? accepting(sock) : listening(port)) {
        return s;
      }
      Thread.sleep(20);
    }
    s.close();
    throw new IOException(String.join(" ", cmd) + " did not start listening within 20 s:\n" + s.output());
  }

  private static boolean accepting(Path sock) {
    if (!Files.exists(sock)) {
      return false;
    }
    try (java.nio.channels.SocketChannel ch = java.nio.channels.SocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
      ch.connect(java.net.UnixDomainSocketAddress.of(sock));
      return true;
    } catch (IOException e) {
      return false; // bound but not listening yet
    }
  }

  private static boolean listening(int port) {
    try (java.net.Socket s = new java.net.Socket()) {
      s.connect(new java.net.InetSocketAddress("127.0.0.1", port), 200);
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  /** The URI of {@code export}: {@code nbd+unix:///EXPORT?socket=} or {@code nbd://127.0.0.1:PORT/EXPORT}. */
  String uri(String export) {
    return uri(export, false, null);
  }

  /** The URI of {@code export}, nbds when {@code tls}, with {@code ?tls-certificates=certs} when not null. */
  String uri(String export, boolean tls, Path certs) {
    String scheme = tls ? "nbds" : "nbd";
    String q = certs == null ? "" : "tls-certificates=" + certs;
    if (socket != null) {
      return scheme + "+unix:///" + export + "?socket=" + socket + (q.isEmpty() ? "" : "&" + q);
    }
    return scheme + "://127.0.0.1:" + port + "/" + export + (q.isEmpty() ? "" : "?" + q);
  }

  String output() {
    try {
      return Files.readString(log, StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }

  @Override
  public void close() throws InterruptedException {
    process.descendants().forEach(ProcessHandle::destroyForcibly);
    process.destroyForcibly();
    process.waitFor(10, TimeUnit.SECONDS);
  }
}
