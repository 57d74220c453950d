package dev.shade.offhost.backup;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * The process that runs a backup job, as the catalog records it (schema step 5): its host's name,
 * its pid and start time (a pid alone may be reused), and the absolute path of the tape library
 * it writes to.
 *
 * <p>Immutable, so thread-safe.
 *
 * @param processStarted when the process started, or null when the system does not say
 */
public record JobOwner(String host, long pid, Instant processStarted, String library) {
  /** Start times within this of each other are one process (they come from clock ticks since boot). */
  private static final Duration SAME_START = Duration.ofSeconds(2);

  /**
   * This process, writing to the library in {@code libraryDir} (named by its real path, so that
   * every spelling of it, through links or relative, is one library).
   */
  public static JobOwner current(Path libraryDir) {
    ProcessHandle self = ProcessHandle.current();
    return new JobOwner(hostName(), self.pid(), self.info().startInstant().orElse(null), libraryPath(libraryDir));
  }

  /** The real path of {@code dir}, or its absolute normalized path when it cannot be resolved. */
  static String libraryPath(Path dir) {
    try {
      return dir.toRealPath().toString();
    } catch (IOException e) {
      return dir.toAbsolutePath().normalize().toString();
    }
  }

  /**
   * True if the process this names still runs on this host: its pid is alive and, when both start
   * times are known, it started when this says (else the pid was reused by another process).
   * Only meaningful on the host this names.
   */
  public static boolean alive(JobOwner o) {
    Optional<ProcessHandle> h = ProcessHandle.of(o.pid());
    if (h.isEmpty() || !h.get().isAlive()) {
      return false;
    }
    Optional<Instant> started = h.get().info().startInstant();
    if (o.processStarted() == null || started.isEmpty()) {
      return true; // cannot tell a reused pid: leave the job alone
    }
    return Duration.between(o.processStarted(), started.get()).abs().compareTo(SAME_START) <= 0;
  }

  /** This host's name: the kernel's (Linux), else what the resolver says, else "localhost". */
  static String hostName() {
    try {
      String n = Files.readString(Path.of("/proc/sys/kernel/hostname"), StandardCharsets.UTF_8).trim();
      if (!n.isEmpty()) {
        return n;
      }
    } catch (IOException | RuntimeException e) {
      // not Linux: ask the resolver
    }
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (IOException e) {
      return "localhost";
    }
  }
}
