package dev.shade.offhost.drill;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.File;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Runs the programs of a drill ({@code losetup}, {@code e2fsck}, {@code mount}, {@code pg_ctl},
 * {@code pg_amcheck}) with a time limit, standard input from {@code /dev/null} and their output
 * captured, so that a failed step can say what the program said.
 *
 * <p>Thread-safe: stateless.
 */
final class Programs {
  /*
   * Output goes to a temporary file, not a pipe: pg_ctl start leaves the server holding its
   * stdout, and a pipe would never reach end-of-file. On timeout the program and its
   * descendants are killed.
   */

  /** Folders searched after PATH (root's PATH may lack sbin). */
  private static final List<String> SYSTEM_DIRS =
      List.of("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin");

  private Programs() {}

  /** How a program ended and what it printed (stdout and stderr together). */
  record Result(List<String> argv, int exitCode, String output) {
    boolean ok() {
      return exitCode == 0;
    }

    @Override
    public String toString() {
      return "`" + String.join(" ", argv) + "` exited with " + exitCode
          + (output.isBlank() ? "" : ": " + clip(output.strip()));
    }
  }

  /** Runs {@code argv}; fails when it cannot start or outlives {@code timeout} (then it is killed). */
  static Result run(List<String> argv, Duration timeout) throws IOException {
    Path out = Files.createTempFile("shade-drill-", ".out");
    try {
      Process p;
      try {
        p = new ProcessBuilder(argv).redirectErrorStream(true)
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).redirectOutput(out.toFile()).start();
      } catch (IOException e) {
        throw new IOException("cannot run `" + String.join(" ", argv) + "`: " + e.getMessage(), e);
      }
      boolean ended;
      try {
        ended = p.waitFor(timeout.toNanos(), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        kill(p);
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted while `" + String.join(" ", argv) + "` ran; killed it");
      }
      if (!ended) {
        kill(p);
        throw new IOException("`" + String.join(" ", argv) + "` did not end within " + timeout.toSeconds()
            + " s and was killed; it printed: " + clip(Files.readString(out, UTF_8).strip()));
      }
      return new Result(List.copyOf(argv), p.exitValue(), Files.readString(out, UTF_8));
    } finally {
      Files.deleteIfExists(out);
    }
  }

  /** {@link #run}, failing with the program's output unless it exits with 0. */
  static Result require(List<String> argv, Duration timeout) throws IOException {
    Result r = run(argv, timeout);
    if (!r.ok()) {
      throw new IOException(r.toString());
    }
    return r;
  }

  /** The path of the program {@code name} on PATH or in the system folders. */
  static Optional<Path> find(String name) {
    String path = System.getenv("PATH");
    java.util.LinkedHashSet<String> dirs = new java.util.LinkedHashSet<>();
    if (path != null) {
      dirs.addAll(List.of(path.split(File.pathSeparator)));
    }
    dirs.addAll(SYSTEM_DIRS);
    for (String d : dirs) {
      if (d.isEmpty()) {
        continue;
      }
      Path p = Path.of(d, name);
      if (Files.isRegularFile(p) && Files.isExecutable(p)) {
        return Optional.of(p);
      }
    }
    return Optional.empty();
  }

  /** The path of {@code name}, failing with the Debian package that provides it. */
  static String require(String name, String debianPackage) throws IOException {
    return find(name).orElseThrow(() -> new IOException(name + " is not installed (Debian: apt-get install "
        + debianPackage + ")")).toString();
  }

  private static void kill(Process p) {
    p.descendants().forEach(ProcessHandle::destroyForcibly);
    p.destroyForcibly();
  }

  /** At most the last 2000 characters of {@code s}, on one line. */
  static String clip(String s) {
    String one = s.replace('\n', ' ').replace('\r', ' ');
    return one.length() <= 2000 ? one : "..." + one.substring(one.length() - 2000);
  }
}
