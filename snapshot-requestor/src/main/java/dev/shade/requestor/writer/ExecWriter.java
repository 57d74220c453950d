package dev.shade.requestor.writer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code exec:DIR}: a directory of executables, each called with the phase as its one argument
 * ({@code freeze}, {@code thaw}, {@code abort}, {@code backup-complete}, {@code stop},
 * {@code start}), like qemu-guest-agent's {@code fsfreeze-hook.d}.
 *
 * <p>Hooks run one at a time in the order of their file names (freeze, backup-complete and stop
 * in that order, thaw, abort and start in reverse), with {@code SHADE_PHASE} and
 * {@code SHADE_HOOK_DIR} in their environment. A freeze hook that exits non-zero or outlives
 * the freeze's limit vetoes the snapshot; every other phase runs each hook even when one before
 * it failed, and reports the failures together. Each hook has a time limit (the freeze's limit
 * for freeze, {@link #DEFAULT_LIMIT} otherwise); a hook past it is killed with its descendants.
 * Files whose names start with a dot or end in {@code ~}, {@code .dpkg-old}, {@code .dpkg-new},
 * {@code .dpkg-dist} or {@code .rpmnew}/{@code .rpmsave}, and files that are not executable,
 * are skipped, as run-parts does.
 *
 * <p>Hooks run as the writers' other programs do ({@link ExternalCommand}): output to a
 * temporary file rather than a pipe, so a hook that leaves a background child holding its output
 * cannot hang the requestor; its last lines name a failure in the error.
 *
 * <p>{@link #abort} may be called from another thread while a freeze hook runs: it kills that
 * hook first, then runs every hook with {@code abort}.
 */
public final class ExecWriter implements Writer {
  /** Time limit of a hook outside freeze. */
  public static final Duration DEFAULT_LIMIT = Duration.ofSeconds(60);

  private static final Logger log = LoggerFactory.getLogger(ExecWriter.class);
  private static final int TAIL_LINES = 5;

  private final Path dir;
  private final Duration limit;
  /** The hook running now, killed by abort. */
  private volatile Process running;
  private volatile boolean aborted;

  private ExecWriter(Path dir, Duration limit) {
    this.dir = dir;
    this.limit = limit;
  }

  /** The hooks in {@code dir}; the directory is checked when the writer identifies. */
  public static ExecWriter of(Path dir) {
    return new ExecWriter(dir, DEFAULT_LIMIT);
  }

  /** As {@link #of(Path)} with another limit for the phases other than freeze. */
  public static ExecWriter of(Path dir, Duration limit) {
    if (limit.isNegative() || limit.isZero()) {
      throw new IllegalArgumentException("hook time limit must be positive: " + limit);
    }
    return new ExecWriter(dir, limit);
  }

  @Override
  public String spec() {
    return "exec:" + dir;
  }

  /** The executables this writer runs, in file name order. */
  public List<Path> hooks() throws IOException {
    List<Path> out = new ArrayList<>();
    try (Stream<Path> s = Files.list(dir)) {
      s.filter(ExecWriter::runnable).sorted().forEach(out::add);
    } catch (NoSuchFileException e) {
      throw new NoSuchFileException(dir.toString(), null, "hook directory does not exist");
    } catch (NotDirectoryException e) {
      throw new NotDirectoryException(dir + ": hook directory is not a directory");
    }
    return out;
  }

  private static boolean runnable(Path p) {
    String n = p.getFileName().toString();
    if (n.startsWith(".") || n.endsWith("~") || n.endsWith(".dpkg-old") || n.endsWith(".dpkg-new")
        || n.endsWith(".dpkg-dist") || n.endsWith(".rpmnew") || n.endsWith(".rpmsave")) {
      return false;
    }
    return Files.isRegularFile(p) && Files.isExecutable(p);
  }

  @Override
  public Map<String, Object> identify() throws IOException {
    List<String> names = new ArrayList<>();
    for (Path h : hooks()) {
      names.add(h.getFileName().toString());
    }
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("directory", dir.toAbsolutePath().toString());
    m.put("hooks", names);
    return m;
  }

  @Override
  public void prepare() {}

  @Override
  public void freeze(Duration limit) throws IOException {
    long deadline = System.nanoTime() + limit.toNanos();
    for (Path h : hooks()) {
      if (aborted) {
        throw new IOException("freeze of " + spec() + " was aborted before " + h.getFileName());
      }
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new IOException("freeze hooks of " + dir + " took longer than " + limit.toMillis()
            + " ms; " + h.getFileName() + " was not run");
      }
      run(h, "freeze", Duration.ofNanos(left));
    }
  }

  @Override
  public void thaw() throws IOException {
    runAll("thaw", true);
  }

  @Override
  public WriterMetadata postSnapshot() {
    return WriterMetadata.none(spec());
  }

  @Override
  public void abort() {
    aborted = true;
    Process p = running;
    if (p != null) {
      ExternalCommand.kill(p);
    }
    try {
      runAll("abort", true);
    } catch (IOException e) {
      log.warn("{}", e.getMessage());
    }
  }

  @Override
  public void backupComplete(WriterMetadata metadata) throws IOException {
    runAll("backup-complete", false);
  }

  @Override
  public void stop() throws IOException {
    runAll("stop", false);
  }

  @Override
  public void start() throws IOException {
    runAll("start", true);
  }

  @Override
  public void close() {
    Process p = running;
    if (p != null) {
      ExternalCommand.kill(p);
    }
  }

  /** Runs every hook with {@code phase}, each even when one before failed; then reports all failures. */
  private void runAll(String phase, boolean reverse) throws IOException {
    List<Path> hooks = new ArrayList<>(hooks());
    if (reverse) {
      java.util.Collections.reverse(hooks);
    }
    IOException first = null;
    for (Path h : hooks) {
      try {
        run(h, phase, limit);
      } catch (IOException e) {
        if (first == null) {
          first = e;
        } else {
          first.addSuppressed(e);
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }

  private void run(Path hook, String phase, Duration timeLimit) throws IOException {
    long start = System.nanoTime();
    ExternalCommand.Result r;
    try {
      r = ExternalCommand.run(List.of(hook.toAbsolutePath().toString(), phase),
          Map.of("SHADE_PHASE", phase, "SHADE_HOOK_DIR", dir.toAbsolutePath().toString()), dir, timeLimit,
          phase + " hook " + hook, p -> running = p);
    } finally {
      running = null;
    }
    if (r.timedOut()) {
      throw new IOException(phase + " hook " + hook + " did not finish within " + timeLimit.toMillis()
          + " ms and was killed" + tail(r.output()));
    }
    if (r.exitCode() != 0) {
      String why = r.exitCode() > 128 && aborted ? " (killed by abort)" : "";
      throw new IOException(phase + " hook " + hook + " exited with status " + r.exitCode() + why + tail(r.output()));
    }
    log.debug("{} hook {} finished in {} ms", phase, hook, (System.nanoTime() - start) / 1_000_000);
  }

  /** The last lines of a hook's output, for an error; empty when it printed nothing. */
  private static String tail(String output) {
    List<String> lines = output.lines().toList();
    if (lines.isEmpty()) {
      return "";
    }
    return ": " + String.join(" | ", lines.subList(Math.max(0, lines.size() - TAIL_LINES), lines.size()));
  }
}
