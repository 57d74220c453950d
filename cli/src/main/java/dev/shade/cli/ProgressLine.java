package dev.shade.cli;

import dev.shade.provider.Progress;
import java.io.PrintWriter;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * Shows the progress of long work on stderr: on a terminal, one line redrawn in place with a bar,
 * the bytes done of the total, the rate and the time left; otherwise (a log, a pipe) a plain line
 * with the same figures every few seconds.
 *
 * <p>Not thread-safe: updated by the one thread that does the work (commands that print lines of
 * their own close it first, on that thread, so that the next line starts clean).
 */
final class ProgressLine implements Progress, AutoCloseable {
  /*
   * The rate is the average since the start, and the time left is what is left at that rate:
   * backups, restores and verifies stream at a steady rate once started, so the average is steadier
   * than a recent rate and good enough for an estimate. No estimate is shown before anything is
   * done, nor when the total is unknown (0). Plain lines go out at most every LINE_NANOS and only
   * once the work has lasted that long, so quick work leaves nothing in a log; stdout is never
   * touched, which keeps a --json document the only thing there.
   */

  /** Least time between two redraws of the terminal line. */
  private static final long REDRAW_NANOS = 100_000_000L;
  /** Least time between two plain lines when stderr is not a terminal (a log or a pipe). */
  private static final long LINE_NANOS = 5_000_000_000L;
  /** Characters of the bar between its brackets. */
  private static final int BAR_WIDTH = 24;

  /** Where the progress goes. */
  private final PrintWriter err;
  /** What is in progress, e.g. "import". */
  private final String label;
  /** True to redraw one line with carriage returns, false to print whole lines now and then. */
  private final boolean redraw;
  /** The clock, {@link System#nanoTime} but in tests. */
  private final LongSupplier nanoTime;
  /** When the work began (on {@link #nanoTime}). */
  private final long start;
  /** When progress was last shown, initially the start. */
  private long lastShown;
  /** Length of the line last drawn on the terminal, to blank it out; 0 if none is showing. */
  private int drawnLength;

  ProgressLine(PrintWriter err, String label, boolean redraw) {
    this(err, label, redraw, System::nanoTime);
  }

  /** A progress line on the clock {@code nanoTime} (nanoseconds, as {@link System#nanoTime}). */
  ProgressLine(PrintWriter err, String label, boolean redraw, LongSupplier nanoTime) {
    this.err = err;
    this.label = label;
    this.redraw = redraw;
    this.nanoTime = nanoTime;
    this.start = nanoTime.getAsLong();
    this.lastShown = start;
  }

  @Override
  public void update(long done, long total) {
    long now = nanoTime.getAsLong();
    if (now - lastShown < (redraw ? REDRAW_NANOS : LINE_NANOS)) {
      return;
    }
    lastShown = now;
    if (redraw) {
      String line = bar(done, total, now);
      err.print("\r" + line + " ".repeat(Math.max(0, drawnLength - line.length())));
      drawnLength = line.length();
    } else {
      err.println(plain(done, total, now));
    }
    err.flush();
  }

  /** A duration for people: {@code 850 ms}, {@code 12.3 s}. */
  static String duration(double seconds) {
    return seconds < 1
        ? String.format(Locale.ROOT, "%.0f ms", seconds * 1000)
        : String.format(Locale.ROOT, "%.1f s", seconds);
  }

  /** A time left for people: {@code 42 s}, {@code 3 min 05 s}, {@code 2 h 07 min}. */
  static String eta(double seconds) {
    long s = Math.round(Math.max(0, seconds));
    if (s < 60) {
      return s + " s";
    }
    if (s < 3600) {
      return String.format(Locale.ROOT, "%d min %02d s", s / 60, s % 60);
    }
    return String.format(Locale.ROOT, "%d h %02d min", s / 3600, s % 3600 / 60);
  }

  /** Seconds since the work began. */
  double elapsedSeconds() {
    return (nanoTime.getAsLong() - start) / 1e9;
  }

  /** The terminal form: {@code verify [#########---------------]  38%  12 MiB of 32 MiB  4 MiB/s  ETA 5 s}. */
  private String bar(long done, long total, long now) {
    StringBuilder b = new StringBuilder(label).append(' ');
    if (total > 0) {
      int filled = (int) Math.min(BAR_WIDTH, done * BAR_WIDTH / total);
      b.append('[').append("#".repeat(filled)).append("-".repeat(BAR_WIDTH - filled)).append("] ")
          .append(String.format(Locale.ROOT, "%3d%%", percent(done, total))).append("  ");
    }
    b.append(Sizes.format(done));
    if (total > 0) {
      b.append(" of ").append(Sizes.format(total));
    }
    b.append("  ").append(Sizes.format(rate(done, now))).append("/s");
    String left = left(done, total, now);
    if (left != null) {
      b.append("  ETA ").append(left);
    }
    return b.toString();
  }

  /** The plain form: {@code verify: 38%, 12 MiB of 32 MiB, 4 MiB/s, 5 s left (8.0 s so far)}. */
  private String plain(long done, long total, long now) {
    StringBuilder b = new StringBuilder(label).append(": ");
    if (total > 0) {
      b.append(percent(done, total)).append("%, ");
    }
    b.append(Sizes.format(done));
    if (total > 0) {
      b.append(" of ").append(Sizes.format(total));
    }
    b.append(", ").append(Sizes.format(rate(done, now))).append("/s");
    String left = left(done, total, now);
    if (left != null) {
      b.append(", ").append(left).append(" left");
    }
    return b.append(" (").append(duration((now - start) / 1e9)).append(" so far)").toString();
  }

  private static int percent(long done, long total) {
    return (int) Math.min(100, Math.max(0, done) * 100 / total);
  }

  /** Bytes per second since the start. */
  private long rate(long done, long now) {
    return (long) (done / Math.max(1e-9, (now - start) / 1e9));
  }

  /** The time left at the average rate, or null when it cannot be told (nothing done yet, no total). */
  private String left(long done, long total, long now) {
    if (total <= 0 || done <= 0) {
      return null;
    }
    double seconds = (now - start) / 1e9;
    return eta(Math.max(0, total - done) * seconds / done);
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
