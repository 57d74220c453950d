package dev.shade.nbd.client;

import dev.shade.nbd.protocol.Nbd;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Copies an export, or ranges of it, into a file over several connections with a window of
 * reads in flight on each, skipping the ranges {@code base:allocation} reports as zero so the
 * file stays sparse.
 *
 * <p>Thread-safety: one copy at a time per copier (it keeps its read buffers for the next); the
 * copy itself runs on threads of its own, which call the progress callback.
 */
public final class ExportCopier {
  /*
   * The work is cut into segments (128 MiB, as nbdcopy's threads take it). Each connection has
   * one issuing thread that takes the next segment, asks for its base:allocation extents, and
   * sends reads of requestSize for the extents that hold data, at most `window` at once (a
   * Window of slots, and a pool of that many direct buffers). Each read's completion runs on the
   * connection's reader thread and writes the buffer at the same offset of the file with a
   * positional write, as nbdcopy's completion callbacks do, so data goes socket -> direct buffer
   * -> page cache with no other copy and no hand-off. Zero extents are left unwritten in a file
   * copied whole (it was truncated to 0 and extended, so they read as zeroes and take no
   * space); when copying ranges into an existing file they are written as zeroes, since the
   * file may hold older data there.
   */

  /** Told how far a copy has got; called from the copy's threads, at most every 100 ms and once at the end. */
  @FunctionalInterface
  public interface Progress {
    void update(long bytesDone, long bytesTotal);
  }

  /**
   * What a copy did.
   *
   * @param bytesTotal bytes of the export (or ranges) covered
   * @param bytesRead bytes read from the server and written
   * @param bytesSkipped bytes of zero extents left as holes (or written as zeroes for ranges)
   * @param connections connections used
   * @param nanos time taken
   */
  public record Result(long bytesTotal, long bytesRead, long bytesSkipped, int connections, long nanos) {
    /** Throughput over the bytes covered, in MiB/s. */
    public double mibPerSecond() {
      return bytesTotal / (1024.0 * 1024.0) / (nanos / 1e9);
    }
  }

  /** Segment size, as nbdcopy's threads take work. */
  static final long SEGMENT = 128L << 20;

  private final NbdClientConfig config;
  private final int connections;
  private final int requestSize;
  private final int window;
  private final boolean skipZeroes;
  private final Progress progress;
  /**
   * Read buffers kept from one copy for the next: a window of 64 reads of 256 KiB on 4
   * connections is 64 MiB of direct memory, which the kernel zeroes page by page on first use
   * (16,000 page faults, some 5% of a copy of 1 GiB in tmpfs).
   */
  private final ConcurrentLinkedQueue<ByteBuffer> spare = new ConcurrentLinkedQueue<>();

  private ExportCopier(Builder b) {
    this.config = b.config;
    this.connections = b.connections;
    this.requestSize = b.requestSize;
    this.window = b.window;
    this.skipZeroes = b.skipZeroes;
    this.progress = b.progress;
  }

  /** A copier reading the export of {@code source}. */
  public static Builder builder(NbdClientConfig source) {
    return new Builder(source);
  }

