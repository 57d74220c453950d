package dev.shade.nativeio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.testing.LoopFilesystem;
import dev.shade.testing.Tmpfs;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@link FsFreeze} on a real ext4 in a loop device (root), and its errors. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class FsFreezeTest {
  /** How long a write must stay blocked to count as held by the freeze. */
  private static final long HELD_MILLIS = 700;

  @TempDir Path dir;

  @Test
  void freeze_ext4_holdsWritersUntilThaw() throws Exception {
    try (LoopFilesystem fs = LoopFilesystem.create(dir, 64L << 20)) {
      Path file = fs.mountPoint().resolve("written-while-frozen");
      ExecutorService writer = Executors.newSingleThreadExecutor();
      try {
        FsFreeze.freeze(fs.mountPoint());
        Future<Long> write;
        try {
          write = writer.submit(() -> writeAndSync(file));
          assertThrows(TimeoutException.class, () -> write.get(HELD_MILLIS, TimeUnit.MILLISECONDS),
              "a write and fsync on a frozen filesystem waits for the thaw");
          assertFalse(write.isDone());
        } finally {
          FsFreeze.thaw(fs.mountPoint());
        }
        assertEquals(4096L, write.get(10, TimeUnit.SECONDS), "the write finishes after the thaw");
        assertEquals(4096L, Files.size(file));
      } finally {
        writer.shutdownNow();
      }
    }
  }

  @Test
  void freeze_twice_isEbusyNamingThePath() throws Exception {
    try (LoopFilesystem fs = LoopFilesystem.create(dir, 32L << 20)) {
      FsFreeze.freeze(fs.mountPoint());
      try {
        ErrnoException e = assertThrows(ErrnoException.class, () -> FsFreeze.freeze(fs.mountPoint()));
        assertEquals(Errno.EBUSY, e.errno());
        assertTrue(e.getMessage().contains(fs.mountPoint().toString()), e::getMessage);
        assertTrue(e.getMessage().contains("already frozen"), e::getMessage);
      } finally {
        FsFreeze.thaw(fs.mountPoint());
      }
      // and writes go on
      assertEquals(4096L, writeAndSync(fs.mountPoint().resolve("after")));
    }
  }

  @Test
  void thaw_notFrozen_isEinval() throws Exception {
    try (LoopFilesystem fs = LoopFilesystem.create(dir, 32L << 20)) {
      ErrnoException e = assertThrows(ErrnoException.class, () -> FsFreeze.thaw(fs.mountPoint()));
      assertEquals(Errno.EINVAL, e.errno());
      assertTrue(e.getMessage().contains("not frozen"), e::getMessage);
      assertTrue(e.getMessage().contains("ioctl(FITHAW)(" + fs.mountPoint() + ")"), e::getMessage);
    }
  }

  @Test
  void freeze_tmpfs_isEopnotsupp() throws Exception {
    Path mnt = Files.createDirectories(dir.resolve("tmpfs"));
    try (Tmpfs tmpfs = Tmpfs.mount(mnt, "shade-freeze", "1m", "mode=0700")) {
      ErrnoException e = assertThrows(ErrnoException.class, () -> FsFreeze.freeze(mnt));
      assertEquals(Errno.EOPNOTSUPP, e.errno(), e::getMessage);
      assertTrue(e.getMessage().contains("cannot be frozen"), e::getMessage);
    }
  }

  @Test
  void sync_thenFreeze_isShortAndWritesGoOn() throws Exception {
    try (LoopFilesystem fs = LoopFilesystem.create(dir, 64L << 20)) {
      // 16 MiB in the page cache, frozen without a sync first, then again after a syncfs
      Files.write(fs.mountPoint().resolve("dirty-1"), new byte[16 << 20]);
      long t0 = System.nanoTime();
      FsFreeze.freeze(fs.mountPoint());
      long coldMillis = (System.nanoTime() - t0) / 1_000_000;
      FsFreeze.thaw(fs.mountPoint());
      Files.write(fs.mountPoint().resolve("dirty-2"), new byte[16 << 20]);
      long t1 = System.nanoTime();
      FsFreeze.sync(fs.mountPoint());
      long syncMillis = (System.nanoTime() - t1) / 1_000_000;
      long t2 = System.nanoTime();
      FsFreeze.freeze(fs.mountPoint());
      long freezeMillis = (System.nanoTime() - t2) / 1_000_000;
      FsFreeze.thaw(fs.mountPoint());
      System.out.println("freeze with 16 MiB dirty: " + coldMillis + " ms; syncfs " + syncMillis
          + " ms, then freeze " + freezeMillis + " ms");
      assertEquals(4096L, writeAndSync(fs.mountPoint().resolve("after")));
    }
  }

  @Test
  void sync_missingPath_isNotFound() {
    NotFoundException e = assertThrows(NotFoundException.class, () -> FsFreeze.sync(dir.resolve("none")));
    assertTrue(e.getMessage().startsWith("open(" + dir.resolve("none")), e::getMessage);
  }

  @Test
  void freeze_missingPath_isNotFound() {
    Path missing = dir.resolve("no-such-mount");
    NotFoundException e = assertThrows(NotFoundException.class, () -> FsFreeze.freeze(missing));
    assertTrue(e.getMessage().contains(missing.toString()), e::getMessage);
  }

  /** Writes 4 KiB to a new file and fsyncs it; returns its size. */
  private static long writeAndSync(Path file) throws Exception {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      ch.write(ByteBuffer.allocate(4096));
      ch.force(true);
      return ch.size();
    }
  }
}
