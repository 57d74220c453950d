package dev.shade.provider.reliability;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Child JVM that prints {@code ACK 0 xxx...}, {@code ACK 1 xxx...}, ... as fast as it can until killed, and
 * after each line stores its index in the file named by its argument, so a test can check that
 * no line written before the kill is lost.
 */
public final class FloodChild {
  private FloodChild() {}

  public static void main(String[] args) throws Exception {
    PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.US_ASCII);
    try (FileChannel last = FileChannel.open(Path.of(args[0]),
        StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
      ByteBuffer b = ByteBuffer.allocate(8);
      // long lines fill the pipe, so the parent always has unread lines when the kill comes
      String padding = " " + "x".repeat(4000);
      for (long i = 0; ; i++) {
        out.println("ACK " + i + padding);
        out.flush();
        // recorded only once the line is in the pipe
        last.write(b.clear().putLong(0, i), 0);
      }
    }
  }
}
