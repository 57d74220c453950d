package dev.shade.provider.reliability;

import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeListener;
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Child JVM of the crash tests: opens a volume, runs a script on it and reports each operation
 * on stdout once it has returned, then waits to be killed without ever closing the volume.
 *
 * <p>Arguments: volume directory, script file ({@link Op} lines), comma-separated op indexes
 * after which to wait for a line on stdin (or {@code -}), and the comma-separated snapshot
 * names the volume must have when opened (or {@code -} for none).
 *
 * <p>Output lines: {@code READY <digest>} once the volume is open (digest of what it holds, see
 * {@link VolumeImages#digest}); {@code ACK <i>} after operation i returned; {@code PAUSE <i>}
 * when waiting on stdin; {@code DONE} after the last operation; {@code OVERFLOW <name>} if the
 * volume deleted a snapshot for space; {@code ERROR <i> <exception>} before exiting with
 * status 3. Every line is flushed at once so that the parent sees exactly what has returned.
 */
public final class CrashChild {
  private CrashChild() {}

  public static void main(String[] args) throws Exception {
    // straight to file descriptor 1: a flushed line is in the pipe before the next op starts
    PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.US_ASCII);
    int index = -1;
    try {
      Path dir = Path.of(args[0]);
      List<Op> ops = Op.readAll(Path.of(args[1]));
      Set<Integer> pauses = new HashSet<>();
      if (!args[2].equals("-")) {
        for (String s : args[2].split(",")) {
          pauses.add(Integer.parseInt(s));
        }
      }
      List<String> expected = args[3].equals("-") ? List.of() : Arrays.asList(args[3].split(","));
      BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));

      Volume volume = Volume.open(dir);
      volume.addListener(new VolumeListener() {
        @Override
        public void snapshotDeletedForSpace(SnapshotInfo deleted, long diffMaxBytes) {
          synchronized (out) {
            out.println("OVERFLOW " + deleted.name());
            out.flush();
          }
        }
      });
      List<String> names = VolumeImages.names(volume.snapshots());
      if (!names.equals(expected)) {
        throw new IllegalStateException("opened volume has snapshots " + names + ", expected " + expected);
      }
      long digest = VolumeImages.digest(volume);
      synchronized (out) {
        out.println("READY " + digest);
        out.flush();
      }
      for (index = 0; index < ops.size(); index++) {
        ops.get(index).applyTo(volume);
        synchronized (out) {
          out.println("ACK " + index);
          out.flush();
        }
        if (pauses.contains(index)) {
          synchronized (out) {
            out.println("PAUSE " + index);
            out.flush();
          }
          if (in.readLine() == null) {
            throw new IllegalStateException("stdin closed while paused after op " + index);
          }
        }
      }
      synchronized (out) {
        out.println("DONE");
        out.flush();
      }
      // never close: the parent kills this JVM, leaving the volume as a crash would
      Thread.sleep(Long.MAX_VALUE);
    } catch (Throwable t) {
      synchronized (out) {
        out.println("ERROR " + index + " " + String.valueOf(t).replace('\n', ' '));
        out.flush();
      }
      t.printStackTrace();
      System.err.flush();
      // halt: no shutdown hook may tidy the volume up
      Runtime.getRuntime().halt(3);
    }
  }
}
