package dev.shade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;
import picocli.CommandLine;

/** Runs shade commands in this JVM, the way the entry point does, and captures what they print. */
final class Cli {
  static final ObjectMapper JSON = new ObjectMapper();

  private Cli() {}

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

  /** Runs {@code args} on a fresh {@code new CommandLine(new Shade())}, as {@link Shade#main} does. */
  static Result run(Object... args) {
    return run(new Shade(), args);
  }

  /** Runs {@code args} with {@code shade} as the root command (e.g. one with a scripted terminal). */
  static Result run(Shade shade, Object... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine cl = new CommandLine(shade);
    cl.setOut(new PrintWriter(out, true));
    cl.setErr(new PrintWriter(err, true));
    int code = cl.execute(Arrays.stream(args).map(String::valueOf).toArray(String[]::new));
    return new Result(code, out.toString(), err.toString());
  }

  /** A terminal that answers prompts from a script and records them; EOF once the script is done. */
  static final class ScriptedTerminal implements Terminal {
    /** Answers still to give, in order. */
    private final Deque<String> answers = new ArrayDeque<>();
    /** Prompts shown so far. */
    final List<String> prompts = new ArrayList<>();

    ScriptedTerminal(String... answers) {
      this.answers.addAll(Arrays.asList(answers));
    }

    @Override
    public boolean interactive() {
      return true;
    }

    @Override
    public String readLine(String prompt) {
      prompts.add(prompt);
      return answers.isEmpty() ? null : answers.poll();
    }
  }
}
