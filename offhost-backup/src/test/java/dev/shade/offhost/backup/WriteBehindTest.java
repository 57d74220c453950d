package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The restored file's background writeback: started by the writes, ended by finish or close, failures told. */
class WriteBehindTest {
  @TempDir Path tmp;

  private static boolean running() {
    return Thread.getAllStackTraces().keySet().stream()
        .anyMatch(t -> t.getName().equals("shade-restore-write-behind") && t.isAlive());
  }

  @Test
  void writesOfMoreThanAStep_startWritebackInTheBackground_andFinishEndsTheThread() throws IOException {
    Path f = tmp.resolve("restored.img");
    try (FileChannel out = FileChannel.open(f, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        WriteBehind behind = new WriteBehind(f)) {
      ByteBuffer mib = ByteBuffer.allocate(1 << 20);
      long steps = 2;
      for (long at = 0; at < steps * WriteBehind.STEP_BYTES + 1; at += mib.capacity()) {
        out.write(mib.clear(), at);
        behind.written(mib.capacity());
      }
      assertTrue(running(), "a writeback thread once a step was written");
      behind.finish();
      assertFalse(running());
      out.force(true);
      assertEquals(steps * WriteBehind.STEP_BYTES + (1 << 20), Files.size(f));
    }
  }

  @Test
  void fewWrites_startNoThread_andClose_afterAFailedRestore_isQuiet() throws IOException {
    Path f = tmp.resolve("restored.img");
    try (FileChannel out = FileChannel.open(f, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        WriteBehind behind = new WriteBehind(f)) {
      behind.written(WriteBehind.STEP_BYTES - 1);
      assertFalse(running());
    }
    assertFalse(running());
  }

  @Test
  void aWritebackThatFails_isThrownByFinish_namingTheFile() throws Exception {
    Path fifo = tmp.resolve("restored.fifo"); // sync_file_range refuses a pipe (ESPIPE), as a failing file would fail
    Process p = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
    assertTrue(p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0, "mkfifo");
    try (WriteBehind behind = new WriteBehind(fifo)) {
      behind.written(WriteBehind.STEP_BYTES);
      for (long end = System.nanoTime() + 10_000_000_000L; running() && System.nanoTime() < end; ) {
        Thread.sleep(5); // the thread ends by itself once its writeback start failed
      }
      assertFalse(running());
      IOException e = assertThrows(IOException.class, behind::finish);
      assertTrue(e.getMessage().startsWith("starting the writeback of " + fifo + " failed: sync_file_range"),
          e.getMessage());
    }
  }
}
