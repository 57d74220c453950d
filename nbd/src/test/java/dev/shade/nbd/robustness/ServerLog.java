package dev.shade.nbd.robustness;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * Holds back the server's log while a test floods it on purpose, keeping the recent lines and
 * every error: slf4j-simple writes each line to whatever {@code System.err} is at that moment.
 *
 * <p>Thread-safe: server threads log concurrently.
 */
final class ServerLog implements AutoCloseable {
  private static final int TAIL = 100;
  private final PrintStream original;
  /** Lines at ERROR level or uncaught exceptions, in order. */
  private final List<String> errors = new ArrayList<>();
  /** Every line, in order (a flooded log of this server stays small: bad clients are summarised). */
  private final List<String> all = new ArrayList<>();
  /** The last {@link #TAIL} lines, for failure messages. */
  private final ArrayDeque<String> tail = new ArrayDeque<>();
  /** Bytes of the line being written. */
  private final ByteArrayOutputStream line = new ByteArrayOutputStream();
  /** True while the last error's stack trace is still being printed. */
  private boolean inTrace;

  private ServerLog() {
    this.original = System.err;
  }

  /** Starts capturing until {@link #close()}. */
  static ServerLog capture() {
    ServerLog log = new ServerLog();
    System.setErr(new PrintStream(log.sink(), true, StandardCharsets.UTF_8));
    return log;
  }

  private OutputStream sink() {
    return new OutputStream() {
      @Override
      public void write(int b) {
        take(new byte[] {(byte) b}, 0, 1);
      }

      @Override
      public void write(byte[] b, int off, int len) {
        take(b, off, len);
      }
    };
  }

  private synchronized void take(byte[] b, int off, int len) {
    for (int i = off; i < off + len; i++) {
      if (b[i] == '\n') {
        String s = line.toString(StandardCharsets.UTF_8);
        line.reset();
        ended(s);
      } else {
        line.write(b[i]);
      }
    }
  }

  private void ended(String s) {
    if (tail.size() == TAIL) {
      tail.removeFirst();
    }
    tail.addLast(s);
    all.add(s);
    boolean error = s.contains(" ERROR ") || s.startsWith("Exception in thread");
    boolean trace = inTrace && (s.startsWith("\t") || s.startsWith("Caused by") || s.startsWith("\tSuppressed"));
    if (error || trace) {
      errors.add(s);
      original.println(s);
      inTrace = true;
    } else {
      inTrace = false;
    }
  }

  /** Error lines logged so far. */
  synchronized List<String> errors() {
    return List.copyOf(errors);
  }

  /** Every line logged so far. */
  synchronized List<String> lines() {
    return List.copyOf(all);
  }

  /** The most recent lines, one per line. */
  synchronized String tail() {
    return String.join("\n", tail);
  }

  @Override
  public void close() {
    System.err.flush();
    System.setErr(original);
  }
}
