package dev.shade.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * CPU time a process has used, read from {@code /proc/PID/stat}: user and system time of all its
 * threads plus those of its waited-for children (utime + stime + cutime + cstime).
 *
 * <p>Thread-safe: stateless.
 */
final class ProcessCpu {
  /*
   * The fields after the command name (which is in parentheses and may hold spaces, so the line
   * is split after its last ')'): field 14 is utime, 15 stime, 16 cutime, 17 cstime, in clock
   * ticks. Linux has reported them in USER_HZ = 100 ticks a second on every architecture since
   * 2.6 (sysconf(_SC_CLK_TCK)), whatever CONFIG_HZ the kernel runs at.
   */

  /** Clock ticks a second of /proc's time fields (USER_HZ). */
  static final double TICKS_PER_SECOND = 100.0;

  private ProcessCpu() {}

  /** CPU seconds of {@code pid} and its waited-for children so far. */
  static double seconds(long pid) throws IOException {
    Path stat = Path.of("/proc", Long.toString(pid), "stat");
    String line;
    try {
      line = Files.readString(stat);
    } catch (IOException e) {
      throw new IOException("cannot read the CPU time of process " + pid + " from " + stat + " (has it exited?): "
          + e.getMessage(), e);
    }
    int close = line.lastIndexOf(')');
    if (close < 0) {
      throw new IOException("unexpected contents of " + stat + ": " + line);
    }
    // after ") " come field 3 (state) onwards: utime is field 14, the 12th here
    String[] f = line.substring(close + 2).trim().split("\\s+");
    if (f.length < 15) {
      throw new IOException("too few fields in " + stat + ": " + line);
    }
    long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]) + Long.parseLong(f[13]) + Long.parseLong(f[14]);
    return ticks / TICKS_PER_SECOND;
  }

  /** CPU seconds of this JVM so far (all its threads). */
  static double self() throws IOException {
    return seconds(ProcessHandle.current().pid());
  }
}
