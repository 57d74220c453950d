package dev.shade.requestor.export;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.provider.BlockSource;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.testing.nbd.Exec;
import dev.shade.testing.nbd.Json;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * fio's nbd engine against the origin export with crc32c verification, while a snapshot taken
 * before must keep its contents through the copy-on-write traffic.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class FioInteropTest {
  private static final Duration FIO_TIMEOUT = Duration.ofSeconds(60);
  private static final long MIB = 1 << 20;
  private static final long SIZE = 64 * MIB;
  private static final int STAMP = 4096;

  @TempDir Path dir;
  private Volume volume;
  private Served served;

  /** A 64 MiB volume whose every 4 KiB block carries its number, then a snapshot s1 of it. */
  @BeforeEach
  void serve() throws Exception {
    Exec.assumeTools("fio");
    volume = Volume.create(dir.resolve("vol"), VolumeConfig.of(SIZE).withDiffMax(SIZE));
    ByteBuffer chunk = ByteBuffer.allocate((int) MIB);
    for (long off = 0; off < SIZE; off += MIB) {
      stamp(chunk, off);
      volume.write(off, chunk.flip());
    }
    volume.createSnapshot("s1");
    served = Served.start(volume);
  }

  @AfterEach
  void close() throws Exception {
    if (served != null) {
      served.close();
    }
  }

  @Test
  void fio_randomReadWriteWithVerify_passes() throws Exception {
    Map<String, Object> job = fio("randrw",
        "--rw=randrw", "--rwmixread=50", "--bs=4k", "--iodepth=16", "--size=64m", "--verify=crc32c");
    assertTrue(io(job, "write") > 0 && io(job, "read") > 0, "fio both read and wrote: " + job);
    assertSnapshotIntact();
  }

  @Test
  void fio_sequentialWriteWithVerify_passes() throws Exception {
    Map<String, Object> job = fio("seqwrite",
        "--rw=write", "--bs=256k", "--iodepth=8", "--size=64m", "--verify=crc32c", "--end_fsync=1");
    assertEquals(SIZE, io(job, "write"), "bytes fio wrote: " + job);
    assertEquals(SIZE, io(job, "read"), "bytes fio read back to verify: " + job);
    assertSnapshotIntact();
  }

  /** Runs one fio job against the origin export; it must exit 0 and report no error. */
  private Map<String, Object> fio(String name, String... options) throws Exception {
    Path out = dir.resolve(name + ".json");
    List<String> cmd = new ArrayList<>(List.of("fio", "--name=" + name, "--ioengine=nbd", "--uri=" + served.uri("vol"),
        "--output-format=json", "--output=" + out,
        "--verify_state_save=0")); // else fio leaves *-verify.state files in the working directory
    cmd.addAll(List.of(options));
    Exec.Result r = Exec.run(FIO_TIMEOUT, cmd);
    String json = Files.exists(out) ? Files.readString(out) : "";
    assertEquals(0, r.exitCode(), "fio exit code: " + r + "\n--- report:\n" + json);
    Map<String, Object> job = Json.object(Json.array(Json.object(Json.parseFromFirstBracket(json)).get("jobs")).get(0));
    assertEquals(0L, job.get("error"), "fio job error: " + r + "\n--- report:\n" + json);
    String printed = r.stdout() + r.stderr();
    assertTrue(!printed.contains("verify failed") && !printed.contains("bad magic"), "fio reported a verify failure: " + r);
    return job;
  }

  private static long io(Map<String, Object> job, String direction) {
    return Json.integer(Json.object(job.get(direction)), "io_bytes");
  }

  /** s1 still reads back the numbered blocks written before it. */
  private void assertSnapshotIntact() throws Exception {
    ByteBuffer expected = ByteBuffer.allocate((int) MIB);
    ByteBuffer actual = ByteBuffer.allocate((int) MIB);
    try (BlockSource s1 = volume.openSnapshot("s1")) {
      for (long off = 0; off < SIZE; off += MIB) {
        stamp(expected, off);
        actual.clear();
        s1.read(off, actual);
        int m = expected.flip().mismatch(actual.flip());
        assertEquals(-1, m, "first offset where s1 differs from what it held, in the MiB at " + off);
      }
    }
  }

  /** Fills {@code b} with the stamps of the 4 KiB blocks starting at byte {@code off}. */
  private static void stamp(ByteBuffer b, long off) {
    b.clear();
    while (b.hasRemaining()) {
      long block = (off + b.position()) / STAMP;
      for (int i = 0; i < STAMP; i += 8) {
        b.putLong(block * 1_000_003L + i);
      }
    }
  }
}
