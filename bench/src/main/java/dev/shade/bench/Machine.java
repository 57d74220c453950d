package dev.shade.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * What the results say about the machine they were measured on: its load, the versions of the
 * tools that ran. Thread-safe: every method only reads.
 */
final class Machine {
  private Machine() {}

  /** {@code /proc/loadavg}'s 1, 5 and 15 minute load averages, or "unknown". */
  static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException | RuntimeException e) {
      return "unknown";
    }
  }

  /** The first line {@code program flag} prints (run in {@code dir}), "not installed", or "unknown: why". */
  static String version(Programs.Lookup tools, Path dir, String program, String flag) {
    Optional<Path> p = tools.find(program);
    if (p.isEmpty()) {
      return "not installed";
    }
    try {
      Programs.Result r = Programs.run(dir, Duration.ofSeconds(10), List.of(p.get().toString(), flag));
      String text = r.stdout().isBlank() ? r.stderr() : r.stdout();
      return text.lines().findFirst().orElse("unknown").strip();
    } catch (IOException e) {
      return "unknown: " + e.getMessage();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "unknown";
    }
  }

  /** The JVM's name and version, e.g. "OpenJDK 64-Bit Server VM 17.0.15". */
  static String java() {
    return System.getProperty("java.vm.name") + " " + System.getProperty("java.version");
  }

  /**
   * Whether the kernel hands free memory back to a hypervisor (free page reporting, through
   * virtio-balloon): "order N" (free blocks of 2^N pages and larger are reported), or "off" when
   * the kernel has none. On such a machine memory freed a moment ago costs a host page fault per
   * page on its next use, which slows any step that fills new page cache (docs/performance.md,
   * "Free page reporting").
   */
  static String freePageReporting() {
    Path order = Path.of("/sys/module/page_reporting/parameters/page_reporting_order");
    try {
      return Files.isReadable(order) ? "order " + Files.readString(order).trim() : "off";
    } catch (IOException e) {
      return "unknown";
    }
  }

  /** The file system type of {@code dir}, or "unknown". */
  static String fileSystem(Path dir) {
    try {
      return Files.getFileStore(dir).type();
    } catch (IOException e) {
      return "unknown";
    }
  }
}
