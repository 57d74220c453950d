package dev.shade.offhost.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The archive's data path: adjacent chunks read in runs, a read-ahead window larger than the
 * buffers it reuses, reads completing out of order on other threads, checksums on their own
 * thread, and the reader's checksum thread; errors still name the chunk.
 */
class ImageArchivePipelineTest {
  private static final int K64 = 64 * 1024;

  @Test
  void runsOf_groupsAdjacentChunksUpToTheReadSize_andEndsAtTheSize() {
    List<Long> offsets = new ArrayList<>(List.of(0L, 65536L, 131072L, 524288L, 589824L));
    List<String> runs = ImageArchiveWriter.runsOf(offsets, K64, 600_000).stream()
        .map(r -> r.offset() + "+" + r.count() + "=" + r.length()).toList();
    assertEquals(List.of("0+3=196608", "524288+2=75712"), runs, "the last chunk ends at the size");

    List<Long> many = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      many.add((long) i * K64);
    }
    List<Integer> counts = ImageArchiveWriter.runsOf(many, K64, 100L * K64).stream().map(r -> r.count()).toList();
    int perRun = ImageArchiveWriter.READ_BYTES / K64;
    assertEquals(List.of(perRun, 100 - perRun), counts);
    assertEquals(List.of(1, 1), ImageArchiveWriter.runsOf(List.of(0L, 8L << 20), 8 << 20, 16L << 20).stream()
        .map(r -> r.count()).toList(), "a chunk larger than the read size is a run of its own");
  }

  @Test
  void write_moreThanTheReadAheadWindow_readsCompletingOutOfOrder_readsBackByteForByte() throws Exception {
    long size = ImageArchiveWriter.READ_AHEAD_BYTES + (12L << 20) + 12345; // more runs than buffers, a short last chunk
    ExecutorService pool = Executors.newFixedThreadPool(3);
    try {
      GeneratedSource src = new GeneratedSource(size, pool);
      ImageManifest header = new ImageManifest(src.identity(), ImageManifest.FULL, -1, null, K64, 256 * 1024,
          Instant.parse("2026-12-01T10:00:00Z"), null, null, List.of());
      List<Long> offsets = ImageArchiveWriter.chunksOf(src.allocated(), K64, size);
      ByteArrayOutputStream tar = new ByteArrayOutputStream();
      ImageArchiveWriter.Result r = ImageArchiveWriter.write(tar, 10240, header, offsets, src, (done, total) -> {});
      // every 7th chunk is zeros and left out
      long zeros = offsets.stream().filter(o -> (o / K64) % 7 == 3).count();
      assertEquals(offsets.size() - zeros, r.manifest().chunks().size());
      // one 512-byte ustar header per chunk (no PAX header of its own), the header and manifest members
      long overhead = r.archiveBytes() - r.dataBytes() - r.manifest().bytes().length;
      assertTrue(overhead <= r.manifest().chunks().size() * 512L + 64 * 1024, "overhead " + overhead + " bytes");

      List<Long> seen = new ArrayList<>();
      ImageArchiveReader.Contents c = ImageArchiveReader.read(new ByteArrayInputStream(tar.toByteArray()), K64,
          new ImageArchiveReader.Handler() {
            @Override
            public boolean wants(long offset) {
              return true;
            }

            @Override
            public void chunk(long offset, byte[] data, int length, String sha256) {
              byte[] want = src.chunk(offset, length);
              assertTrue(java.util.Arrays.equals(want, 0, length, data, 0, length), "chunk at " + offset);
              assertEquals(ChunkChecksum.DEFAULT.of(want, 0, length), sha256);
              seen.add(offset);
            }
          });
      assertEquals(r.manifestSha256(), c.manifestSha256());
      assertEquals(r.manifest().chunks().stream().map(ChunkEntry::offset).toList(), seen, "in archive order, each once");
    } finally {
      pool.shutdownNow();
      pool.awaitTermination(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void write_aReadFails_theErrorNamesTheChunkAndTheSnapshot() throws Exception {
    long size = 16L << 20;
    long bad = 9L << 20;
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      GeneratedSource src = new GeneratedSource(size, pool) {
        @Override
        public CompletableFuture<Void> readAsync(long offset, ByteBuffer dst) {
          if (offset <= bad && bad < offset + dst.remaining()) {
            return CompletableFuture.failedFuture(new IOException("NBD_EIO from the server"));
          }
          return super.readAsync(offset, dst);
        }
      };
      ImageManifest header = new ImageManifest(src.identity(), ImageManifest.FULL, -1, null, K64, 256 * 1024,
          Instant.parse("2026-12-01T10:00:00Z"), null, null, List.of());
      IOException e = assertThrows(IOException.class, () -> ImageArchiveWriter.write(new ByteArrayOutputStream(),
          10240, header, ImageArchiveWriter.chunksOf(src.allocated(), K64, size), src, (d, t) -> {}));
      assertTrue(e.getMessage().startsWith("cannot read chunk data/0000000000800000 or the 63 after it (offset 8388608, "
          + "4194304 bytes) of "), e.getMessage());
      assertTrue(e.getMessage().endsWith(": NBD_EIO from the server"), e.getMessage());
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void read_theHandlerFails_theErrorNamesThatChunk() throws Exception {
    long size = 8L << 20;
    GeneratedSource src = new GeneratedSource(size, null);
    ImageManifest header = new ImageManifest(src.identity(), ImageManifest.FULL, -1, null, K64, 256 * 1024,
        Instant.parse("2026-12-01T10:00:00Z"), null, null, List.of());
    ByteArrayOutputStream tar = new ByteArrayOutputStream();
    ImageArchiveWriter.write(tar, 10240, header, ImageArchiveWriter.chunksOf(src.allocated(), K64, size), src,
        (d, t) -> {});
    ImageArchiveReader.ArchiveException e = assertThrows(ImageArchiveReader.ArchiveException.class,
        () -> ImageArchiveReader.read(new ByteArrayInputStream(tar.toByteArray()), K64,
            new ImageArchiveReader.Handler() {
              @Override
              public boolean wants(long offset) {
                return true;
              }

              @Override
              public void chunk(long offset, byte[] data, int length, String sha256) throws IOException {
                if (offset == 20L * K64) {
                  throw new IOException("No space left on device");
                }
              }
            }));
    assertEquals("data/0000000000140000", e.member());
    assertEquals("member data/0000000000140000: No space left on device", e.getMessage());
  }

  @Test
  void read_aHandlerOfSeveralThreads_getsEveryChunkOnce_onMoreThanOneThreadAtATime() throws Exception {
    long size = (ImageArchiveReader.BUFFER_BYTES * 2) + 12345; // the buffer ring goes round several times
    GeneratedSource src = new GeneratedSource(size, null);
    ImageManifest header = new ImageManifest(src.identity(), ImageManifest.FULL, -1, null, K64, 256 * 1024,
        Instant.parse("2026-12-01T10:00:00Z"), null, null, List.of());
    ByteArrayOutputStream tar = new ByteArrayOutputStream();
    ImageArchiveWriter.Result r = ImageArchiveWriter.write(tar, 10240, header,
        ImageArchiveWriter.chunksOf(src.allocated(), K64, size), src, (d, t) -> {});
    java.util.Set<Long> seen = java.util.concurrent.ConcurrentHashMap.newKeySet();
    java.util.Set<String> threads = java.util.concurrent.ConcurrentHashMap.newKeySet();
    java.util.concurrent.atomic.AtomicInteger inside = new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.atomic.AtomicInteger mostInside = new java.util.concurrent.atomic.AtomicInteger();
    ImageArchiveReader.Contents c = ImageArchiveReader.read(new ByteArrayInputStream(tar.toByteArray()), K64,
        new ImageArchiveReader.Handler() {
          @Override
          public boolean wants(long offset) {
            return (offset / K64) % 5 != 1; // every 5th chunk skipped
          }

          @Override
          public void chunk(long offset, byte[] data, int length, String sha256) {
            mostInside.accumulateAndGet(inside.incrementAndGet(), Math::max);
            try {
              byte[] want = src.chunk(offset, length);
              assertTrue(java.util.Arrays.equals(want, 0, length, data, 0, length), "chunk at " + offset);
              assertEquals(ChunkChecksum.DEFAULT.of(want, 0, length), sha256);
              assertTrue(seen.add(offset), "chunk at " + offset + " handed over twice");
              threads.add(Thread.currentThread().getName());
              Thread.sleep(0, 200_000); // long enough for the other worker to come in
            } catch (InterruptedException e) {
              throw new AssertionError(e);
            } finally {
              inside.decrementAndGet();
            }
          }

          @Override
          public int threads() {
            return 2;
          }
        });
    assertEquals(r.manifestSha256(), c.manifestSha256());
    assertEquals(r.manifest().chunks().stream().map(ChunkEntry::offset).filter(o -> (o / K64) % 5 != 1)
        .collect(java.util.stream.Collectors.toSet()), seen);
    assertEquals(java.util.Set.of("shade-restore-hash-1", "shade-restore-hash-2"), threads);
    assertEquals(2, mostInside.get(), "two chunks handled at once");
  }

  @Test
  void read_aHandlerOfSeveralThreads_failingOnTwoChunks_namesTheFirstInArchiveOrder() throws Exception {
    long size = 8L << 20;
    GeneratedSource src = new GeneratedSource(size, null);
    ImageManifest header = new ImageManifest(src.identity(), ImageManifest.FULL, -1, null, K64, 256 * 1024,
        Instant.parse("2026-12-01T10:00:00Z"), null, null, List.of());
    ByteArrayOutputStream tar = new ByteArrayOutputStream();
    ImageArchiveWriter.write(tar, 10240, header, ImageArchiveWriter.chunksOf(src.allocated(), K64, size), src,
        (d, t) -> {});
    java.util.concurrent.CountDownLatch laterFailed = new java.util.concurrent.CountDownLatch(1);
    ImageArchiveReader.ArchiveException e = assertThrows(ImageArchiveReader.ArchiveException.class,
        () -> ImageArchiveReader.read(new ByteArrayInputStream(tar.toByteArray()), K64,
            new ImageArchiveReader.Handler() {
              @Override
              public boolean wants(long offset) {
                return true;
              }

              @Override
              public void chunk(long offset, byte[] data, int length, String sha256) throws IOException {
                if (offset == 20L * K64) {
                  try {
                    laterFailed.await(10, TimeUnit.SECONDS); // fails after the later chunk did
                  } catch (InterruptedException ex) {
                    Thread.currentThread().interrupt();
                  }
                  throw new IOException("No space left on device");
                }
                if (offset == 21L * K64) {
                  laterFailed.countDown();
                  throw new IOException("Input/output error");
                }
              }

              @Override
              public int threads() {
                return 2;
              }
            }));
    assertEquals("data/0000000000140000", e.member());
    assertEquals("member data/0000000000140000: No space left on device", e.getMessage());
  }

  @Test
  void read_onASharedPool_afterAFailureNoChunkReachesTheHandler_andThePoolReadsTheNextArchive() throws Exception {
    long size = 8L << 20;
    GeneratedSource src = new GeneratedSource(size, null);
    ImageManifest header = new ImageManifest(src.identity(), ImageManifest.FULL, -1, null, K64, 256 * 1024,
        Instant.parse("2026-12-01T10:00:00Z"), null, null, List.of());
    ByteArrayOutputStream tar = new ByteArrayOutputStream();
    ImageArchiveWriter.Result r = ImageArchiveWriter.write(tar, 10240, header,
        ImageArchiveWriter.chunksOf(src.allocated(), K64, size), src, (d, t) -> {});
    ExecutorService pool = ImageArchiveReader.workers(2);
    try {
      java.util.concurrent.atomic.AtomicInteger handled = new java.util.concurrent.atomic.AtomicInteger();
      boolean[] failing = {true};
      ImageArchiveReader.Handler handler = new ImageArchiveReader.Handler() {
        @Override
        public boolean wants(long offset) {
          return true;
        }

        @Override
        public void chunk(long offset, byte[] data, int length, String sha256) throws IOException {
          if (failing[0] && offset == 4L * K64) {
            throw new IOException("No space left on device");
          }
          handled.incrementAndGet();
        }

        @Override
        public int threads() {
          return 2;
        }
      };
      ImageArchiveReader.ArchiveException e = assertThrows(ImageArchiveReader.ArchiveException.class,
          () -> ImageArchiveReader.read(1, p -> new ByteArrayInputStream(tar.toByteArray()), K64, handler, pool));
      assertEquals("data/0000000000040000", e.member());
      int atFailure = handled.get();
      Thread.sleep(50);
      assertEquals(atFailure, handled.get(), "no chunk handled after the read failed");

      failing[0] = false;
      handled.set(0);
      ImageArchiveReader.Contents c = ImageArchiveReader.read(1, p -> new ByteArrayInputStream(tar.toByteArray()), K64,
          handler, pool);
      assertEquals(r.manifestSha256(), c.manifestSha256());
      assertEquals(r.manifest().chunks().size(), handled.get());
    } finally {
      pool.shutdownNow();
    }
  }

  /** A snapshot whose bytes are computed from their offset; reads complete on {@code pool} (null: at once). */
  private static class GeneratedSource implements SnapshotSource {
    private final SnapshotIdentity identity;
    private final ExecutorService pool;
    private final SplittableRandom delays = new SplittableRandom(5);

    GeneratedSource(long size, ExecutorService pool) {
      // a creation time with milliseconds, as the agent's snapshots have
      this.identity = new SnapshotIdentity("db", "uuid-1", "s1", 1, Instant.parse("2026-12-01T10:00:00.123Z"), size);
      this.pool = pool;
    }

    byte[] chunk(long offset, int length) {
      byte[] b = new byte[length];
      fill(offset, ByteBuffer.wrap(b));
      return b;
    }

    private static void fill(long offset, ByteBuffer dst) {
      while (dst.hasRemaining()) {
        long chunk = offset / K64;
        int n = (int) Math.min(dst.remaining(), (chunk + 1) * K64 - offset);
        if (chunk % 7 == 3) {
          dst.put(new byte[n]); // the buffer may hold an earlier run's bytes: zeros are written too
        } else {
          SplittableRandom r = new SplittableRandom(chunk);
          byte[] whole = new byte[K64];
          r.nextBytes(whole);
          dst.put(whole, (int) (offset - chunk * K64), n);
        }
        offset += n;
      }
    }

    @Override
    public SnapshotIdentity identity() {
      return identity;
    }

    @Override
    public List<Range> allocated() {
      return List.of(new Range(0, identity.size()));
    }

    @Override
    public Optional<List<Range>> changedSince(long baseSnapshotId) {
      return Optional.empty();
    }

    @Override
    public void read(long offset, ByteBuffer dst) {
      fill(offset, dst);
    }

    @Override
    public CompletableFuture<Void> readAsync(long offset, ByteBuffer dst) {
      if (pool == null) {
        read(offset, dst);
        return CompletableFuture.completedFuture(null);
      }
      int delay = delays.nextInt(3);
      return CompletableFuture.runAsync(() -> {
        try {
          Thread.sleep(delay);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        fill(offset, dst);
      }, pool);
    }

    @Override
    public void close() {}
  }
}
