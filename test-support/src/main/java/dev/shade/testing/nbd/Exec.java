package dev.shade.testing.nbd;

import dev.shade.testing.Tools;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Runs the external programs that NBD tests check shade against (nbdinfo, nbdcopy, qemu, nbdkit,
 * fio, openssl) with a time limit, and captures what they print.
 */
public final class Exec {
  /*
   * Output goes to temporary files rather than pipes, so a chatty program can never block on a
   * full pipe while we wait for it, and no reader threads are needed. Standard input is
   * /dev/null: a tool that would prompt gets end-of-file instead of hanging. On timeout the
   * process and all its descendants are killed with SIGKILL and the failure names the command
   * and shows what it had printed.
   */
  private Exec() {}

  /** Debian packages that provide the tools the tests use, for skip messages. */
  private static final Map<String, String> PACKAGES = Map.ofEntries(
      Map.entry("nbdkit", "nbdkit"),
      Map.entry("qemu-nbd", "qemu-utils"),
      Map.entry("openssl", "openssl"),
      Map.entry("stat", "coreutils"),
      Map.entry("nbdinfo", "libnbd-bin"),
      Map.entry("nbdcopy", "libnbd-bin"),
      Map.entry("nbdfuse", "nbdfuse"),
      Map.entry("qemu-img", "qemu-utils"),
      Map.entry("qemu-io", "qemu-utils"),
      Map.entry("fio", "fio"),
      Map.entry("losetup", "util-linux"),
      Map.entry("fsfreeze", "util-linux"),
      Map.entry("mount", "mount"),
      Map.entry("umount", "mount"),
      Map.entry("mkfs.ext4", "e2fsprogs"),
      Map.entry("fsck.ext4", "e2fsprogs"),
      Map.entry("sync", "coreutils"));

  /** What a finished program did. */
  public record Result(List<String> command, int exitCode, String stdout, String stderr) {
    /** Returns this when the exit code is 0, else fails with the command and its output. */
    public Result assertSuccess() {
      if (exitCode != 0) {
        throw new AssertionError(this + " failed");
      }
      return this;
    }

    @Override
    public String toString() {
      return "`" + String.join(" ", command) + "` (exit " + exitCode + ")"
          + (stdout.isBlank() ? "" : "\n--- stdout:\n" + clip(stdout))
          + (stderr.isBlank() ? "" : "\n--- stderr:\n" + clip(stderr));
    }
  }

  private static String clip(String s) {
    return s.length() <= 8000 ? s : s.substring(0, 4000) + "\n[...]\n" + s.substring(s.length() - 4000);
  }

  /** The absolute path of {@code tool} on PATH or in the sbin folders, if any. */
  public static Optional<Path> find(String tool) {
    return Tools.find(tool);
  }

  /**
   * Skips the calling test unless every tool is installed, naming the missing ones; under
   * {@code CI=true} fails it instead (see {@link Tools}).
   */
  public static void assumeTools(String... tools) {
    Map<String, String> wanted = new LinkedHashMap<>();
    for (String t : tools) {
      wanted.put(t, PACKAGES.getOrDefault(t, t));
    }
    Tools.require(wanted);
  }

  /** Runs {@code command} to completion, or kills it and fails after {@code timeout}. */
  public static Result run(Duration timeout, String... command) throws IOException, InterruptedException {
    return run(timeout, List.of(command));
  }

  /** Runs {@code command} to completion, or kills it and fails after {@code timeout}. */
  public static Result run(Duration timeout, List<String> command) throws IOException, InterruptedException {
    Path out = Files.createTempFile("shade-exec-", ".out");
    Path err = Files.createTempFile("shade-exec-", ".err");
    try {
      Process p = builder(command).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
      if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        kill(p);
        throw new AssertionError(new Result(command, -1, read(out), read(err))
            + " did not finish within " + timeout.toSeconds() + " s; killed it");
      }
      return new Result(command, p.exitValue(), read(out), read(err));
    } finally {
      Files.deleteIfExists(out);
      Files.deleteIfExists(err);
    }
  }

  /** Starts {@code command} in the background, its output (both streams) going to {@code log}. */
  public static Process start(Path log, List<String> command) throws IOException {
    return builder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
  }

  /** Kills the process and everything it started, and waits briefly for it to go. */
  public static void kill(Process p) throws InterruptedException {
    p.descendants().forEach(ProcessHandle::destroyForcibly);
    p.destroyForcibly();
    p.waitFor(10, TimeUnit.SECONDS);
  }

  private static ProcessBuilder builder(List<String> command) {
    List<String> cmd = new ArrayList<>(command);
    cmd.set(0, find(cmd.get(0)).map(Path::toString).orElse(cmd.get(0)));
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    pb.environment().put("LC_ALL", "C");
    return pb;
  }

  private static String read(Path p) throws IOException {
    return new String(Files.readAllBytes(p), StandardCharsets.UTF_8); // lenient: tools may print any bytes
  }
}
