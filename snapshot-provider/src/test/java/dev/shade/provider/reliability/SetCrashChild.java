package dev.shade.provider.reliability;

import dev.shade.provider.SnapshotSet;
import dev.shade.provider.Volume;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Child JVM of the snapshot set crash tests: opens several volumes together, runs a script of
 * writes and set commits on them and reports each operation on stdout once it has returned,
 * then waits to be killed without ever closing the volumes.
 *
 * <p>Arguments: the comma-separated volume directories, then the script file. Script lines:
 * {@code W volumeIndex offset length dataSeed} (data as {@link Op#data}), {@code S name} (a
 * snapshot set of all the volumes, through {@link SnapshotSet#prepare} and commit), {@code F}
 * (flush every volume).
 *
 * <p>Output lines: {@code READY} once the volumes are open; {@code ACK <i>} after operation i
 * returned; {@code DONE}; {@code ERROR <i> <exception>} before exiting with status 3. Run it
 * with {@code -Dshade.test.setMemberPauseMs=N} to widen the gaps between the members' records.
 */
public final class SetCrashChild {
  private SetCrashChild() {}

  public static void main(String[] args) throws Exception {
    PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.US_ASCII);
    int index = -1;
    try {
      List<Path> dirs = new ArrayList<>();
      for (String d : args[0].split(",")) {
        dirs.add(Path.of(d));
      }
      List<String> ops = Files.readAllLines(Path.of(args[1]), StandardCharsets.US_ASCII);
      List<Volume> volumes = Volume.openAll(dirs);
      out.println("READY");
      out.flush();
      for (index = 0; index < ops.size(); index++) {
        String[] f = ops.get(index).split(" ");
        switch (f[0]) {
          case "W": {
            int len = Integer.parseInt(f[3]);
            volumes.get(Integer.parseInt(f[1])).write(Long.parseLong(f[2]),
                ByteBuffer.wrap(Op.data(Long.parseLong(f[4]), len)));
            break;
          }
          case "S":
            SnapshotSet.prepare(volumes).commit(f[1], Duration.ofSeconds(30));
            break;
          case "F":
            for (Volume v : volumes) {
              v.flush();
            }
            break;
          default:
            throw new IllegalArgumentException("not a script line: " + ops.get(index));
        }
        out.println("ACK " + index);
        out.flush();
      }
      out.println("DONE");
      out.flush();
      Thread.sleep(Long.MAX_VALUE); // never close: the parent kills this JVM
    } catch (Throwable t) {
      out.println("ERROR " + index + " " + String.valueOf(t).replace('\n', ' '));
      out.flush();
      t.printStackTrace();
      System.err.flush();
      Runtime.getRuntime().halt(3);
    }
  }
}
