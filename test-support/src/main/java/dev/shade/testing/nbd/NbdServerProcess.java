package dev.shade.testing.nbd;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * An NBD server process that is not shade's ({@code nbdkit} or {@code qemu-nbd}) run for a test on
 * a Unix socket or a loopback port, its output in a log in the test's directory, killed (with
 * whatever it started) on close. Each starter skips the test when the tool is missing, or fails
 * it under {@code CI=true} ({@link Exec#assumeTools}).
 */
public final class NbdServerProcess implements AutoCloseable {
  /** How long a server may take to listen. */
  private static final long START_SECONDS = 20;

  private final Process process;
  /** Where it listens: a Unix socket, or null for TCP. */
  private final Path socket;
  /** The TCP port, or -1. */
  private final int port;
  /** Its output (both streams), for failure messages. */
  private final Path log;

  private NbdServerProcess(Process process, Path socket, int port, Path log) {
    this.process = process;
    this.socket = socket;
    this.port = port;
    this.log = log;
  }

  /** {@code nbdkit -f --exit-with-parent -U SOCK args...}. */
  public static NbdServerProcess nbdkit(Path dir, String... args) throws IOException, InterruptedException {
    Exec.assumeTools("nbdkit");
    Path sock = dir.resolve("nbdkit-" + System.nanoTime() + ".sock");
    List<String> cmd = new ArrayList<>(List.of("nbdkit", "-f", "--exit-with-parent", "-U", sock.toString()));
    cmd.addAll(List.of(args));
    return start(dir, cmd, sock, -1);
  }

  /** {@code nbdkit -f --exit-with-parent -i 127.0.0.1 -p PORT args...}. */
  public static NbdServerProcess nbdkitTcp(Path dir, String... args) throws IOException, InterruptedException {
    Exec.assumeTools("nbdkit");
    int port = freePort();
    List<String> cmd = new ArrayList<>(List.of("nbdkit", "-f", "--exit-with-parent", "-i", "127.0.0.1", "-p",
        String.valueOf(port)));
    cmd.addAll(List.of(args));
    return start(dir, cmd, null, port);
  }

  /** {@code qemu-nbd -t -k SOCK args...} (persistent). */
  public static NbdServerProcess qemuNbd(Path dir, String... args) throws IOException, InterruptedException {
    Exec.assumeTools("qemu-nbd");
    Path sock = dir.resolve("qemu-" + System.nanoTime() + ".sock");
    List<String> cmd = new ArrayList<>(List.of("qemu-nbd", "-t", "-k", sock.toString()));
    cmd.addAll(List.of(args));
    return start(dir, cmd, sock, -1);
  }

  /** {@code qemu-nbd -t -b 127.0.0.1 -p PORT args...} (persistent). */
  public static NbdServerProcess qemuNbdTcp(Path dir, String... args) throws IOException, InterruptedException {
    Exec.assumeTools("qemu-nbd");
    int port = freePort();
    List<String> cmd = new ArrayList<>(List.of("qemu-nbd", "-t", "-b", "127.0.0.1", "-p", String.valueOf(port)));
    cmd.addAll(List.of(args));
    return start(dir, cmd, null, port);
  }

  /** The URI of {@code export}: {@code nbd+unix:///EXPORT?socket=SOCK} or {@code nbd://127.0.0.1:PORT/EXPORT}. */
  public String uri(String export) {
    return uri(export, false, null);
  }

  /** The URI of {@code export}, nbds when {@code tls}, with {@code tls-certificates=certs} when not null. */
  public String uri(String export, boolean tls, Path certs) {
    String scheme = tls ? "nbds" : "nbd";
    String q = certs == null ? "" : "tls-certificates=" + certs;
    if (socket != null) {
      return scheme + "+unix:///" + export + "?socket=" + socket + (q.isEmpty() ? "" : "&" + q);
    }
    return scheme + "://127.0.0.1:" + port + "/" + export + (q.isEmpty() ? "" : "?" + q);
  }

  /** What the server printed so far, for failure messages. */
  public String output() {
    try {
      return Files.readString(log, StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }

  @Override
  public void close() throws InterruptedException {
    Exec.kill(process);
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
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(START_SECONDS);
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
    throw new IOException(String.join(" ", cmd) + " did not start listening within " + START_SECONDS + " s:\n"
        + s.output());
  }

  private static boolean accepting(Path sock) {
    if (!Files.exists(sock)) {
      return false;
    }
    try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      ch.connect(UnixDomainSocketAddress.of(sock));
      return true;
    } catch (IOException e) {
      return false; // bound but not listening yet
    }
  }

  private static boolean listening(int port) {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", port), 200);
      return true;
    } catch (IOException e) {
      return false;
    }
  }
}
