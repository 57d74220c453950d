package dev.shade.requestor.ops;

import dev.shade.requestor.writer.Writer;
import dev.shade.requestor.writer.WriterMetadata;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/** A writer that records its stop and start steps in a shared log, and fails where told. */
final class FakeWriter implements Writer {
  private final String spec;
  /** Where every step is recorded as "stop SPEC" or "start SPEC". */
  private final List<String> log;
  private final boolean failStop;
  private final boolean failStart;
  /** Runs inside stop (e.g. to check what the volume looks like then). */
  private final Runnable onStop;

  FakeWriter(String spec, List<String> log, boolean failStop, boolean failStart, Runnable onStop) {
    this.spec = spec;
    this.log = log;
    this.failStop = failStop;
    this.failStart = failStart;
    this.onStop = onStop;
  }

  /** Makes writers from specs "NAME", "NAME!stop" (stop fails) and "NAME!start" (start fails). */
  static Rollback.WriterFactory factory(List<String> log) {
    return spec -> new FakeWriter(spec, log, spec.endsWith("!stop"), spec.endsWith("!start"), () -> {});
  }

  @Override
  public String spec() {
    return spec;
  }

  @Override
  public Map<String, Object> identify() {
    return Map.of();
  }

  @Override
  public void prepare() {}

  @Override
  public void freeze(Duration limit) {}

  @Override
  public void thaw() {}

  @Override
  public WriterMetadata postSnapshot() {
    throw new UnsupportedOperationException();
  }

  @Override
  public void abort() {}

  @Override
  public void stop() throws IOException {
    log.add("stop " + spec);
    if (failStop) {
      throw new IOException("cannot stop " + spec);
    }
    onStop.run();
  }

  @Override
  public void start() throws IOException {
    log.add("start " + spec);
    if (failStart) {
      throw new IOException("cannot start " + spec);
    }
  }

  @Override
  public void close() {
    log.add("close " + spec);
  }
}
