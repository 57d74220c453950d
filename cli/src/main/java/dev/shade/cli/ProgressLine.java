package dev.shade.cli;

import dev.shade.provider.Progress;
import java.io.PrintWriter;
import java.util.Locale;

/** Shows the progress of long work on stderr: one redrawn line on a terminal, occasional lines otherwise. */
final class ProgressLine implements Progress, AutoCloseable {
  /** Least time between two redraws of the terminal line. */
  private static final long REDRAW_NANOS = 100_000_000L;
  /** Least time between two plain lines when stderr is not a terminal (a log or a pipe). */
  private static final long LINE_NANOS = 5_000_000_000L;

  /** Where the progress goes. */
  private final PrintWriter err;
  /** What is in progress, e.g. "import". */
  private final String label;
  /** True to redraw one line with carriage returns, false to print whole lines now and then. */
  private final boolean redraw;
  /** When the work began ({@link System#nanoTime()}). */
  private final long start;
  /** When progress was last shown, initially the start. */
  private long lastShown;
  /** Length of the line last drawn on the terminal, to blank it out; 0 if none is showing. */
  private int drawnLength;

  ProgressLine(PrintWriter err, String label, boolean redraw) {
    this.err = err;
    this.label = label;
    this.redraw = redraw;
    this.start = System.nanoTime();
    this.lastShown = start;
  }

  @Override
  public void update(long done, long total) {
    long now = System.nanoTime();
    if (now - lastShown < (redraw ? REDRAW_NANOS : LINE_NANOS)) {
      return;
    }
    lastShown = now;
    String line = describe(done, total, now);
    if (redraw) {
      err.print("\r" + line + " ".repeat(Math.max(0, drawnLength - line.length())));
      drawnLength = line.length();
    } else {
      err.println(line);
    }
    err.flush();
  }

  /** A duration for people: {@code 850 ms}, {@code 12.3 s}. */
  static String duration(double seconds) {
    return seconds < 1
        ? String.format(Locale.ROOT, "%.0f ms", seconds * 1000)
        : String.format(Locale.ROOT, "%.1f s", seconds);
  }

  /** Seconds since the work began. */
  double elapsedSeconds() {
    return (System.nanoTime() - start) / 1e9;
  }

  private String describe(long done, long total, long now) {
    double seconds = Math.max(1e-9, (now - start) / 1e9);
    String percent = total > 0
        ? String.format(Locale.ROOT, "%3d%%", (int) Math.min(100, done * 100 / total))
        : "";
    return String.format(Locale.ROOT, "%s %s  %s of %s  %s/s", label, percent, Sizes.format(done),
        Sizes.format(total), Sizes.format((long) (done / seconds)));
  }

  /** Blanks out the terminal line, so what the command prints next starts clean. */
  @Override
  public void close() {
    if (drawnLength > 0) {
      err.print("\r" + " ".repeat(drawnLength) + "\r");
      err.flush();
      drawnLength = 0;
    }
  }
}