  /** Replaces {@code file} (created if need be) with a copy of the whole export. */
  public Result copyTo(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.READ)) {
      return copyTo(ch);
    }
  }

  /**
   * Replaces the contents of {@code dst} with a copy of the whole export: it is truncated to 0
   * and extended to the export's size, then the data written; zero extents stay holes.
   */
  public Result copyTo(FileChannel dst) throws IOException {
    return run(null, dst);
  }

  /**
   * Copies {@code ranges} of the export into {@code dst} at the same offsets (the file is
   * extended to the export's size if shorter); zero extents in them are written as zeroes.
   */
  public Result copyRanges(List<Extent> ranges, FileChannel dst) throws IOException {
    return run(List.copyOf(ranges), dst);
  }

  private Result run(List<Extent> ranges, FileChannel dst) throws IOException {
    long start = System.nanoTime();
    NbdClientConfig.Builder cb = config.toBuilder().maxInFlight(Math.max(config.maxInFlight(), window));
    if (skipZeroes) {
      cb.metaContexts(Nbd.CONTEXT_ALLOCATION);
    }
    List<NbdClient> clients = NbdClient.connectMultiConn(cb.build(), connections);
    try {
      long size = clients.get(0).size();
      boolean whole = ranges == null;
      if (whole) {
        dst.truncate(0);
        if (size > 0) {
          dst.write(ByteBuffer.allocate(1), size - 1); // extend sparsely
        }
        ranges = List.of(new Extent(0, size, 0));
      } else if (dst.size() < size) {
        dst.write(ByteBuffer.allocate(1), size - 1);
      }
      List<Extent> segments = new ArrayList<>();
      long total = 0;
      for (Extent r : ranges) {
        if (r.end() > size) {
          throw new IllegalArgumentException("range [" + r.offset() + ", " + r.end() + ") is past the end (" + size + ") of "
              + config.uri());
        }
        total += r.length();
        for (long o = r.offset(); o < r.end(); o += SEGMENT) {
          segments.add(new Extent(o, Math.min(SEGMENT, r.end() - o), 0));
        }
      }
      Copy copy = new Copy(segments, dst, !whole, total);
      List<Thread> threads = new ArrayList<>();
      for (NbdClient c : clients) {
        Thread t = new Thread(() -> copy.issue(c), "nbd-copy " + threads.size() + " " + config.uri());
        t.setDaemon(true);
        threads.add(t);
        t.start();
      }
      for (Thread t : threads) {
        try {
          t.join();
        } catch (InterruptedException e) {
          copy.failed.compareAndSet(null, new InterruptedIOException("copy of " + config.uri() + " interrupted"));
          for (Thread x : threads) {
            x.interrupt();
          }
          Thread.currentThread().interrupt();
        }
      }
      Throwable f = copy.failed.get();
      if (f != null) {
        if (f instanceof IOException) {
          throw (IOException) f;
        }
        if (f instanceof RuntimeException) {
          throw (RuntimeException) f;
        }
        throw new IOException("copy of " + config.uri() + " failed", f);
      }
      if (progress != null) {
        progress.update(copy.done.get(), total);
      }
      return new Result(total, copy.read.get(), copy.skipped.get(), clients.size(), System.nanoTime() - start);
    } finally {
      for (NbdClient c : clients) {
        c.closeQuietly();
      }
    }
  }

  /** The state of one copy, shared by its threads. */
  private final class Copy {
    final List<Extent> segments;
    final FileChannel dst;
    /** Write zero extents instead of leaving them. */
    final boolean writeZeroes;
    final long total;
    final AtomicInteger nextSegment = new AtomicInteger();
    /** First failure; the copy stops at it. */
    final AtomicReference<Throwable> failed = new AtomicReference<>();
    final AtomicLong done = new AtomicLong();
    final AtomicLong read = new AtomicLong();
    final AtomicLong skipped = new AtomicLong();
    /** When progress was last reported. */
    final AtomicLong lastReport = new AtomicLong(System.nanoTime());

    Copy(List<Extent> segments, FileChannel dst, boolean writeZeroes, long total) {
      this.segments = segments;
      this.dst = dst;
      this.writeZeroes = writeZeroes;
      this.total = total;
    }

    /** The issuing loop of one connection. */
    void issue(NbdClient c) {
      Window slots = new Window(window);
      ConcurrentLinkedQueue<ByteBuffer> pool = new ConcurrentLinkedQueue<>();
      int size = Math.max(c.info().minimumBlock(), Math.min(requestSize, c.info().maximumPayload()) / c.info().minimumBlock()
          * c.info().minimumBlock());
      for (int i = 0; i < window; i++) {
        ByteBuffer b = spare.poll();
        pool.add(b != null && b.capacity() == size ? b : ByteBuffer.allocateDirect(size));
      }
      boolean allocation = skipZeroes && c.metaContexts().contains(Nbd.CONTEXT_ALLOCATION);
      try {
        int i;
        while (failed.get() == null && (i = nextSegment.getAndIncrement()) < segments.size()) {
          Extent seg = segments.get(i);
          List<Extent> extents = allocation ? c.extents(Nbd.CONTEXT_ALLOCATION, seg.offset(), seg.length()) : List.of(seg);
          for (Extent e : extents) {
            if (allocation && e.zero()) {
              if (writeZeroes) {
                writeZeroes(e);
              }
              skipped.addAndGet(e.length());
              advance(e.length());
              continue;
            }
            for (long o = e.offset(); o < e.end() && failed.get() == null; o += size) {
              int n = (int) Math.min(size, e.end() - o);
              slots.take();
              ByteBuffer b = pool.poll();
              b.clear().limit(n);
              long off = o;
              java.util.concurrent.CompletableFuture<Void> f;
              try {
                f = c.readAsync(off, b);
              } catch (IOException | RuntimeException x) {
                pool.add(b);
                slots.give();
                throw x;
              }
              f.whenComplete((v, err) -> {
                try {
                  if (err != null) {
                    failed.compareAndSet(null, err instanceof java.util.concurrent.CompletionException && err.getCause() != null
                        ? err.getCause() : err);
                  } else if (failed.get() == null) {
                    ByteBuffer w = b.duplicate();
                    long p = off;
                    while (w.hasRemaining()) {
                      p += dst.write(w, p);
                    }
                    read.addAndGet(n);
                    advance(n);
                  }
                } catch (IOException | RuntimeException x) {
                  failed.compareAndSet(null, new IOException("cannot write the copy of " + config.uri() + " at offset " + off
                      + " (" + x.getMessage() + ")", x));
                } finally {
                  pool.add(b);
                  slots.give();
                }
              });
            }
          }
        }
        slots.drain(); // wait for the reads in flight
        spare.addAll(pool);
      } catch (IOException | RuntimeException e) {
        failed.compareAndSet(null, e);
        slots.drainUninterruptibly();
        spare.addAll(pool);
      } catch (InterruptedException e) {
        // reads may still be in flight into the buffers: they are not kept
        failed.compareAndSet(null, new InterruptedIOException("copy of " + config.uri() + " interrupted"));
        Thread.currentThread().interrupt();
      }
    }

    private void writeZeroes(Extent e) throws IOException {
      ByteBuffer z = ByteBuffer.allocateDirect((int) Math.min(1 << 20, e.length()));
      for (long o = e.offset(); o < e.end(); ) {
        z.clear().limit((int) Math.min(z.capacity(), e.end() - o));
        o += dst.write(z, o);
      }
    }

    private void advance(long n) {
      long d = done.addAndGet(n);
      if (progress != null) {
        long now = System.nanoTime();
        long last = lastReport.get();
        if (now - last >= 100_000_000L && lastReport.compareAndSet(last, now)) {
          progress.update(d, total);
        }
      }
    }
  }

  /** Collects a copier's settings; not thread-safe. */
  public static final class Builder {
    private final NbdClientConfig config;
    private int connections = 4;
    private int requestSize = 256 << 10;
    private int window = 64;
    private boolean skipZeroes = true;
    private Progress progress;

    private Builder(NbdClientConfig config) {
      this.config = Objects.requireNonNull(config, "config");
    }

    /** Connections to open (default 4); one when the server does not advertise CAN_MULTI_CONN. */
    public Builder connections(int n) {
      if (n < 1) {
        throw new IllegalArgumentException("connections must be at least 1: " + n);
      }
      this.connections = n;
      return this;
    }

    /** Bytes per read (default 256 KiB), capped at the server's maximum payload. */
    public Builder requestSize(int n) {
      if (n < 512) {
        throw new IllegalArgumentException("request size below 512 bytes: " + n);
      }
      this.requestSize = n;
      return this;
    }

    /** Reads in flight per connection (default 64). */
    public Builder window(int n) {
      if (n < 1) {
        throw new IllegalArgumentException("window must be at least 1: " + n);
      }
      this.window = n;
      return this;
    }

    /** Whether to ask base:allocation and skip zero extents (default true). */
    public Builder skipZeroes(boolean on) {
      this.skipZeroes = on;
      return this;
    }

    public Builder progress(Progress p) {
      this.progress = p;
      return this;
    }

    public ExportCopier build() {
      return new ExportCopier(this);
    }
  }
}
