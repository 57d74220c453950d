package dev.shade.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;
import org.opentest4j.TestAbortedException;

class ToolsTest {
  /** A name no Debian package installs. */
  private static final String MISSING = "shade-no-such-tool-7f3a";

  @Test
  void find_shellIsOnEveryLinux() {
    assertTrue(Tools.find("sh").isPresent());
    assertTrue(Tools.find(MISSING).isEmpty());
  }

  @Test
  void require_missingTool_skipsNamingThePackage_orFailsUnderCi() {
    Throwable t = assertThrows(Throwable.class, () -> Tools.require(MISSING, "shade-pkg"));
    assertEquals(Tools.ci() ? AssertionFailedError.class : TestAbortedException.class, t.getClass(), t::toString);
    assertTrue(t.getMessage().contains(MISSING + " is not installed (Debian: apt-get install shade-pkg"), t::getMessage);
  }

  @Test
  void require_several_namesEveryMissingToolAndPackageOnce() {
    Throwable t = assertThrows(Throwable.class,
        () -> Tools.require(Map.of("sh", "dash", MISSING, "p1", MISSING + "2", "p1")));
    assertTrue(t.getMessage().contains(MISSING + ", " + MISSING + "2 are not installed")
        || t.getMessage().contains(MISSING + "2, " + MISSING + " are not installed"), t::getMessage);
    assertTrue(t.getMessage().contains("apt-get install p1;"), t::getMessage);
  }

  @Test
  void require_presentTool_returnsItsPath() {
    assertTrue(Tools.require("sh", "dash").isAbsolute());
  }

  @Test
  void requireThat_true_doesNothing() {
    Tools.requireThat(true, () -> "never");
  }
}
