package dev.shade.provider.reliability;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Child JVM that creates the file named by its argument from a shutdown hook, so a test can
 * tell SIGKILL (no hook runs) from SIGTERM (the hook runs). Prints {@code READY} and sleeps.
 */
public final class ShutdownHookChild {
  private ShutdownHookChild() {}

  public static void main(String[] args) throws Exception {
    Path marker = Path.of(args[0]);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        Files.writeString(marker, "hook ran");
      } catch (IOException e) {
        e.printStackTrace();
      }
    }));
    System.out.println("READY");
    System.out.flush();
    Thread.sleep(Long.MAX_VALUE);
  }
}
