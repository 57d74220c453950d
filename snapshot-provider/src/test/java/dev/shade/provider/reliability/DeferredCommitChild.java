package dev.shade.provider.reliability;

import dev.shade.provider.PreparedSnapshotSet;
import dev.shade.provider.SnapshotSet;
import dev.shade.provider.Volume;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Child JVM of {@link DeferredCommitCrashTest}: opens the volumes together, writes 1s to every
 * block and flushes, commits a set {@code s1} deferring its durability (marked
 * {@code shade.requestor=pending}), prints {@code COMMITTED}; with {@code durable} as the second
 * argument then calls makeDurable and prints {@code DURABLE}. Then it overwrites random blocks
 * with 2s until it is killed, printing {@code ACK i} after each.
 *
 * <p>Arguments: the comma-separated volume directories, {@code durable} or {@code deferred}, a seed.
 */
public final class DeferredCommitChild {
  static final int BLOCK = 4096;

  private DeferredCommitChild() {}

  public static void main(String[] args) throws Exception {
    PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.US_ASCII);
    List<Path> dirs = new ArrayList<>();
    for (String d : args[0].split(",")) {
      dirs.add(Path.of(d));
    }
    List<Volume> volumes = Volume.openAll(dirs);
    byte[] ones = new byte[BLOCK];
    Arrays.fill(ones, (byte) 1);
    for (Volume v : volumes) {
      for (long off = 0; off < v.size(); off += BLOCK) {
        v.write(off, ByteBuffer.wrap(ones));
      }
      v.flush();
    }
    PreparedSnapshotSet set = SnapshotSet.prepare(volumes);
    set.commitDeferringDurability("s1", Duration.ofSeconds(30), Map.of("shade.requestor", "pending"));
    out.println("COMMITTED");
    if (args[1].equals("durable")) {
      set.makeDurable();
      out.println("DURABLE");
    }
    byte[] twos = new byte[BLOCK];
    Arrays.fill(twos, (byte) 2);
    Random rnd = new Random(Long.parseLong(args[2]));
    for (int i = 0; ; i++) {
      Volume v = volumes.get(rnd.nextInt(volumes.size()));
      v.write((long) rnd.nextInt((int) (v.size() / BLOCK)) * BLOCK, ByteBuffer.wrap(twos));
      if (i % 8 == 7) {
        v.flush();
      }
      out.println("ACK " + i);
    }
  }
}
