package dev.shade.requestor.writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.nativeio.FsFreeze;
import dev.shade.testing.Command;
import dev.shade.testing.LoopFilesystem;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The fs writer on a real ext4 in a loop device (root): freeze holds writers, thaw lets them go, stop/start. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class FsWriterTest {
  @TempDir Path dir;
  /** The filesystem under test. */
  private LoopFilesystem fs;
  /** Its writer. */
  private Writer writer;

  @BeforeEach
  void mount() throws Exception {
    fs = LoopFilesystem.create(dir, 48L << 20);
    writer = Writers.parse("fs:" + fs.mountPoint());
  }

  @AfterEach
  void unmount() throws Exception {
    if (writer != null) {
      writer.close();
    }
    if (fs != null) {
      fs.close();
    }
  }

  @Test
  void identify_namesTheLoopDeviceAndType() throws Exception {
    Map<String, Object> facts = writer.identify();
    assertEquals(true, facts.get("mounted"));
    assertEquals("ext4", facts.get("fsType"));
    assertEquals(fs.device(), facts.get("source"));
    assertEquals(fs.mountPoint().toString(), facts.get("mountPoint"));
    assertTrue(writer.isFilesystem());
  }

  @Test
  void freeze_holdsWritesUntilThaw_thawTwiceIsFine() throws Exception {
    ExecutorService pool = Executors.newSingleThreadExecutor();
    try {
      writer.prepare();
      writer.freeze(Duration.ofSeconds(5));
      Future<Void> write = pool.submit(() -> writeAndSync(fs.mountPoint().resolve("during")));
      assertThrows(TimeoutException.class, () -> write.get(700, TimeUnit.MILLISECONDS), "the write waits for the thaw");
      writer.thaw();
      write.get(10, TimeUnit.SECONDS);
      writer.thaw(); // not frozen: fine
      assertEquals(WriterMetadata.none(writer.spec()), writer.postSnapshot());
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void freeze_overSomeoneElsesFreeze_failsAndLeavesItFrozen() throws Exception {
    Command.run("fsfreeze", "--freeze", fs.mountPoint().toString()).requireSuccess();
    try {
      IOException e = assertThrows(IOException.class, () -> writer.freeze(Duration.ofSeconds(5)));
      assertTrue(e.getMessage().contains("frozen already"), e::getMessage);
      writer.thaw();
      writer.abort();
    } finally {
      // still frozen by its owner, so this thaw succeeds (it would be EINVAL had the writer thawed it)
      FsFreeze.thaw(fs.mountPoint());
    }
  }

  @Test
  void abort_afterFreeze_thaws() throws Exception {
    writer.freeze(Duration.ofSeconds(5));
    writer.abort();
    writeAndSync(fs.mountPoint().resolve("after-abort")); // would hang if still frozen
  }

  @Test
  void close_afterFreeze_thaws() throws Exception {
    writer.freeze(Duration.ofSeconds(5));
    writer.close();
    writeAndSync(fs.mountPoint().resolve("after-close"));
  }

  @Test
  void stopStart_unmountsAndMountsTheSameAgain() throws Exception {
    Files.writeString(fs.mountPoint().resolve("kept.txt"), "kept", StandardCharsets.UTF_8);
    Map<String, Object> before = writer.identify();
    writer.stop();
    assertFalse(fs.isMounted());
    assertThrows(IOException.class, writer::identify);
    writer.start();
    assertTrue(fs.isMounted());
    assertEquals(before, writer.identify());
    assertEquals("kept", Files.readString(fs.mountPoint().resolve("kept.txt"), StandardCharsets.UTF_8));
  }

  @Test
  void stop_busy_saysWhoToAsk() throws Exception {
    try (FileChannel open = FileChannel.open(fs.mountPoint().resolve("held"), StandardOpenOption.CREATE,
        StandardOpenOption.WRITE)) {
      IOException e = assertThrows(IOException.class, writer::stop);
      assertTrue(e.getMessage().contains("fuser -vm"), e::getMessage);
    }
  }

  private static Void writeAndSync(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      ch.write(ByteBuffer.allocate(4096));
      ch.force(true);
    }
    return null;
  }
}
