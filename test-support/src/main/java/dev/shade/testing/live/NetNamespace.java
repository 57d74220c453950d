package dev.shade.testing.live;

import dev.shade.testing.Command;
import dev.shade.testing.Tools;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A second host for two-host tests: a network namespace of its own ({@code ip netns add}) joined
 * to the default one by a veth pair with a /30 between them, so a process run inside
 * ({@link #exec}) reaches this host only across that link, at {@link #hostAddress()}.
 *
 * <p>Closing deletes the namespace (which destroys its end of the pair, and with it the other
 * end) and then the host's end if it is still there; a JVM that exits without closing it does
 * so in its shutdown hook. Thread-safety: set up and closed by one thread.
 */
public final class NetNamespace implements AutoCloseable {
  /*
   * Addresses: 10.231.N.0/30 with N picked at random from 1..254, the host's end .1, the
   * namespace's .2; a subnet in use already (another test at the same time) is skipped. Names:
   * the namespace shade-nsNNNNN, the links shvNNNNNh (host) and shvNNNNNn (namespace), under
   * the 15 characters a link name may have.
   */
  /** The namespace's name. */
  private final String name;
  /** The host's end of the veth pair. */
  private final String hostLink;
  /** The namespace's end. */
  private final String nsLink;
  /** The host's address on the link. */
  private final String hostAddress;
  /** The namespace's address on the link. */
  private final String nsAddress;
  /** Set once closed. */
  private boolean closed;

  private NetNamespace(String name, String hostLink, String nsLink, String hostAddress, String nsAddress) {
    this.name = name;
    this.hostLink = hostLink;
    this.nsLink = nsLink;
    this.hostAddress = hostAddress;
    this.nsAddress = nsAddress;
  }

  /**
   * Skips the calling test (fails it under {@code CI=true}) unless this process is root and
   * {@code ip} can make network namespaces here.
   */
  public static void requireTools() throws IOException, InterruptedException {
    Tools.requireRoot("create a network namespace and a veth pair");
    Tools.require("ip", "iproute2");
    Command probe = Command.run("ip", "netns", "list");
    if (probe.exitCode() != 0) {
      Tools.unavailable("'ip netns' does not work here: " + probe.output().strip());
    }
  }

  /** Creates the namespace and the link, both ends up, loopback up inside. On failure undoes it. */
  public static NetNamespace create() throws IOException, InterruptedException {
    int id = ThreadLocalRandom.current().nextInt(10000, 100000);
    String existing = Command.run("ip", "-4", "addr", "show").output();
    int subnet = 0;
    for (int tries = 0; tries < 50 && subnet == 0; tries++) {
      int n = ThreadLocalRandom.current().nextInt(1, 255);
      if (!existing.contains("10.231." + n + ".")) {
        subnet = n;
      }
    }
    if (subnet == 0) {
      throw new IOException("no free 10.231.N.0/30 subnet for a test network namespace");
    }
    NetNamespace ns = new NetNamespace("shade-ns" + id, "shv" + id + "h", "shv" + id + "n", "10.231." + subnet + ".1",
        "10.231." + subnet + ".2");
    Teardown.register(ns);
    try {
      ns.ip("netns", "add", ns.name);
      ns.ip("link", "add", ns.hostLink, "type", "veth", "peer", "name", ns.nsLink);
      ns.ip("link", "set", ns.nsLink, "netns", ns.name);
      ns.ip("addr", "add", ns.hostAddress + "/30", "dev", ns.hostLink);
      ns.ip("link", "set", ns.hostLink, "up");
      ns.ip("netns", "exec", ns.name, "ip", "addr", "add", ns.nsAddress + "/30", "dev", ns.nsLink);
      ns.ip("netns", "exec", ns.name, "ip", "link", "set", ns.nsLink, "up");
      ns.ip("netns", "exec", ns.name, "ip", "link", "set", "lo", "up");
      return ns;
    } catch (IOException | InterruptedException | RuntimeException e) {
      try {
        ns.close();
      } catch (IOException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }
  }

  /** The namespace's name, for {@code ip netns exec}. */
  public String name() {
    return name;
  }

  /** This (the default namespace's) host's address on the link: what the namespace reaches. */
  public String hostAddress() {
    return hostAddress;
  }

  /** The namespace's own address on the link. */
  public String nsAddress() {
    return nsAddress;
  }

  /** {@code argv} prefixed so that it runs inside the namespace: {@code ip netns exec NAME argv...}. */
  public List<String> exec(List<String> argv) {
    List<String> out = new ArrayList<>(List.of(Tools.find("ip").map(Object::toString).orElse("ip"), "netns", "exec",
        name));
    out.addAll(argv);
    return out;
  }

  private void ip(String... args) throws IOException, InterruptedException {
    List<String> argv = new ArrayList<>(List.of("ip"));
    argv.addAll(List.of(args));
    Command c = Command.run(argv, null);
    if (c.exitCode() != 0) {
      throw new IOException(String.join(" ", argv) + " exited with " + c.exitCode() + ": " + c.output().strip());
    }
  }

  /** Deletes the namespace and both ends of the link; idempotent. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    try {
      Command del = Command.run("ip", "netns", "del", name);
      Command link = Command.run("ip", "link", "show", hostLink);
      if (link.exitCode() == 0) {
        Command.run("ip", "link", "del", hostLink);
      }
      String left = Command.run("ip", "netns", "list").output();
      if (left.lines().anyMatch(l -> l.split("\\s+")[0].equals(name))) {
        throw new IOException("network namespace " + name + " is still there after 'ip netns del': " + del.output());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while deleting network namespace " + name, e);
    } finally {
      Teardown.done(this);
    }
  }

  @Override
  public String toString() {
    return "network namespace " + name + " (" + nsAddress + " on " + nsLink + ", host " + hostAddress + " on "
        + hostLink + ")";
  }
}
