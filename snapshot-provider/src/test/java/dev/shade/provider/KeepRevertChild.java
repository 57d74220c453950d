package dev.shade.provider;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * Child JVM of {@link KeepNewerRevertTest}: opens the volume in its first argument and reverts
 * it to the snapshot named by the second, keeping the newer snapshots. Prints {@code ACK 0}
 * once the fraction of the copy back given by the third argument is done; with a fourth
 * argument {@code pause} it then stops there (inside the revert) until killed. Prints
 * {@code DONE} after the revert returned and waits to be killed without closing the volume.
 */
public final class KeepRevertChild {
  private KeepRevertChild() {}

  public static void main(String[] args) throws Exception {
    PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.US_ASCII);
    Volume v = Volume.open(Path.of(args[0]));
    double at = Double.parseDouble(args[2]);
    boolean pause = args.length > 3 && args[3].equals("pause");
    boolean[] acked = {false};
    v.revert(SnapshotRef.ofName(args[1]), true, (done, total) -> {
      if (!acked[0] && done >= at * total) {
        acked[0] = true;
        out.println("ACK 0");
        out.flush();
        if (pause) {
          try {
            Thread.sleep(Long.MAX_VALUE);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        }
      }
    });
    out.println("ACK 1");
    out.println("DONE");
    out.flush();
    Thread.sleep(Long.MAX_VALUE);
  }
}
