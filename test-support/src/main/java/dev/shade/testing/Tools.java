package dev.shade.testing;

import java.io.File;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

/**
 * What a test needs from the machine (a tool, root, {@code /dev/fuse}, a loop device), checked
 * so that a missing piece skips the test with the reason and the Debian package to install, or
 * fails it when the environment has {@code CI=true}.
 *
 * <p>{@code bin/test} installs every tool the tests use, so on a CI machine a missing one means
 * the setup is broken, and a green run must mean that every test ran: there the same reason
 * fails the test instead of skipping it. {@link #requireThat} does the same for other parts of
 * the setup a CI machine must provide (a temporary directory that keeps files sparse).
 * Preconditions that are not about the machine's setup (this JVM has a console) are plain JUnit
 * assumptions in the tests themselves.
 *
 * <p>Thread-safe: every method only reads the environment and the filesystem.
 */
public final class Tools {
  /** The environment variable that, set to {@code true}, turns skips into failures. */
  public static final String CI_ENV = "CI";

  /** Folders searched after PATH: sbin tools are often missing from a user's PATH. */
  private static final List<String> SYSTEM_DIRS =
      List.of("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin");

  private Tools() {}

  /** True when the environment has {@code CI=true}: missing tools fail tests instead of skipping them. */
  public static boolean ci() {
    return "true".equalsIgnoreCase(System.getenv(CI_ENV));
  }

  /** The absolute path of the executable {@code tool} on PATH or in the sbin and bin folders, if any. */
  public static Optional<Path> find(String tool) {
    Set<String> dirs = new LinkedHashSet<>();
    String path = System.getenv("PATH");
    if (path != null) {
      for (String d : path.split(File.pathSeparator)) {
        if (!d.isEmpty()) {
          dirs.add(d);
        }
      }
    }
    dirs.addAll(SYSTEM_DIRS);
    for (String d : dirs) {
      Path p = Path.of(d, tool);
      if (Files.isRegularFile(p) && Files.isExecutable(p)) {
        return Optional.of(p);
      }
    }
    return Optional.empty();
  }

  /**
   * Returns the path of {@code tool}; when it is not installed, skips the calling test (fails it
   * under {@code CI=true}) naming the tool and {@code debianPackage}, which provides it.
   */
  public static Path require(String tool, String debianPackage) {
    Optional<Path> found = find(tool);
    if (found.isEmpty()) {
      unavailable(tool + " is not installed (Debian: apt-get install " + debianPackage + "; bin/test installs it)");
    }
    return found.orElseThrow();
  }

  /**
   * Requires every tool of {@code toolToPackage} (tool name to the Debian package that provides
   * it) at once, so that the reason names all the missing ones and their packages.
   */
  public static void require(Map<String, String> toolToPackage) {
    List<String> missing = new ArrayList<>();
    Set<String> packages = new LinkedHashSet<>();
    toolToPackage.forEach((tool, debianPackage) -> {
      if (find(tool).isEmpty()) {
        missing.add(tool);
        packages.add(debianPackage);
      }
    });
    if (!missing.isEmpty()) {
      unavailable(String.join(", ", missing) + (missing.size() == 1 ? " is" : " are") + " not installed (Debian: "
          + "apt-get install " + String.join(" ", packages) + "; bin/test installs "
          + (missing.size() == 1 ? "it" : "them") + ")");
    }
  }

  /** {@link #require(Map)} for tools given as name, package, name, package, ... */
  public static void require(String tool, String debianPackage, String... moreToolsAndPackages) {
    if (moreToolsAndPackages.length % 2 != 0) {
      throw new IllegalArgumentException("tools and packages come in pairs: " + List.of(moreToolsAndPackages));
    }
    Map<String, String> all = new LinkedHashMap<>();
    all.put(tool, debianPackage);
    for (int i = 0; i < moreToolsAndPackages.length; i += 2) {
      all.put(moreToolsAndPackages[i], moreToolsAndPackages[i + 1]);
    }
    require(all);
  }

  /** Requires that this process runs as root; {@code why} says what needs it ("mount a tmpfs"). */
  public static void requireRoot(String why) {
    int uid = Host.uid();
    if (uid != 0) {
      unavailable("needs root to " + why + " (running as uid " + uid + ")");
    }
  }

  /** Requires that {@code /dev/fuse} can be opened for reading and writing (for nbdfuse). */
  public static void requireFuse() {
    Path fuse = Path.of("/dev/fuse");
    try (FileChannel ch = FileChannel.open(fuse, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      // opened: usable
    } catch (IOException | UnsupportedOperationException e) {
      unavailable("/dev/fuse is not usable here (modprobe fuse, or give the container the device): " + e);
    }
  }

  /** Requires a free loop device, as {@code losetup --find} (util-linux) reports it. */
  public static void requireLoopDevice() throws IOException, InterruptedException {
    require("losetup", "util-linux");
    Command loop = Command.run("losetup", "--find");
    if (loop.exitCode() != 0 || !loop.output().startsWith("/dev/")) {
      unavailable("losetup cannot find a free loop device (no loop module or /dev/loop-control here): " + loop);
    }
  }

  /**
   * Requires {@code condition}, a precondition on this machine's setup that {@code bin/test}
   * provides on a CI machine; otherwise skips (or under {@code CI=true} fails) with {@code reason}.
   */
  public static void requireThat(boolean condition, Supplier<String> reason) {
    if (!condition) {
      unavailable(reason.get());
    }
  }

  /**
   * Ends the calling test because the machine lacks something: skips it with {@code reason}, or
   * under {@code CI=true} fails it with the same reason. Never returns normally.
   */
  public static void unavailable(String reason) {
    if (ci()) {
      Assertions.fail(reason + " [" + CI_ENV + "=true: a missing tool or privilege fails the test instead of skipping it]");
    }
    Assumptions.abort("skipped: " + reason);
  }
}
