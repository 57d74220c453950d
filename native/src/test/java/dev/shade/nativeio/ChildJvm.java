package dev.shade.nativeio;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs a main class of these tests in a fresh JVM, either as this user or under a launcher
 * prefix such as {@code setpriv --reuid=65534}, and hands back what it printed.
 *
 * <p>Used where the test JVM itself cannot be the subject: a check that needs a user without
 * root's permission override, or one that provokes SIGBUS and would take the test JVM down if
 * the JVM's fault handling ever broke.
 */
final class ChildJvm {
  /** Classes whose code sources make up the child's classpath: main, tests, JNA. */
  private static final Class<?>[] CLASSPATH_ANCHORS = {FileHandle.class, ChildJvm.class,
      com.sun.jna.Native.class};

  private ChildJvm() {}

  /** The classpath the child needs, pointing at this JVM's own class folders and jars. */
  static String classpath() throws IOException {
    List<String> entries = new ArrayList<>();
    for (Class<?> c : CLASSPATH_ANCHORS) {
      entries.add(codeSource(c).toString());
    }
    return String.join(":", entries);
  }

  /**
   * Copies the child's classpath into {@code into} with read permission for everyone (the
   * Maven repository under /root is not readable by other users) and returns it.
   */
  static String copyClasspath(Path into) throws IOException {
    List<String> entries = new ArrayList<>();
    int i = 0;
    for (Class<?> c : CLASSPATH_ANCHORS) {
      Path src = codeSource(c);
      Path dst = into.resolve("cp" + i++ + (Files.isDirectory(src) ? "" : ".jar"));
      try (var walk = Files.walk(src)) {
        for (Path p : walk.toList()) {
          Path target = dst.resolve(src.relativize(p).toString());
          if (Files.isDirectory(p)) {
            Files.createDirectories(target);
            Files.setPosixFilePermissions(target, PosixFilePermissions.fromString("rwxr-xr-x"));
          } else {
            Files.copy(p, target, StandardCopyOption.REPLACE_EXISTING);
            Files.setPosixFilePermissions(target, PosixFilePermissions.fromString("rw-r--r--"));
          }
        }
      }
      entries.add(dst.toString());
    }
    return String.join(":", entries);
  }

  private static Path codeSource(Class<?> c) throws IOException {
    try {
      return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IOException("cannot locate the classes of " + c.getName(), e);
    }
  }

  /**
   * Runs {@code main} with {@code args} in a new JVM. {@code launcher} (may be empty) is put in
   * front of the java command; {@code scratch} must be writable by the child's user and holds
   * its temporary files, JNA's extracted library and any crash log.
   */
  static Command run(List<String> launcher, String classpath, Path scratch, Class<?> main,
      String... args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(launcher);
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx64m");
    cmd.add("-XX:TieredStopAtLevel=1");
    cmd.add("-XX:-UsePerfData");
    cmd.add("-XX:-CreateCoredumpOnCrash");
    cmd.add("-XX:ErrorFile=" + scratch.resolve("hs_err_pid%p.log"));
    cmd.add("-Djava.io.tmpdir=" + scratch);
    cmd.add("-Djna.tmpdir=" + scratch);
    cmd.add("-cp");
    cmd.add(classpath);
    cmd.add(main.getName());
    cmd.addAll(List.of(args));
    return Command.run(cmd, scratch);
  }
}
