package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.testing.CloseAfterEach;
import dev.shade.testing.Tools;
import dev.shade.testing.live.NbdMount;
import dev.shade.testing.live.NetNamespace;
import dev.shade.testing.nbd.TestPki;
import java.io.File;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two hosts for real: the agent in the default network namespace serves a live ext4 volume
 * (nbdfuse + loop + mount) over NBD and its remote API, both with TLS and client certificates on
 * the address of a veth link; the backup server is a second network namespace that reaches the
 * agent only across that link and runs {@code shade backup run} there, a full and an
 * incremental, each fetching the writer metadata from the agent and telling it backup-complete
 * (an exec hook records it); restores equal {@code shade snapshot export} byte for byte. Clients
 * without a certificate or with one of another CA are refused by NBD and the API, and the API
 * refuses write commands.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class TwoHostsIT {
  /*
   * What runs where. Default namespace: this JVM (the test, the in-process `shade snapshot` and
   * `shade restore` commands, which use the control socket and the library's files), the agent
   * (a JVM of its own), nbdfuse on the agent's NBD Unix socket under the mounted filesystem.
   * Namespace: every process that plays the backup server (`ip netns exec NS java ... shade
   * backup run`, nbdinfo, the API probe). Network namespaces do not separate Unix sockets bound
   * to paths, so the backup server is only ever given TCP addresses on the link.
   */
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int MiB = 1 << 20;
  /** Longest a backup-server process may run. */
  private static final long PROCESS_SECONDS = 120;

  @TempDir Path tmp;
  /** What to take down after the test, newest first. */
  @RegisterExtension final CloseAfterEach teardown = new CloseAfterEach();

  @Test
  void backupServerInItsOwnNamespace_fullAndIncrementalOverTls_backupCompleteReachesTheWriters() throws Exception {
    NetNamespace.requireTools();
    NbdMount.requireTools();
    Tools.require("nbdinfo", "libnbd-bin");
    long t0 = System.nanoTime();
    NetNamespace ns = NetNamespace.create();
    teardown.push(ns);
    String host = ns.hostAddress();
    TestPki pki = TestPki.create(Files.createDirectories(tmp.resolve("pki")), List.of(host));
    int nbdPort = freePort(host);
    int apiPort = freePort(host);

    Path vol = tmp.resolve("volumes/db");
    Cli.run("volume", "create", vol, "--size", "256M", "--diff-max", "256M").ok();
    Path control = tmp.resolve("control.sock");
    Path nbdSock = tmp.resolve("nbd.sock");
    ObjectNode tls = JSON.createObjectNode().put("cert", pki.serverCert.toString())
        .put("key", pki.serverKeyPkcs8.toString()).put("ca", pki.caCert.toString());
    ObjectNode cfg = JSON.createObjectNode().put("control", control.toString());
    cfg.putArray("volumes").add(vol.toString());
    ObjectNode nbd = cfg.putObject("nbd").put("listen", host + ":" + nbdPort).put("socket", nbdSock.toString());
    nbd.set("tls", tls);
    cfg.putObject("remote").put("listen", host + ":" + apiPort).set("tls", tls);
    Path cfgFile = tmp.resolve("agent.json");
    Files.writeString(cfgFile, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(cfg));
    AgentProcess agent = AgentProcess.start(tmp, List.of("--config", cfgFile), control);
    teardown.push(() -> {
      if (agent.process().isAlive()) {
        assertEquals(0, agent.stop(), agent::toString);
      }
    });
    assertTrue(agent.err().contains("remote API on " + host + ":" + apiPort + " (TLS)"), agent::toString);

    // production: ext4 on the volume, through the agent's local NBD socket
    NbdMount mount = NbdMount.open("nbd+unix:///db?socket=" + nbdSock, tmp.resolve("nbd-db"), tmp.resolve("mnt/db"), true);
    teardown.push(mount);
    Path mnt = mount.mountPoint();
    Files.write(mnt.resolve("a.bin"), TestVolumes.random(1, 12 * MiB));
    Files.createDirectories(mnt.resolve("logs"));
    Files.writeString(mnt.resolve("logs/0001.log"), "first log\n");

    // a writer whose backup-complete can be seen: a hook that records it and purges the logs
    Path hooks = Files.createDirectories(tmp.resolve("hooks"));
    Path released = tmp.resolve("released.txt");
    Path hook = hooks.resolve("50-purge-logs");
    Files.writeString(hook, "#!/bin/sh\nif [ \"$1\" = backup-complete ]; then\n  echo \"backup-complete\" >> '"
        + released + "'\n  rm -f '" + mnt + "'/logs/*.log\nfi\nexit 0\n");
    Files.setPosixFilePermissions(hook, PosixFilePermissions.fromString("rwx------"));
    String[] writers = {"--writer", "fs:" + mnt, "--writer", "exec:" + hooks};

    JsonNode s1 = snapshot(vol, "s1", writers);
    String client = pki.clientDir.toString();
    List<String> backup = List.of("backup", "run", "--source", "nbds://" + host + ":" + nbdPort + "/db@s1",
        "--agent", host + ":" + apiPort, "--tls-cert", client + "/client-cert.pem", "--tls-key",
        client + "/client-key.pem", "--tls-ca", pki.caCert.toString(), "--library", tmp.resolve("vtl").toString(),
        "--chunk-size", "1M", "--json");
    Cli.run("tape", "library", "create", tmp.resolve("vtl"), "--slots", "2", "--capacity", "512M").ok();
    long b0 = System.nanoTime();
    Proc full = inNamespace(ns, shade(backup));
    long b1 = System.nanoTime();
    assertEquals(0, full.code, full::toString);
    JsonNode f = JSON.readTree(full.out);
    assertEquals("full", f.get("level").asText(), f::toString);
    assertEquals(s1.get("id").asLong(), f.get("snapshotId").asLong());
    assertEquals("agent", f.get("metadataSource").asText(), f::toString);
    assertTrue(f.get("verified").get("chunks").asInt() > 12, f::toString);
    JsonNode bc = f.get("backupComplete");
    assertTrue(bc.get("ok").asBoolean(), f::toString);
    assertEquals(2, bc.get("writers").size(), bc::toString);
    assertEquals(List.of("backup-complete"), Files.readAllLines(released), "the hook ran once");
    try (var logs = Files.list(mnt.resolve("logs"))) {
      assertEquals(0, logs.count(), "the hook purged the logs");
    }
    String manifest = bash("'" + java() + "' -cp \"$CP\" dev.shade.cli.Shade tape cat '" + tmp.resolve("vtl")
        + "' SHD001 1 | tar -xO manifest.json");
    JsonNode wm = JSON.readTree(manifest).get("writerMetadata");
    assertTrue(wm.toString().contains("exec:" + hooks) && wm.toString().contains("fs:" + mnt), manifest);

    // more data and a second snapshot: an incremental across the link
    Files.write(mnt.resolve("b.bin"), TestVolumes.random(2, 3 * MiB));
    Files.writeString(mnt.resolve("logs/0002.log"), "second log\n");
    JsonNode s2 = snapshot(vol, "s2", writers);
    List<String> incArgs = new ArrayList<>(backup);
    incArgs.set(3, "nbds://" + host + ":" + nbdPort + "/db@s2");
    long i0 = System.nanoTime();
    Proc inc = inNamespace(ns, shade(incArgs));
    long i1 = System.nanoTime();
    assertEquals(0, inc.code, inc::toString);
    JsonNode in = JSON.readTree(inc.out);
    assertEquals("incremental", in.get("level").asText(), in::toString);
    assertEquals(s1.get("id").asLong(), in.get("baseSnapshotId").asLong());
    assertEquals(s2.get("id").asLong(), in.get("snapshotId").asLong());
    assertTrue(in.get("chunks").asInt() < f.get("chunks").asInt(), () -> "only changed chunks: " + in);
    assertTrue(in.get("backupComplete").get("ok").asBoolean(), in::toString);
    assertEquals(List.of("backup-complete", "backup-complete"), Files.readAllLines(released));

    // restores equal the agent's export of the same snapshots, byte for byte
    for (String name : List.of("s1", "s2")) {
      Path export = tmp.resolve(name + ".export");
      Cli.run("snapshot", "export", vol, name, export).ok();
      Path restored = tmp.resolve(name + ".restored");
      Cli.run("restore", "--volume", "db", "--snapshot", name, "--library", tmp.resolve("vtl"), "--to", restored).ok();
      assertEquals(Files.size(export), Files.size(restored));
      assertEquals(-1L, Files.mismatch(export, restored), () -> name + ": the restore differs from the export");
    }
    long restoredAt = System.nanoTime();

    // refused: NBD without a certificate, or with one of another CA; the API the same; a good
    // client may not write through the API
    String uri = "nbds://" + host + ":" + nbdPort + "/db@s1";
    Proc good = inNamespace(ns, List.of("nbdinfo", "--size", uri + "?tls-certificates=" + pki.clientDir));
    assertEquals(0, good.code, good::toString);
    for (Path dir : List.of(pki.noCertDir, pki.otherCaDir)) {
      Proc nbdinfo = inNamespace(ns, List.of("nbdinfo", "--size", uri + "?tls-certificates=" + dir));
      assertNotEquals(0, nbdinfo.code, () -> "nbdinfo with " + dir + " got in: " + nbdinfo);
    }
    String api = host + ":" + apiPort;
    Proc noCert = inNamespace(ns, probe(api, pki.caCert, null, null, "query-volumes", null));
    assertEquals(3, noCert.code, noCert::toString);
    Proc otherCa = inNamespace(ns, probe(api, pki.caCert, pki.otherCaDir.resolve("client-cert.pem"),
        pki.otherCaDir.resolve("client-key.pem"), "query-volumes", null));
    assertEquals(3, otherCa.code, otherCa::toString);
    Path cert = pki.clientDir.resolve("client-cert.pem");
    Path key = pki.clientDir.resolve("client-key.pem");
    Proc create = inNamespace(ns, probe(api, pki.caCert, cert, key, "snapshot-create",
        "{\"volumes\": [\"db\"], \"name\": \"evil\"}"));
    assertEquals(2, create.code, create::toString);
    assertTrue(create.out.contains("error PermissionDenied") && create.out.contains("not open to remote clients"),
        create::toString);
    Proc delete = inNamespace(ns, probe(api, pki.caCert, cert, key, "snapshot-delete",
        "{\"volume\": \"db\", \"snapshot\": \"s1\"}"));
    assertEquals(2, delete.code, delete::toString);
    Proc list = inNamespace(ns, probe(api, pki.caCert, cert, key, "snapshot-list", "{\"volume\": \"db\"}"));
    assertEquals(0, list.code, list::toString);
    assertEquals(2, JSON.readTree(list.out).get("snapshots").size(), list::toString);
    Proc badBackup = inNamespace(ns, shade(List.of("backup", "run", "--source", uri, "--agent", api, "--tls-cert",
        pki.otherCaDir.resolve("client-cert.pem").toString(), "--tls-key", pki.otherCaDir.resolve("client-key.pem")
            .toString(), "--tls-ca", pki.caCert.toString(), "--library", tmp.resolve("vtl").toString())));
    assertEquals(ExitCodes.FAILURE, badBackup.code, badBackup::toString);
    assertEquals(2, Cli.run("catalog", "list", tmp.resolve("vtl"), "--json").ok().json().get("jobs").size(),
        "the refused backup recorded nothing");
    long refusedAt = System.nanoTime();

    System.out.printf("two hosts: full backup across the link %.1f s (%d chunks), incremental %.1f s (%d chunks); "
            + "seconds: setup %.1f, backups and restores %.1f, refusals %.1f%n", (b1 - b0) / 1e9,
        f.get("chunks").asInt(), (i1 - i0) / 1e9, in.get("chunks").asInt(), (b0 - t0) / 1e9, (restoredAt - b0) / 1e9,
        (refusedAt - restoredAt) / 1e9);
  }

  /** Takes snapshot {@code name} of {@code vol} through the agent with {@code writers}; its JSON. */
  private static JsonNode snapshot(Path vol, String name, String... writers) {
    List<Object> args = new ArrayList<>(List.of("snapshot", "create", vol, "--name", name));
    args.addAll(List.of(writers));
    args.add("--json");
    return Cli.run(args.toArray()).ok().json().get("snapshots").get(0);
  }

  /** A port free on {@code host} now. */
  private static int freePort(String host) throws Exception {
    try (ServerSocket s = new ServerSocket()) {
      s.bind(new InetSocketAddress(InetAddress.getByName(host), 0));
      return s.getLocalPort();
    }
  }

  private static String java() {
    return Path.of(System.getProperty("java.home"), "bin", "java").toString();
  }

  /** The command line of {@code shade ARGS} in a JVM of its own, on the test class path. */
  private static List<String> shade(List<String> args) {
    List<String> cmd = new ArrayList<>(List.of(java(), "-XX:TieredStopAtLevel=1", "-cp",
        System.getProperty("java.class.path"), Shade.class.getName()));
    cmd.addAll(args);
    return cmd;
  }

  private static List<String> probe(String api, Path ca, Path cert, Path key, String command, String args) {
    List<String> cmd = new ArrayList<>(List.of(java(), "-XX:TieredStopAtLevel=1", "-cp",
        System.getProperty("java.class.path"), RemoteApiProbe.class.getName(), api, ca.toString(),
        cert == null ? "-" : cert.toString(), key == null ? "-" : key.toString(), command));
    if (args != null) {
      cmd.add(args);
    }
    return cmd;
  }

  /** What a process printed and how it ended. */
  private record Proc(List<String> argv, int code, String out, String err) {
    @Override
    public String toString() {
      return String.join(" ", argv) + "\nexit " + code + "\n--- stdout\n" + out + "--- stderr\n" + err;
    }
  }

  /** Runs {@code argv} inside the namespace, bounded by {@link #PROCESS_SECONDS}. */
  private Proc inNamespace(NetNamespace ns, List<String> argv) throws Exception {
    List<String> cmd = ns.exec(argv);
    Path out = Files.createTempFile(tmp, "ns-", ".out");
    Path err = Files.createTempFile(tmp, "ns-", ".err");
    Process p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
        .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
    if (!p.waitFor(PROCESS_SECONDS, TimeUnit.SECONDS)) {
      p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      throw new AssertionError("did not finish within " + PROCESS_SECONDS + " s: " + new Proc(argv, -1,
          Files.readString(out), Files.readString(err)));
    }
    return new Proc(argv, p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
        Files.readString(err, StandardCharsets.UTF_8));
  }

  private static String bash(String script) throws Exception {
    ProcessBuilder pb = new ProcessBuilder("bash", "-c", "set -eo pipefail; " + script);
    pb.environment().put("CP", System.getProperty("java.class.path"));
    pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    Process p = pb.start();
    byte[] o = p.getInputStream().readAllBytes();
    String e = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), script);
    assertEquals(0, p.exitValue(), () -> script + ": " + e);
    return new String(o, StandardCharsets.UTF_8);
  }
}
