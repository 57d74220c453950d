package dev.shade.requestor.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.nbd.server.NbdServer;
import dev.shade.provider.Progress;
import dev.shade.provider.SnapshotRef;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.requestor.export.VolumeExports;
import dev.shade.requestor.writer.Writer;
import dev.shade.requestor.writer.WriterMetadata;
import dev.shade.testing.Tools;
import dev.shade.testing.nbd.Exec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real PostgreSQL on ext4 on the volume's NBD export (nbdfuse, a loop device): after
 * snapshot s5 a table is dropped; the rollback to s5 (stopping PostgreSQL, then unmounting and
 * disconnecting, and the reverse after) brings PostgreSQL back with the table, and rolling
 * back to the before-rollback snapshot brings back the dropped state.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class RollbackPostgresTest {
  /*
   * The writers are test doubles that do what the real fs:, postgres: and exec: writers do
   * (pg_ctl stop/start; umount, losetup -d, unmounting nbdfuse so that its NBD connection
   * ends; and the reverse), so that this test needs nothing but the rollback itself.
   */
  private static final Duration CMD = Duration.ofSeconds(60);
  private static final Path PG_BIN = Path.of("/usr/lib/postgresql/15/bin");
  private static final int PORT = 54_331;

  @TempDir Path tmp;
  /** Where nbdfuse shows the origin as a file. */
  private Path fuseDir;
  /** The running nbdfuse, or null. */
  private Process nbdfuse;
  /** The loop device over nbdfuse's file, or null. */
  private String loop;
  /** The ext4 mount point. */
  private Path fs;
  private Path sockets;
  private String uri;

  @Test
  void rollback_afterDroppingATable_bringsItBack_andUndoingBringsTheDropBack() throws Exception {
    Tools.requireRoot("mount, losetup and nbdfuse");
    Exec.assumeTools("nbdfuse", "losetup", "mkfs.ext4", "mount", "umount", "fsfreeze", "runuser");
    Tools.requireFuse();
    Tools.requireLoopDevice();
    Tools.requireThat(Files.isExecutable(PG_BIN.resolve("pg_ctl")), () -> "PostgreSQL 15 is not installed in " + PG_BIN);
    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwx--x--x")); // postgres reaches the mount

    Volume volume = Volume.create(tmp.resolve("db"), VolumeConfig.of(128L << 20).withDiffMax(256L << 20));
    Path nbdSock = tmp.resolve("nbd.sock");
    NbdServer server = NbdServer.start(new VolumeExports(List.of(volume)), new NbdServer.Config().socket(nbdSock));
    uri = "nbd+unix:///db?socket=" + nbdSock;
    fuseDir = tmp.resolve("fuse");
    fs = tmp.resolve("fs");
    sockets = tmp.resolve("sockets");
    Files.createDirectories(sockets);
    Files.setPosixFilePermissions(sockets, PosixFilePermissions.fromString("rwxrwxrwx"));
    Path data = fs.resolve("pg/data");
    try {
      attach();
      run("mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", loop);
      mount();
      Files.createDirectories(data.getParent());
      run("chown", "-R", "postgres:postgres", data.getParent().toString());
      pg("initdb", "-D", data.toString(), "-A", "trust", "-U", "postgres", "--no-sync");
      startPg(data);
      sql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;");

      // s5: a checkpoint, then the filesystem frozen for the instant of the snapshot
      sql("CHECKPOINT");
      run("fsfreeze", "-f", fs.toString());
      try {
        volume.createSnapshot("s5");
      } finally {
        run("fsfreeze", "-u", fs.toString());
      }
      sql("DROP TABLE t; CREATE TABLE after_s5 (x int);");
      assertEquals("", sql("SELECT to_regclass('t')"));

      List<String> steps = new ArrayList<>();
      Rollback.WriterFactory writers = spec -> spec.equals("postgres")
          ? new Steps(spec, steps, () -> pg("pg_ctl", "-D", data.toString(), "-m", "fast", "-w", "stop"), () -> startPg(data))
          : new Steps(spec, steps, this::detach, () -> {
              attach();
              mount();
            });
      Map<String, Object> report = Rollback.run(volume,
          new Rollback.Options(SnapshotRef.ofName("s5"), List.of("postgres", "stack"), true, false, false),
          writers, clients(server, volume), Progress.NONE, Clock.systemUTC());
      assertEquals("ok", report.get("outcome"), report::toString);
      assertEquals(List.of("stop postgres", "stop stack", "start stack", "start postgres"), steps);
      assertEquals("5000", sql("SELECT count(*) FROM t"), "the dropped table is back");
      assertEquals("", sql("SELECT to_regclass('after_s5')"));

      @SuppressWarnings("unchecked")
      String before = ((Map<String, Object>) report.get("beforeSnapshot")).get("name").toString();
      Rollback.run(volume, new Rollback.Options(SnapshotRef.ofName(before), List.of("postgres", "stack"), true, false, false),
          writers, clients(server, volume), Progress.NONE, Clock.systemUTC());
      assertEquals("", sql("SELECT to_regclass('t')"), "undoing the rollback brings the drop back");
      assertEquals("after_s5", sql("SELECT to_regclass('after_s5')"));
    } finally {
      Exec.run(CMD, "runuser", "-u", "postgres", "--", PG_BIN.resolve("pg_ctl").toString(), "-D", data.toString(),
          "-m", "immediate", "stop");
      try {
        detach();
      } catch (Exception | AssertionError e) {
        // best effort, lazily: leave no mount behind
        Exec.run(CMD, "umount", "-l", fs.toString());
        if (loop != null) {
          Exec.run(CMD, "losetup", "-d", loop);
        }
        Exec.run(CMD, "umount", "-l", fuseDir.toString());
        if (nbdfuse != null) {
          Exec.kill(nbdfuse);
        }
        throw e;
      } finally {
        server.close();
        volume.close();
      }
    }
  }

  /** The NBD clients of the origin as the server lists them. */
  private static Rollback.Clients clients(NbdServer server, Volume volume) {
    return new Rollback.Clients() {
      @Override
      public List<String> writableClients(Volume v) {
        List<String> out = new ArrayList<>();
        for (NbdServer.Client c : server.clients()) {
          if (c.writable() && VolumeExports.originName(v).equals(c.export())) {
            out.add(c.peer());
          }
        }
        return out;
      }

      @Override
      public int disconnect(Volume v) throws IOException {
        try {
          return server.disconnect(VolumeExports.exportsOf(v), Duration.ofSeconds(10));
        } catch (InterruptedException e) {
          throw new IOException(e);
        }
      }
    };
  }

  // ------------------------------------------------------------------ the stack: nbdfuse, loop, ext4

  /** nbdfuse over the origin, and a loop device over its file. */
  private void attach() throws Exception {
    Files.createDirectories(fuseDir);
    Path pid = tmp.resolve("nbdfuse.pid");
    Files.deleteIfExists(pid);
    nbdfuse = Exec.start(tmp.resolve("nbdfuse.log"), List.of("nbdfuse", "-P", pid.toString(), fuseDir.toString(), uri));
    Path file = fuseDir.resolve("nbd");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!(Files.exists(pid) && Files.exists(file))) {
      if (System.nanoTime() > deadline || !nbdfuse.isAlive()) {
        throw new IOException("nbdfuse did not come up: " + Files.readString(tmp.resolve("nbdfuse.log")));
      }
      Thread.sleep(50);
    }
    loop = run("losetup", "--find", "--show", file.toString()).trim();
  }

  private void mount() throws Exception {
    Files.createDirectories(fs);
    run("mount", "-t", "ext4", loop, fs.toString());
  }

  /** Unmounts ext4, detaches the loop device and unmounts nbdfuse, whose NBD connection then ends. */
  private void detach() throws Exception {
    if (isMounted(fs)) {
      run("umount", fs.toString());
    }
    if (loop != null) {
      run("losetup", "-d", loop);
      loop = null;
    }
    if (nbdfuse != null) {
      if (isMounted(fuseDir)) {
        run("umount", fuseDir.toString());
      }
      if (!nbdfuse.waitFor(15, TimeUnit.SECONDS)) {
        Exec.kill(nbdfuse);
      }
      nbdfuse = null;
    }
  }

  private static boolean isMounted(Path at) throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/self/mounts"))) {
      String[] f = line.split(" ");
      if (f.length > 1 && f[1].equals(at.toAbsolutePath().toString())) {
        return true;
      }
    }
    return false;
  }

  // ------------------------------------------------------------------ PostgreSQL

  private void startPg(Path data) throws Exception {
    Path log = sockets.resolve("pg.log");
    // postmaster.pid as the snapshot holds it names the postmaster of then, stopped since; where
    // PID 1 reaps orphans late (containers), that PID is a zombie for a moment and PostgreSQL
    // takes it for a running server. This test stopped that server itself: the file is stale.
    Files.deleteIfExists(data.resolve("postmaster.pid"));
    for (int attempt = 1; ; attempt++) {
      try {
        pg("pg_ctl", "-D", data.toString(), "-l", log.toString(), "-w",
            "-o", "-k " + sockets + " -p " + PORT + " -c listen_addresses=''", "start");
        return;
      } catch (AssertionError e) {
        String pid = Files.exists(data.resolve("postmaster.pid")) ? Files.readAllLines(data.resolve("postmaster.pid")).get(0) : "";
        String ps = pid.isEmpty() ? "" : Exec.run(CMD, "ps", "-o", "pid,stat,comm", "-p", pid).stdout();
        if (attempt < 20 && ps.contains(" Z")) {
          Thread.sleep(500);
          continue;
        }
        throw new AssertionError(e.getMessage() + "\n--- ps of the postmaster.pid's " + pid + ":\n" + ps
            + "\n--- the server's log:\n" + (Files.exists(log) ? Files.readString(log) : "(none)"), e);
      }
    }
  }

  private String sql(String sql) throws Exception {
    return pg("psql", "-h", sockets.toString(), "-p", String.valueOf(PORT), "-U", "postgres", "-d", "postgres",
        "-v", "ON_ERROR_STOP=1", "-Atqc", sql).trim();
  }

  private static String pg(String tool, String... args) throws Exception {
    List<String> cmd = new ArrayList<>(List.of("runuser", "-u", "postgres", "--", PG_BIN.resolve(tool).toString()));
    cmd.addAll(List.of(args));
    return run(cmd.toArray(String[]::new));
  }

  private static String run(String... cmd) throws Exception {
    return Exec.run(CMD, cmd).assertSuccess().stdout();
  }

  /** A writer whose stop and start run the given steps and record them. */
  private static final class Steps implements Writer {
    interface Step {
      void run() throws Exception;
    }

    private final String spec;
    private final List<String> log;
    private final Step stop;
    private final Step start;

    Steps(String spec, List<String> log, Step stop, Step start) {
      this.spec = spec;
      this.log = log;
      this.stop = stop;
      this.start = start;
    }

    @Override
    public String spec() {
      return spec;
    }

    @Override
    public Map<String, Object> identify() {
      return Map.of();
    }

    @Override
    public void prepare() {}

    @Override
    public void freeze(Duration limit) {}

    @Override
    public void thaw() {}

    @Override
    public WriterMetadata postSnapshot() {
      return WriterMetadata.none(spec);
    }

    @Override
    public void abort() {}

    @Override
    public void stop() throws IOException {
      log.add("stop " + spec);
      call(stop);
    }

    @Override
    public void start() throws IOException {
      log.add("start " + spec);
      call(start);
    }

    private static void call(Step s) throws IOException {
      try {
        s.run();
      } catch (IOException e) {
        throw e;
      } catch (Exception e) {
        throw new IOException(e.toString(), e);
      }
    }

    @Override
    public void close() {}
  }
}
