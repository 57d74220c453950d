package dev.shade.requestor.control;

import java.nio.file.Path;
import java.time.Duration;

/** Run as another user by {@link ControlServerTest}: connects to the socket named and prints what happened. */
public final class PeerProbe {
  private PeerProbe() {}

  public static void main(String[] args) {
    try (ControlClient c = ControlClient.connect(Path.of(args[0]), Duration.ofSeconds(5), false)) {
      System.out.println("connected: " + c.execute("echo", null));
    } catch (ControlException e) {
      System.out.println("refused: " + e.errorClass() + ": " + e.getMessage());
    } catch (Exception e) {
      System.out.println("failed: " + e);
    }
  }
}
