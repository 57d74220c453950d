package dev.shade.bench;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/** Finds and runs the external programs of the NBD benchmark (fio, qemu-nbd, nbdkit, ...). */
final class Programs {
  /*
   * Output goes to files, not pipes, so a chatty program never blocks on a full pipe and no
   * reader threads are needed; standard input is /dev/null so nothing waits for a person.
   */

  /** Where a program is found: PATH, then the sbin folders (tests replace it to hide a tool). */
  interface Lookup {
    Optional<Path> find(String program);

    /** PATH plus the usual sbin and bin folders. */
    static Lookup onPath() {
      return program -> {
        Set<String> dirs = new LinkedHashSet<>();
        for (String d : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
          if (!d.isEmpty()) {
            dirs.add(d);
          }
        }
        dirs.addAll(List.of("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"));
        for (String d : dirs) {
          Path p = Path.of(d, program);
          if (Files.isRegularFile(p) && Files.isExecutable(p)) {
            return Optional.of(p);
          }
        }
        return Optional.empty();
      };
    }
  }

  /** What a finished program did. */
  record Result(List<String> command, int exitCode, String stdout, String stderr) {
    boolean ok() {
      return exitCode == 0;
    }

    /** The command, its exit code and the end of what it printed on stderr, as one line. */
    String failure() {
      String tail = stderr.isBlank() ? stdout : stderr;
      tail = tail.strip().replaceAll("\\s*\\R\\s*", "; ");
      if (tail.length() > 300) {
        tail = "..." + tail.substring(tail.length() - 300);
      }
      return "`" + String.join(" ", command) + "` exited " + exitCode + (tail.isEmpty() ? "" : ": " + tail);
    }
  }

  private Programs() {}

  /** Runs {@code command} to completion in {@code dir}, killing it after {@code timeout} (exit code -1). */
  static Result run(Path dir, Duration timeout, List<String> command) throws IOException, InterruptedException {
    Path out = Files.createTempFile(dir, "run-", ".out");
    Path err = Files.createTempFile(dir, "run-", ".err");
    try {
      Process p = builder(dir, command).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
      int code;
      if (p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        code = p.exitValue();
      } else {
        kill(p);
        code = -1;
      }
      String stderr = read(err) + (code == -1 ? "\n(killed after " + timeout.toSeconds() + " s)" : "");
      return new Result(command, code, read(out), stderr);
    } finally {
      Files.deleteIfExists(out);
      Files.deleteIfExists(err);
    }
  }

  /** Starts {@code command} in the background in {@code dir}, both output streams going to {@code log}. */
  static Process start(Path dir, Path log, List<String> command) throws IOException {
    return builder(dir, command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
  }

  /** Asks {@code p} to stop (SIGTERM), then kills it and its children if it is still there after {@code grace}. */
  static void stop(Process p, Duration grace) throws InterruptedException {
    if (!p.isAlive()) {
      return;
    }
    p.destroy();
    if (!p.waitFor(grace.toMillis(), TimeUnit.MILLISECONDS)) {
      kill(p);
    }
  }

  /** Kills {@code p} and everything it started, and waits briefly for it to go. */
  static void kill(Process p) throws InterruptedException {
    p.descendants().forEach(ProcessHandle::destroyForcibly);
    p.destroyForcibly();
    p.waitFor(10, TimeUnit.SECONDS);
  }

  /** The last {@code lines} lines of {@code log} as one line, or "" when there is none. */
  static String tail(Path log, int lines) {
    try {
      List<String> all = Files.readAllLines(log, StandardCharsets.UTF_8);
      return String.join("; ", all.subList(Math.max(0, all.size() - lines), all.size())).strip();
    } catch (IOException | RuntimeException e) {
      return "";
    }
  }

  /** Up to {@code max} lines of {@code log} that contain {@code word} (case-sensitive), joined; "" when none. */
  static String matching(Path log, java.util.regex.Pattern word, int max) {
    try {
      List<String> hits = new ArrayList<>();
      for (String line : Files.readAllLines(log, StandardCharsets.UTF_8)) {
        if (word.matcher(line).find() && hits.size() < max) {
          hits.add(line.strip());
        }
      }
      return String.join("; ", hits);
    } catch (IOException | RuntimeException e) {
      return "";
    }
  }

  private static ProcessBuilder builder(Path dir, List<String> command) {
    ProcessBuilder pb = new ProcessBuilder(new ArrayList<>(command)).directory(dir.toFile());
    pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    pb.environment().put("LC_ALL", "C");
    return pb;
  }

  private static String read(Path p) throws IOException {
    return new String(Files.readAllBytes(p), StandardCharsets.UTF_8);
  }
}
