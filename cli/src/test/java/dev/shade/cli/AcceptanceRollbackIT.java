package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.shade.testing.CloseAfterEach;
import dev.shade.testing.live.LivePostgres;
import dev.shade.testing.live.NbdMount;
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
 * Acceptance: PostgreSQL 15 on ext4 on a shade volume that {@code shade agent} serves (nbdfuse,
 * a loop device). After snapshot s5 a table is dropped; {@code shade rollback DIR --to s5 --yes}
 * with the writers {@code postgres:…}, {@code fs:MOUNT} and {@code exec:HOOKDIR} (run by the
 * agent) brings PostgreSQL back with the table, and {@code shade rollback --to
 * before-rollback-…} brings the drop back.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class AcceptanceRollbackIT {
  /*
   * The stack, top down: PostgreSQL, ext4 mounted on a loop device, the loop device on the file
   * nbdfuse shows, nbdfuse's NBD connection to the agent. The rollback stops the writers in the
   * order given and starts them in reverse: postgres (pg_ctl stop), fs (umount, remembering
   * the loop device as the source), exec: the hook takes the loop device and nbdfuse down
   * (losetup --detach; umount of nbdfuse's FUSE mount, after which nbdfuse exits and its NBD
   * connection closes, so the agent sees no writer of the origin), and on start brings nbdfuse
   * up again (its own session, a pid file) and attaches the same loop device number to its file,
   * so that fs's start mounts the source it remembered. The hook is a shell script and cannot
   * call the test's NbdMount, so after the rollback that fixture's nbdfuse is the one the hook
   * started (its teardown unmounts the FUSE mount, which ends it; the pid file is the backstop).
   * --disconnect-clients is the other way, but then the fs writer's start would mount a loop
   * device whose nbdfuse has lost its connection.
   */
  private static final String SIZE = "512M";
  private static final int ROWS = 5000;

  @TempDir Path tmp;
  @RegisterExtension final CloseAfterEach teardown = new CloseAfterEach();

  @Test
  void rollbackThroughTheAgent_afterDroppingATable_bringsItBack_andRollingBackTheRollbackBringsTheDropBack()
      throws Exception {
    NbdMount.requireTools();
    LivePostgres.requireTools();
    long t0 = System.nanoTime();
    Path volume = tmp.resolve("volumes/db");
    Cli.run("volume", "create", volume, "--size", SIZE, "--diff-max", SIZE).ok();
    Path nbdSock = tmp.resolve("nbd.sock");
    Path control = tmp.resolve("control.sock");
    AgentProcess agent = AgentProcess.start(tmp, List.of(volume, "--control-socket", control, "--socket", nbdSock),
        control);
    teardown.push(() -> {
      if (agent.process().isAlive()) {
        assertEquals(0, agent.stop(), agent::toString);
      }
    });
    Path nbdfusePid = tmp.resolve("nbd-db/hook-nbdfuse.pid");
    teardown.push(() -> stopHookNbdfuse(nbdfusePid));
    Path mnt = tmp.resolve("mnt/db");
    String uri = "nbd+unix:///db?socket=" + nbdSock;
    NbdMount mount = teardown.push(NbdMount.open(uri, tmp.resolve("nbd-db"), mnt, true));
    LivePostgres pg = teardown.push(LivePostgres.initdb(mnt.resolve("pgdata"), null, tmp.resolve("run")));
    pg.start();
    String pgSpec = "postgres:host=127.0.0.1 port=" + pg.port() + " user=postgres dbname=postgres";
    pg.psql("postgres", "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM "
        + "generate_series(1, " + ROWS + ") g; CREATE TABLE marks (s int)");
    for (int s = 1; s <= 5; s++) {
      pg.psql("postgres", "INSERT INTO marks VALUES (" + s + ")");
      Cli.run("snapshot", "create", volume, "--name", "s" + s, "--writer", pgSpec, "--writer", "fs:" + mnt).ok();
    }
    pg.psql("postgres", "DROP TABLE t; CREATE TABLE after_s5 (x int); INSERT INTO marks VALUES (6)");
    assertEquals("", pg.psql("postgres", "SELECT to_regclass('t')"));
    long prepared = System.nanoTime();

    Path hooks = tmp.resolve("hooks");
    Files.createDirectories(hooks);
    Path hook = hooks.resolve("10-nbd");
    Files.writeString(hook, hookScript(mount, uri, nbdfusePid, tmp.resolve("nbd-db/hook-nbdfuse.log")));
    Files.setPosixFilePermissions(hook, PosixFilePermissions.fromString("rwx------"));
    List<Object> writers = List.of("--writer", pgSpec, "--writer", "fs:" + mnt, "--writer", "exec:" + hooks);

    List<Object> args = new ArrayList<>(List.of("rollback", volume, "--to", "s5", "--yes", "--json"));
    args.addAll(writers);
    JsonNode report = Cli.run(args.toArray()).ok().json();
    long rolledBack = System.nanoTime();
    assertEquals("ok", report.get("outcome").asText(), report::toString);
    assertEquals(List.of("plan", "stop", "stop", "stop", "clients", "before-snapshot", "revert", "start", "start",
        "start"), steps(report), report::toString);
    assertTrue(pg.running() && mount.mounted(), "the test's fixtures still describe the stack");
    assertEquals(String.valueOf(ROWS), pg.psql("postgres", "SELECT count(*) FROM t"), "the dropped table is back");
    assertEquals("", pg.psql("postgres", "SELECT to_regclass('after_s5')"));
    assertEquals("5", pg.psql("postgres", "SELECT max(s) FROM marks"));
    pg.amcheck();
    String before = report.get("beforeSnapshot").get("name").asText();
    assertTrue(before.startsWith("before-rollback-"), before);

    args = new ArrayList<>(List.of("rollback", volume, "--to", before, "--yes", "--json"));
    args.addAll(writers);
    JsonNode undo = Cli.run(args.toArray()).ok().json();
    long undone = System.nanoTime();
    assertEquals("ok", undo.get("outcome").asText(), undo::toString);
    assertEquals("", pg.psql("postgres", "SELECT to_regclass('t')"), "rolling back the rollback brings the drop back");
    assertEquals("after_s5", pg.psql("postgres", "SELECT to_regclass('after_s5')"));
    assertEquals("6", pg.psql("postgres", "SELECT max(s) FROM marks"));
    pg.amcheck();
    long checked = System.nanoTime();

    System.out.printf("rollback: seconds: setup and 5 snapshots %.1f, rollback to s5 %.1f (%s), undo %.1f (%s), "
            + "checks %.1f%n", (prepared - t0) / 1e9, (rolledBack - prepared) / 1e9, stepTimes(report),
        (undone - rolledBack) / 1e9, stepTimes(undo), (checked - undone) / 1e9);
  }

  /**
   * The exec hook that takes the loop device under the fs writer's mount and nbdfuse down on
   * {@code stop} and brings them back on {@code start}, the same loop device number on a new
   * nbdfuse of the same export.
   */
  private static String hookScript(NbdMount mount, String uri, Path pidFile, Path log) {
    String loop = mount.device();
    Path file = mount.file();
    Path fuseDir = file.getParent();
    return String.join("\n",
        "#!/bin/sh",
        "# the NBD chain under the filesystem: loop device " + loop + " on nbdfuse's " + file,
        "set -e",
        "case \"$1\" in",
        "stop)",
        "  losetup --detach " + loop,
        "  # nbdfuse exits when its FUSE mount goes, and its NBD connection with it",
        "  umount '" + fuseDir + "'",
        "  ;;",
        "start)",
        "  rm -f '" + pidFile + "'",
        "  setsid nbdfuse -P '" + pidFile + "' '" + file + "' '" + uri + "' </dev/null >>'" + log + "' 2>&1 &",
        "  i=0",
        "  while ! [ -e '" + file + "' ] || ! [ -s '" + pidFile + "' ]; do",
        "    i=$((i + 1)); [ $i -le 400 ] || { echo 'nbdfuse did not show " + file + " within 20 s' >&2; exit 1; }",
        "    sleep 0.05",
        "  done",
        "  losetup --direct-io=off " + loop + " '" + file + "'",
        "  ;;",
        "esac",
        "");
  }

  /** Ends the nbdfuse a start hook left running, if its FUSE mount's teardown did not. */
  private static void stopHookNbdfuse(Path pidFile) throws Exception {
    if (!Files.exists(pidFile)) {
      return;
    }
    String pid = Files.readString(pidFile).strip();
    if (pid.isEmpty()) {
      return;
    }
    ProcessHandle.of(Long.parseLong(pid)).filter(p -> p.info().command().orElse("").endsWith("nbdfuse"))
        .ifPresent(p -> {
          p.destroy();
          p.onExit().orTimeout(10, TimeUnit.SECONDS).join();
        });
  }

  private static List<String> steps(JsonNode report) {
    List<String> out = new ArrayList<>();
    report.get("steps").forEach(s -> out.add(s.get("step").asText()));
    return out;
  }

  private static String stepTimes(JsonNode report) {
    List<String> out = new ArrayList<>();
    report.get("steps").forEach(s -> out.add(s.get("step").asText()
        + (s.has("writer") ? " " + s.get("writer").asText().replaceFirst(":.*", "") : "")
        + String.format(" %.2f", s.get("seconds").asDouble())));
    return String.join(", ", out);
  }
}
