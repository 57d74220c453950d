package dev.shade.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.cli.Shade;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.List;
import picocli.CommandLine;

/** Runs commands of the bench jar in this JVM, the way {@link ShadeBench#main} does, and captures what they print. */
final class BenchCli {
  private static final ObjectMapper JSON = new ObjectMapper();

  private BenchCli() {}

  /** What one run did. */
  record Result(int code, String out, String err) {
    /** The non-empty lines of stderr. */
    List<String> errLines() {
      return err.lines().filter(l -> !l.isBlank()).toList();
    }

    /** Stdout parsed as the one JSON document it must be. */
    JsonNode json() {
      try {
        return JSON.readTree(out);
      } catch (IOException e) {
        throw new UncheckedIOException("stdout is not one JSON document: " + out, e);
      }
    }

    /** Asserts success and returns this. */
    Result ok() {
      assertEquals(0, code, () -> "exit code; stderr: " + err + " stdout: " + out);
      return this;
    }

    @Override
    public String toString() {
      return "exit " + code + "\n--- stdout\n" + out + "--- stderr\n" + err;
    }
  }

  /** Runs {@code args} on a fresh command line of the bench jar. */
  static Result run(Object... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine cl = Shade.commandLine(new BenchCommand());
    cl.setOut(new PrintWriter(out, true));
    cl.setErr(new PrintWriter(err, true));
    int code = cl.execute(Arrays.stream(args).map(String::valueOf).toArray(String[]::new));
    return new Result(code, out.toString(), err.toString());
  }
}
