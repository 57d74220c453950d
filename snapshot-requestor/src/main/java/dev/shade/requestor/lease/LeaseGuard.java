package dev.shade.requestor.lease;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.requestor.writer.Writer;
import dev.shade.requestor.writer.WriterMetadata;
import dev.shade.requestor.writer.Writers;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * The guard process of a freeze lease: it runs the writers' phases for one snapshot and
 * releases them (thaw, abort) by itself when the lease's limit passes after the first freeze,
 * when its standard input closes (the requestor exited, was killed or closed the pipe) or when
 * it gets SIGTERM/SIGINT. {@link FreezeLease} starts it and speaks to it; see
 * {@code docs/requestor.md} for the design.
 *
 * <p>Protocol: one JSON object per line on standard input ({@code {"op": ...}}), one reply per
 * request on standard output ({@code {"ok": true, ...}} or {@code {"ok": false, "error": ...}}).
 * Ops: {@code start} (writer specs and the lease in ms; identifies every writer), {@code prepare},
 * {@code freeze}, {@code thaw} (thaws and runs post-snapshot, returning the writers' metadata, or
 * reports that the lease had expired), {@code reset} (closes the writers and waits for the next
 * {@code start}: one guard serves one snapshot after another), {@code abort}, {@code close}.
 * Logs go to standard error.
 *
 * <p>Threads: the main thread runs the ops; a reader thread watches standard input; the lease
 * timer thread releases at the deadline. {@link #release} is the one place that thaws and aborts
 * out of turn; the state it needs is guarded by {@code this}.
 */
public final class LeaseGuard {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final JsonNode EOF = JSON.createObjectNode().put("op", "eof");

  private final PrintStream out;
  private final List<Writer> writers = new ArrayList<>();
  /** Freeze order: application writers first, filesystems last. */
  private final List<Writer> freezeOrder = new ArrayList<>();
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "shade-lease-timer");
    t.setDaemon(true);
    return t;
  });
  private Duration limit = Duration.ofSeconds(5);

  // guarded by this
  private final List<Writer> prepared = new ArrayList<>();
  private final List<Writer> freezeCalled = new ArrayList<>();
  private final List<Writer> freezeReturned = new ArrayList<>();
  private Writer freezing;
  private String released;
  private boolean releaseFinished;
  private boolean thawing;
  private long firstFreezeNanos;
  private long releasedNanos;
  private ScheduledFuture<?> deadline;

  LeaseGuard(PrintStream out) {
    this.out = out;
  }

  /** Runs a guard on standard input and output until the requestor closes it. */
  public static void main(String[] args) throws Exception {
    PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);
    // nothing else may write to the protocol stream
    System.setOut(System.err);
    LeaseGuard g = new LeaseGuard(out);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> g.release("the guard was stopped by a signal"), "shade-lease-signal"));
    BlockingQueue<JsonNode> ops = new LinkedBlockingQueue<>();
    Thread reader = new Thread(() -> {
      try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
        String line;
        while ((line = in.readLine()) != null) {
          if (!line.isBlank()) {
            ops.add(JSON.readTree(line));
          }
        }
      } catch (IOException e) {
        System.err.println("shade lease guard: reading requests: " + e.getMessage());
      }
      // the requestor is gone or let go: nothing may stay frozen
      g.release("the requestor closed the lease (exited or was killed)");
      ops.add(EOF);
    }, "shade-lease-reader");
    reader.setDaemon(true);
    reader.start();
    int status = g.serve(ops);
    System.exit(status);
  }

  /** Serves requests until close, abort or the end of input; returns the exit status. */
  int serve(BlockingQueue<JsonNode> ops) throws InterruptedException {
    while (true) {
      JsonNode op = ops.take();
      String name = op.path("op").asText();
      ObjectNode reply = JSON.createObjectNode();
      try {
        switch (name) {
          case "start":
            start(op, reply);
            break;
          case "prepare":
            prepare(reply);
            break;
          case "freeze":
            freeze(reply);
            break;
          case "thaw":
            thaw(reply);
            break;
          case "reset":
            reset();
            break;
          case "abort":
            release("the requestor aborted the snapshot");
            reply.put("ok", true);
            reply(reply);
            closeAll();
            return 0;
          case "close":
          case "eof":
            release("the requestor closed the lease");
            closeAll();
            if (name.equals("close")) {
              reply.put("ok", true);
              reply(reply);
            }
            return 0;
          default:
            throw new IllegalArgumentException("unknown lease request: " + op);
        }
        reply.put("ok", true);
      } catch (Exception e) {
        reply.removeAll();
        reply.put("ok", false);
        reply.put("error", message(e));
        if (e instanceof Expired) {
          reply.put("expired", true);
        }
        String why = releasedReason();
        if (why != null) {
          reply.put("released", why);
        }
      }
      reply(reply);
    }
  }

  /**
   * Ends the lease of one snapshot and makes the guard ready for the next {@code start}: closes
   * every writer (after a release, if the lease had not ended cleanly, so nothing stays frozen or
   * prepared) and forgets them. The requestor keeps a guard for the next snapshot this way
   * instead of starting a JVM for each.
   */
  private void reset() {
    boolean clean;
    synchronized (this) {
      clean = thawing && released == null;
    }
    if (!clean) {
      release("the requestor ended the lease");
    }
    closeAll();
    synchronized (this) {
      if (deadline != null) {
        deadline.cancel(false);
      }
      writers.clear();
      freezeOrder.clear();
      prepared.clear();
      freezeCalled.clear();
      freezeReturned.clear();
      freezing = null;
      released = null;
      releaseFinished = false;
      thawing = false;
      firstFreezeNanos = 0;
      releasedNanos = 0;
      deadline = null;
      limit = Duration.ofSeconds(5);
    }
  }

  private void start(JsonNode op, ObjectNode reply) throws IOException {
    synchronized (this) {
      if (!writers.isEmpty() || released != null) {
        throw new IOException("the guard already holds a lease; reset it first");
      }
    }
    limit = Duration.ofMillis(op.path("leaseMs").asLong(5000));
    ArrayNode report = reply.putArray("writers");
    for (JsonNode s : op.path("writers")) {
      Writer w = Writers.parse(s.asText());
      writers.add(w);
    }
    for (Writer w : writers) {
      if (!w.isFilesystem()) {
        freezeOrder.add(w);
      }
    }
    for (Writer w : writers) {
      if (w.isFilesystem()) {
        freezeOrder.add(w);
      }
    }
    for (Writer w : writers) {
      long t = System.nanoTime();
      Map<String, Object> facts = w.identify();
      ObjectNode r = report.addObject();
      r.put("writer", w.spec());
      r.set("identify", JSON.valueToTree(facts));
      r.put("identifyMs", ms(System.nanoTime() - t));
    }
  }

  private void prepare(ObjectNode reply) throws IOException {
    ObjectNode times = reply.putObject("prepareMs");
    for (Writer w : writers) {
      synchronized (this) {
        if (released != null) {
          throw new IOException("the lease was released before prepare: " + released);
        }
        prepared.add(w);
      }
      long t = System.nanoTime();
      try {
        w.prepare();
      } catch (IOException | RuntimeException e) {
        release("prepare of " + w.spec() + " failed");
        throw new IOException("prepare of " + w.spec() + " failed: " + message(e), e);
      }
      times.put(w.spec(), ms(System.nanoTime() - t));
    }
  }

  private void freeze(ObjectNode reply) throws IOException {
    synchronized (this) {
      if (released != null) {
        throw new IOException("the lease was released before the freeze: " + released);
      }
      firstFreezeNanos = System.nanoTime();
      deadline = timer.schedule(() -> release("the freeze lease of " + limit.toMillis() + " ms expired"),
          limit.toNanos(), TimeUnit.NANOSECONDS);
    }
    ObjectNode times = reply.putObject("freezeMs");
    for (Writer w : freezeOrder) {
      long left;
      synchronized (this) {
        if (released != null) {
          throw new IOException("the lease was released during the freeze: " + released);
        }
        freezeCalled.add(w);
        freezing = w;
        left = firstFreezeNanos + limit.toNanos() - System.nanoTime();
      }
      long t = System.nanoTime();
      IOException failure = null;
      try {
        w.freeze(Duration.ofNanos(Math.max(1, left)));
      } catch (IOException | RuntimeException e) {
        failure = new IOException("freeze of " + w.spec() + " failed: " + message(e), e);
      }
      boolean late;
      synchronized (this) {
        freezing = null;
        freezeReturned.add(w);
        late = released != null;
      }
      if (late) {
        // release ran while this freeze did: undo what it may have frozen, and answer only
        // once the release has thawed and aborted the others
        quietly(w::thaw, "thaw of " + w.spec() + " after the lease ended");
        awaitRelease();
        throw failure != null ? failure : new IOException("the lease was released during the freeze of " + w.spec() + ": " + releasedReason());
      }
      if (failure != null) {
        release("freeze of " + w.spec() + " failed");
        throw failure;
      }
      times.put(w.spec(), ms(System.nanoTime() - t));
    }
  }

  private void thaw(ObjectNode reply) throws IOException {
    synchronized (this) {
      if (released != null) {
        throw new Expired(released + "; the writers were thawed "
            + ms(releasedNanos - firstFreezeNanos) + " ms after the first freeze, before the snapshot was confirmed");
      }
      thawing = true;
      if (deadline != null) {
        deadline.cancel(false);
      }
    }
    ObjectNode times = reply.putObject("thawMs");
    IOException first = null;
    List<Writer> order = new ArrayList<>(freezeOrder);
    java.util.Collections.reverse(order);
    for (Writer w : order) {
      long t = System.nanoTime();
      try {
        w.thaw();
      } catch (IOException | RuntimeException e) {
        first = add(first, new IOException("thaw of " + w.spec() + " failed: " + message(e), e));
      }
      times.put(w.spec(), ms(System.nanoTime() - t));
    }
    long thawed = System.nanoTime();
    reply.put("frozenMs", ms(thawed - firstFreezeNanos));
    if (first != null) {
      abortAll();
      throw first;
    }
    ObjectNode post = reply.putObject("postSnapshotMs");
    ArrayNode metadata = reply.putArray("metadata");
    for (Writer w : writers) {
      long t = System.nanoTime();
      try {
        WriterMetadata m = w.postSnapshot();
        metadata.add(JSON.valueToTree(m));
      } catch (IOException | RuntimeException e) {
        abortAll();
        throw new IOException("post-snapshot of " + w.spec() + " failed: " + message(e), e);
      }
      post.put(w.spec(), ms(System.nanoTime() - t));
    }
  }

  /**
   * Ends the lease out of turn: thaws every writer whose freeze returned (filesystems first),
   * then interrupts a freeze in progress (its thread thaws it when it returns) and aborts every
   * prepared writer. Idempotent; the first reason is kept. A call while another thread's
   * release is under way returns when that one has finished, so the guard never exits, and
   * never answers, with writers still being released.
   */
  void release(String reason) {
    List<Writer> thaw;
    List<Writer> abort;
    Writer interrupted;
    synchronized (this) {
      if (thawing) {
        return;
      }
      if (released != null) {
        awaitRelease();
        return;
      }
      released = reason;
      releasedNanos = System.nanoTime();
      thaw = new ArrayList<>(freezeReturned);
      java.util.Collections.reverse(thaw);
      abort = new ArrayList<>(prepared);
      interrupted = freezing;
    }
    System.err.println("shade lease guard: releasing the writers: " + reason);
    // what holds the applications' writes first: filesystems, then the applications, as a
    // normal thaw does; only then the freeze still running (killing a hung hook, then running
    // every hook with "abort", takes process starts the frozen writers need not wait for)
    for (Writer w : thaw) {
      if (w.isFilesystem()) {
        quietly(w::thaw, "thaw of " + w.spec());
      }
    }
    for (Writer w : thaw) {
      if (!w.isFilesystem()) {
        quietly(w::thaw, "thaw of " + w.spec());
      }
    }
    if (interrupted != null) {
      quietly(() -> interrupted.abort(), "abort of " + interrupted.spec());
    }
    for (Writer w : abort) {
      if (w != interrupted) {
        quietly(w::abort, "abort of " + w.spec());
      }
    }
    synchronized (this) {
      releaseFinished = true;
      notifyAll();
    }
  }

  /** Waits until a release begun by any thread has thawed and aborted every writer. */
  private synchronized void awaitRelease() {
    boolean interrupted = false;
    while (released != null && !releaseFinished) {
      try {
        wait();
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  private synchronized String releasedReason() {
    return released;
  }

  private void abortAll() {
    List<Writer> abort;
    synchronized (this) {
      abort = new ArrayList<>(prepared);
    }
    for (Writer w : abort) {
      quietly(w::abort, "abort of " + w.spec());
    }
  }

  private void closeAll() {
    for (Writer w : writers) {
      quietly(w::close, "close of " + w.spec());
    }
  }

  private synchronized void reply(ObjectNode reply) {
    out.println(reply.toString());
    out.flush();
  }

  /** The lease had ended before the thaw. */
  private static final class Expired extends IOException {
    private static final long serialVersionUID = 1L;

    Expired(String message) {
      super(message);
    }
  }

  private interface Step {
    void run() throws Exception;
  }

  private static void quietly(Step s, String what) {
    try {
      s.run();
    } catch (Exception e) {
      System.err.println("shade lease guard: " + what + " failed: " + message(e));
    }
  }

  private static IOException add(IOException first, IOException e) {
    if (first == null) {
      return e;
    }
    first.addSuppressed(e);
    return first;
  }

  private static double ms(long nanos) {
    return Math.round(nanos / 10_000.0) / 100.0;
  }

  static String message(Throwable e) {
    String m = e.getMessage();
    return m == null ? e.getClass().getSimpleName() : m;
  }
}
