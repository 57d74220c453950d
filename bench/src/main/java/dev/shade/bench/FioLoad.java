package dev.shade.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One fio random-write job over NBD running in the background, and what it measured once it has
 * finished: write IOPS and completion latency.
 *
 * <p>Not thread-safe: the thread that starts it awaits it.
 */
final class FioLoad {
  /*
   * fio --ioengine=nbd (libnbd, one connection) --rw=randwrite --bs=4k --iodepth=16, time-based:
   * a ramp of RAMP_SECONDS that fio leaves out of its figures, then the runtime, then a flush
   * (--end_fsync=1) that counts in the runtime, as in the write jobs of shade bench nbd. Its
   * JSON report goes to a file (Programs' rule: no pipes), read when fio exits.
   */

  /** Seconds fio runs before it starts counting (connection set up, queue filled). */
  static final int RAMP_SECONDS = 1;
  /** Requests in flight. */
  static final int IODEPTH = 16;
  private static final ObjectMapper JSON = new ObjectMapper();

  /** What the job measured: write IOPS and completion latency percentiles in milliseconds. */
  record Result(double iops, double p50Ms, double p99Ms, double maxMs) {}

  /** The job's command line. */
  final List<String> command;
  /** The running fio. */
  private final Process process;
  /** fio's JSON report. */
  private final Path report;
  /** fio's other output. */
  private final Path log;
  /** Seconds fio should take, ramp included. */
  private final int seconds;

  private FioLoad(List<String> command, Process process, Path report, Path log, int seconds) {
    this.command = command;
    this.process = process;
    this.report = report;
    this.log = log;
    this.seconds = seconds;
  }

  /** The fio options of the load, without the URI and the output, for the results. */
  static String describe(int seconds, int fsyncEvery) {
    return "fio --ioengine=nbd --rw=randwrite --bs=4k --iodepth=" + IODEPTH + " --numjobs=1 --time_based --ramp_time="
        + RAMP_SECONDS + "s --runtime=" + seconds + "s --end_fsync=1" + (fsyncEvery > 0 ? " --fsync=" + fsyncEvery : "");
  }

  /**
   * Starts the job on {@code uri} over {@code bytes} for {@code seconds} after the ramp, with a
   * flush every {@code fsyncEvery} writes (0: only at the end); files go in {@code work}.
   */
  static FioLoad start(Path fio, Path work, String uri, long bytes, int seconds, int fsyncEvery, String label)
      throws IOException {
    Path report = work.resolve("fio-" + label + ".json");
    Path log = work.resolve("fio-" + label + ".log");
    List<String> cmd = new ArrayList<>(List.of(fio.toString(), "--name=" + label, "--ioengine=nbd", "--uri=" + uri,
        "--rw=randwrite", "--bs=4k", "--iodepth=" + IODEPTH, "--numjobs=1", "--size=" + bytes, "--time_based",
        "--ramp_time=" + RAMP_SECONDS + "s", "--runtime=" + seconds + "s", "--end_fsync=1",
        "--output-format=json", "--output=" + report));
    if (fsyncEvery > 0) {
      cmd.add("--fsync=" + fsyncEvery);
    }
    return new FioLoad(cmd, Programs.start(work, log, cmd), report, log, RAMP_SECONDS + seconds);
  }

  boolean running() {
    return process.isAlive();
  }

  /** Waits for fio to finish and returns its figures; fails naming the command and what it printed. */
  Result await() throws IOException, InterruptedException {
    try {
      if (!process.waitFor(seconds + 120L, TimeUnit.SECONDS)) {
        Programs.kill(process);
        throw new IOException("fio did not finish within " + (seconds + 120) + " s: `" + String.join(" ", command) + "`");
      }
      if (process.exitValue() != 0) {
        throw new IOException("`" + String.join(" ", command) + "` exited " + process.exitValue() + ": "
            + Programs.tail(log, 3));
      }
      JsonNode job;
      try {
        job = JSON.readTree(report.toFile()).path("jobs").path(0);
      } catch (IOException e) {
        throw new IOException("unreadable fio report " + report + ": " + e.getMessage() + "; " + Programs.tail(log, 3), e);
      }
      if (job.path("error").asInt(0) != 0) {
        throw new IOException("fio reported error " + job.path("error").asInt() + ": " + Programs.tail(log, 3));
      }
      JsonNode write = job.path("write");
      double iops = write.path("iops").asDouble(0);
      if (iops <= 0) {
        throw new IOException("fio wrote nothing: `" + String.join(" ", command) + "`: " + Programs.tail(log, 3));
      }
      JsonNode clat = write.path("clat_ns");
      JsonNode pct = clat.path("percentile");
      return new Result(iops, pct.path("50.000000").asDouble(0) / 1e6, pct.path("99.000000").asDouble(0) / 1e6,
          clat.path("max").asDouble(0) / 1e6);
    } finally {
      Files.deleteIfExists(report);
      Files.deleteIfExists(log);
    }
  }

  /** Kills fio if it still runs (a failed benchmark leaves no load behind). */
  void kill() throws InterruptedException {
    if (process.isAlive()) {
      Programs.kill(process);
    }
  }
}
