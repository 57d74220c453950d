package dev.shade.nativeio;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.sun.jna.Native;
import dev.shade.testing.ChildJvm;
import dev.shade.testing.Command;
import dev.shade.testing.Host;
import dev.shade.testing.Tools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * EACCES from {@code open}: a {@link PermissionException} naming the call, the path, the errno
 * and what to check.
 *
 * <p>Root bypasses permission bits, so as root the opens run in a child JVM that
 * {@code setpriv} drops to user nobody (65534); as any other user they run in this JVM.
 */
class PermissionDeniedTest {
  private static final String NOBODY = "65534";

  /** World-readable folder with the files, the copied classpath and the child's scratch. */
  private static Path shared;
  /** Classpath of the child JVM, copied into {@link #shared}; null when opens run in-process. */
  private static String childClasspath;
  /** A file only its owner (root, or this user with mode 000) may read. */
  private static Path secret;
  /** A file everybody may read and nobody without root may write. */
  private static Path readable;

  @BeforeAll
  static void prepare() throws Exception {
    boolean root = Host.isRoot();
    if (root) {
      // as root, without setpriv no unprivileged open can be made
      Tools.require("setpriv", "util-linux");
    }
    shared = Files.createTempDirectory("shade-eacces-");
    Files.setPosixFilePermissions(shared, PosixFilePermissions.fromString("rwxr-xr-x"));
    secret = Files.write(shared.resolve("secret.img"), new byte[16]);
    readable = Files.write(shared.resolve("readable.img"), new byte[16]);
    Files.setPosixFilePermissions(readable, PosixFilePermissions.fromString("r--r--r--"));
    if (root) {
      Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString("rw-------"));
      Path scratch = Files.createDirectory(shared.resolve("scratch"));
      Files.setPosixFilePermissions(scratch, PosixFilePermissions.fromString("rwxrwxrwx"));
      childClasspath = ChildJvm.copyClasspath(Files.createDirectory(shared.resolve("cp")),
          FileHandle.class, OpenProbe.class, Native.class);
    } else {
      Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString("---------"));
    }
  }

  @AfterAll
  static void cleanUp() throws Exception {
    Host.deleteTree(shared);
  }

  @Test
  void openReadOnly_fileWithoutReadPermission_throwsPermissionExceptionWithEacces()
      throws Exception {
    List<String> r = openUnprivileged("ro", secret);

    assertEquals(List.of("PermissionException", "EACCES", "open", secret.toString(),
        "open(" + secret + ") failed: Permission denied (EACCES); "
            + "check the permissions of the path and its directories"), r);
  }

  @Test
  void openReadWrite_fileWithoutWritePermission_throwsPermissionExceptionWithEacces()
      throws Exception {
    List<String> r = openUnprivileged("rw", readable);

    assertEquals("PermissionException", r.get(0), r::toString);
    assertEquals("EACCES", r.get(1), r::toString);
    assertEquals(readable.toString(), r.get(3), r::toString);
  }

  @Test
  void openReadOnly_worldReadableFile_opens() throws Exception {
    // The control case: the unprivileged opener works, so the failures above are EACCES proper.
    assertEquals(List.of("opened"), openUnprivileged("ro", readable));
  }

  /** Runs {@link OpenProbe} without root's permission override and returns its report. */
  private static List<String> openUnprivileged(String mode, Path path) throws Exception {
    if (childClasspath == null) {
      return OpenProbe.describe(mode, path);
    }
    Command c = ChildJvm.run(List.of("setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY,
            "--clear-groups", "--"),
        childClasspath, shared.resolve("scratch"), OpenProbe.class, mode, path.toString());
    return List.of(c.requireSuccess().strip().split("\n"));
  }
}
