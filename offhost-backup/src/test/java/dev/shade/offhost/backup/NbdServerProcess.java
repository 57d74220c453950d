package dev.shade.offhost.backup;

import dev.shade.testing.nbd.Exec;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** An nbdkit or qemu-nbd process serving one export for a test, on a Unix socket or a loopback port; killed on close. */
final class NbdServerProcess implements AutoCloseable {
  /** The process. */
  private final Process process;
  /** Its Unix socket, or null for TCP. */
  private final Path socket;
  /** Its TCP port, or -1. */
  private final int port;
  /** Its output, for failure messages. */
  private final Path log;

  private NbdServerProcess(Process process, Path socket, int port, Path log) {
    this.process = process;
    this.socket = socket;
    this.port = port;
    this.log = log;
  }

  /** {@code nbdkit -f --exit-with-parent -U SOCK args...}. */
  static NbdServerProcess nbdkit(Path dir, String... args) throws IOException, InterruptedException {
    Exec.assumeTools("nbdkit");
    Path sock = dir.resolve("nbdkit-" + System.nanoTime() + ".sock");
    List<String> cmd = new ArrayList<>(List.of("nbdkit", "-f", "--exit-with-parent", "-U", sock.toString()));
    cmd.addAll(List.of(args));
    return start(dir, cmd, sock, -1);
  }

  /** {@code nbdkit -f --exit-with-parent -i 127.0.0.1 -p PORT args...}. */
  static NbdServerProcess nbdkitTcp(Path dir, String... args) throws IOException, InterruptedException {
    Exec.assumeTools("nbdkit");
    int port = freePort();
    List<String> cmd = new ArrayList<>(List.of("nbdkit", "-f", "--exit-with-parent", "-i", "127.0.0.1", "-p",
        String.valueOf(port)));
    cmd.addAll(List.of(args));
    return start(dir, cmd, null, port);
  }

  /** {@code qemu-nbd -t -k SOCK args...} (persistent). */
  static NbdServerProcess qemuNbd(Path dir, String... args) throws IOException, InterruptedException {
    Exec.assumeTools("qemu-nbd");
    Path sock = dir.resolve("qemu-" + System.nanoTime() + ".sock");
    List<String> cmd = new ArrayList<>(List.of("qemu-nbd", "-t", "-k", sock.toString()));
    cmd.addAll(List.of(args));
    return start(dir, cmd, sock, -1);
  }

  /** {@code nbd+unix:///EXPORT?socket=SOCK} or {@code nbd://127.0.0.1:PORT/EXPORT}. */
  String uri(String export) {
    return socket != null ? "nbd+unix:///" + export + "?socket=" + socket : "nbd://127.0.0.1:" + port + "/" + export;
  }

  String output() {
    try {
      return Files.readString(log, StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private static NbdServerProcess start(Path dir, List<String> cmd, Path sock, int port)
      throws IOException, InterruptedException {
    Path log = dir.resolve("server-" + System.nanoTime() + ".log");
    Process p = Exec.start(log, cmd);
    NbdServerProcess s = new NbdServerProcess(p, sock, port, log);
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
      return false;
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

  @Override
  public void close() throws InterruptedException {
    Exec.kill(process);
  }
}
