package dev.shade.testing;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A finished external command, for tests that check shade against real tools ({@code stat},
 * {@code df}, {@code flock}, {@code mount}) or run code in another process. Standard input is
 * {@code /dev/null}: a tool that would prompt gets end-of-file instead of hanging.
 *
 * @param argv the command line that ran
 * @param exitCode its exit status
 * @param output what it printed on standard output and standard error, interleaved
 */
public record Command(List<String> argv, int exitCode, String output) {

  /** How long any command may take before the test gives up on it. */
  private static final long TIMEOUT_SECONDS = 60;

  /** Runs {@code argv} in the current directory and waits for it to finish. */
  public static Command run(String... argv) throws IOException, InterruptedException {
    return run(List.of(argv), null);
  }

  /** Runs {@code argv} in {@code workDir} (null: the current one) and waits for it to finish. */
  public static Command run(List<String> argv, Path workDir) throws IOException, InterruptedException {
    // Output goes to a file, not a pipe, so a child that prints a lot cannot block and a child
    // that hangs is still bounded by the timeout.
    Path out = Files.createTempFile("shade-command-", ".out");
    try {
      ProcessBuilder pb = new ProcessBuilder(argv).redirectErrorStream(true)
          .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
          .redirectOutput(out.toFile());
      if (workDir != null) {
        pb.directory(workDir.toFile());
      }
      Process p = pb.start();
      if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        p.destroyForcibly().waitFor();
        throw new IOException("command did not finish within " + TIMEOUT_SECONDS + " s: " + argv
            + "; output so far: " + Files.readString(out, UTF_8));
      }
      return new Command(List.copyOf(argv), p.exitValue(), Files.readString(out, UTF_8));
    } finally {
      Files.deleteIfExists(out);
    }
  }

  /** This command's output, failing with the whole story when it did not exit with 0. */
  public String requireSuccess() {
    if (exitCode != 0) {
      throw new AssertionError(this.toString());
    }
    return output;
  }

  @Override
  public String toString() {
    return String.join(" ", argv) + " exited with " + exitCode + ": " + output.strip();
  }
}
