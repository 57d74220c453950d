package dev.shade.provider;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.nativeio.FileHandle;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JournalTest {
  @TempDir Path tmp;

  private Journal journal(Path p, long gen) throws IOException {
    return new Journal(FileHandle.create(p), gen, Files.exists(p) ? Files.size(p) : 0, 0, (lo, hi) -> {});
  }

  @Test
  void concurrentCommits_areAllReplayedInOrderPerThread() throws Exception {
    Path p = tmp.resolve("j");
    Journal j = journal(p, 3);
    ExecutorService pool = Executors.newFixedThreadPool(4);
    List<Future<?>> fs = new ArrayList<>();
    for (int t = 0; t < 4; t++) {
      int thread = t;
      fs.add(pool.submit(() -> {
        for (int i = 0; i < 500; i++) {
          j.commit(new JournalRecord.Cow(thread, i, i, i * 31));
        }
        return null;
      }));
    }
    for (Future<?> f : fs) {
      f.get();
    }
    pool.shutdown();
    j.close();
    try (FileHandle fh = FileHandle.openReadWrite(p)) {
      Journal.Replay r = Journal.read(fh, 3);
      assertEquals(2000, r.records().size());
      assertTrue(r.frames() <= 2000, "group commit never writes more frames than records");
      long[] next = new long[4];
      for (JournalRecord rec : r.records()) {
        JournalRecord.Cow c = (JournalRecord.Cow) rec;
        assertEquals(next[(int) c.snapId()]++, c.block());
      }
    }
  }

  @Test
  void tornTail_isDroppedAndTheRestKept() throws IOException {
    Path p = tmp.resolve("j");
    Journal j = journal(p, 1);
    for (int i = 0; i < 10; i++) {
      j.commit(new JournalRecord.Delete(i));
    }
    long good = j.size();
    j.close();
    assertTrue(Files.size(p) > good, "the file is kept longer than its frames, in zeros");
    try (FileHandle fh = FileHandle.openReadWrite(p)) {
      Journal.Replay r = Journal.read(fh, 1);
      assertEquals(10, r.records().size());
      assertEquals(0, r.droppedBytes(), "zeros after the last frame are not a torn write");
    }
    try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
      f.seek(good);
      java.nio.ByteBuffer frame = Journal.frame(1, 10, new byte[] {2, 0, 0, 0, 0, 0, 0, 0, 42});
      byte[] half = new byte[20];
      frame.get(half);
      f.write(half); // half a frame
    }
    try (FileHandle fh = FileHandle.openReadWrite(p)) {
      Journal.Replay r = Journal.read(fh, 1);
      assertEquals(10, r.records().size());
      assertEquals(good, r.end());
      assertTrue(r.droppedBytes() >= 20, "dropped " + r.droppedBytes());
    }
    assertEquals(good, Files.size(p), "the torn tail is cut off");
  }

  @Test
  void badFrameFollowedByGoodOne_isDamage() throws IOException {
    Path p = tmp.resolve("j");
    Journal j = journal(p, 1);
    for (int i = 0; i < 10; i++) {
      j.commit(new JournalRecord.Delete(i));
    }
    j.close();
    try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
      f.seek(Journal.HEADER + 3); // inside the first frame's payload
      f.write(0x55);
    }
    try (FileHandle fh = FileHandle.openReadWrite(p)) {
      VolumeException e = assertThrows(VolumeException.class, () -> Journal.read(fh, 1));
      assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
      assertTrue(e.getMessage().contains("damaged"), e.getMessage());
    }
  }

  @Test
  void olderGeneration_isStale() throws IOException {
    Path p = tmp.resolve("j");
    Journal j = journal(p, 4);
    j.commit(new JournalRecord.Delete(1));
    j.close();
    try (FileHandle fh = FileHandle.openReadWrite(p)) {
      Journal.Replay r = Journal.read(fh, 5);
      assertTrue(r.stale());
      assertEquals(0, r.records().size());
    }
  }

  @Test
  void forceHook_coversTheBatchRangeAndCompletesBeforeSyncReturns() throws IOException {
    Path p = tmp.resolve("j");
    List<long[]> forced = new ArrayList<>();
    java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
    Journal j = new Journal(FileHandle.create(p), 1, 0, 0, (lo, hi) -> {
      try {
        Thread.sleep(50); // a slow device: sync must still wait for it
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      forced.add(new long[] {lo, hi});
      done.set(true);
    });
    j.append(new JournalRecord.Cow(1, 1, 2, 0), 8192, 12288);
    long seq = j.append(new JournalRecord.Cow(1, 2, 0, 0), 0, 4096);
    j.sync(seq);
    assertTrue(done.get(), "sync returned before the diff area was forced");
    j.close();
    assertEquals(1, forced.size());
    assertEquals(0, forced.get(0)[0]);
    assertEquals(12288, forced.get(0)[1]);
  }

  @Test
  void failedForce_failsTheSyncAndTheJournal() throws IOException {
    Path p = tmp.resolve("j");
    Journal j = new Journal(FileHandle.create(p), 1, 0, 0, (lo, hi) -> {
      throw new IOException("device gone");
    });
    long seq = j.append(new JournalRecord.Cow(1, 1, 2, 0), 0, 4096);
    IOException e = assertThrows(IOException.class, () -> j.sync(seq));
    assertTrue(e.getMessage().contains("device gone"), e.getMessage());
    assertThrows(IOException.class, () -> j.commit(new JournalRecord.Delete(1)));
    j.close();
  }
}
