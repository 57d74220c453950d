package dev.shade.requestor.writer;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.File;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A program a writer runs ({@code mount}, {@code umount}, {@code pg_ctl},
 * {@code pg_archivecleanup}), with a time limit, standard input from {@code /dev/null} and its
 * output captured, so a failure can say what the program said.
 *
 * <p>Thread-safe: stateless.
 */
final class ExternalCommand {
  /*
   * Output goes to a temporary file, not a pipe: a program that starts a daemon (pg_ctl start)
   * leaves the daemon holding its stdout, and a pipe would then never reach end-of-file. On
   * timeout the program and its descendants are killed.
   */
  private ExternalCommand() {}

  /** Folders searched after PATH for system programs (root's PATH may lack sbin). */
  private static final List<String> SYSTEM_DIRS =
      List.of("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin");

  /**
   * What a program printed and how it ended: its exit status, or {@code timedOut} when it was
   * killed at its time limit (exit status -1 then).
   */
  record Result(List<String> argv, int exitCode, String output, boolean timedOut) {
    @Override
    public String toString() {
      return "`" + String.join(" ", argv) + "` exited with " + exitCode
          + (output.isBlank() ? "" : ": " + clip(output.strip()));
    }
  }

  /**
   * Runs {@code argv} and returns its result, whatever its exit status; fails only when it cannot
   * be started or does not end within {@code timeout} ({@code what} names it then).
   */
  static Result run(List<String> argv, Duration timeout, String what) throws IOException {
    Result r = run(argv, Map.of(), null, timeout, what, p -> {});
    if (r.timedOut()) {
      throw new IOException(what + ": `" + String.join(" ", argv) + "` did not end within " + timeout
          + " and was killed; it printed: " + clip(r.output().strip()));
    }
    return r;
  }

  /**
   * Runs {@code argv} in {@code directory} (null: this process's) with {@code environment} added
   * to this process's, and returns its result, also when it outlived {@code timeout} and was
   * killed ({@link Result#timedOut}). {@code started} gets the process as soon as it runs, so
   * another thread may kill it ({@link #kill}). Fails when it cannot be started, or when this
   * thread is interrupted (the program is killed then).
   */
  static Result run(List<String> argv, Map<String, String> environment, Path directory, Duration timeout, String what,
      Consumer<Process> started) throws IOException {
    Path out = Files.createTempFile("shade-writer-", ".out");
    try {
      Process p;
      try {
        ProcessBuilder pb = new ProcessBuilder(argv).redirectErrorStream(true)
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectOutput(out.toFile());
        if (directory != null) {
          pb.directory(directory.toFile());
        }
        pb.environment().putAll(environment);
        p = pb.start();
      } catch (IOException e) {
        throw new IOException(what + ": cannot run `" + String.join(" ", argv) + "`: " + e.getMessage(), e);
      }
      started.accept(p);
      boolean ended;
      try {
        ended = p.waitFor(timeout.toNanos(), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        kill(p);
        Thread.currentThread().interrupt();
        throw new InterruptedIOException(what + ": interrupted while `" + String.join(" ", argv) + "` ran; killed it");
      }
      if (!ended) {
        kill(p);
      }
      return new Result(List.copyOf(argv), ended ? p.exitValue() : -1, Files.readString(out, UTF_8), !ended);
    } finally {
      Files.deleteIfExists(out);
    }
  }

  /** Kills {@code p} and every process it started. */
  static void kill(Process p) {
    p.descendants().forEach(ProcessHandle::destroyForcibly);
    p.destroyForcibly();
  }

  /** {@link #run}, failing with {@code what} and the program's output unless it exited with 0. */
  static Result require(List<String> argv, Duration timeout, String what) throws IOException {
    Result r = run(argv, timeout, what);
    if (r.exitCode() != 0) {
      throw new IOException(what + " failed: " + r);
    }
    return r;
  }

  /** The executable {@code name} on PATH or in the system folders, if any. */
  static Optional<Path> find(String name) {
    String path = System.getenv("PATH");
    if (path != null) {
      for (String d : path.split(File.pathSeparator)) {
        Optional<Path> p = executable(d, name);
        if (p.isPresent()) {
          return p;
        }
      }
    }
    for (String d : SYSTEM_DIRS) {
      Optional<Path> p = executable(d, name);
      if (p.isPresent()) {
        return p;
      }
    }
    return Optional.empty();
  }

  private static Optional<Path> executable(String dir, String name) {
    if (dir.isEmpty()) {
      return Optional.empty();
    }
    Path p = Path.of(dir, name);
    return Files.isRegularFile(p) && Files.isExecutable(p) ? Optional.of(p) : Optional.empty();
  }

  private static String clip(String s) {
    return s.length() <= 4000 ? s : s.substring(0, 2000) + " [...] " + s.substring(s.length() - 2000);
  }
}
