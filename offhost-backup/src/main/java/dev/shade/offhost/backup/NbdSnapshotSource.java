package dev.shade.offhost.backup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.nbd.client.Extent;
import dev.shade.nbd.client.NbdClient;
import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.nbd.client.NbdErrorException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicReferenceArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A snapshot exported by the shade agent over NBD ({@code VOLUME@SNAPSHOT} or
 * {@code VOLUME@id=N}): its identity from the export's description (one line of JSON, docs/nbd.md),
 * allocation from {@code base:allocation}, changes from {@code shade:changed:id=N}; reads go
 * over up to {@link #CONNECTIONS} connections.
 *
 * <p>A read whose connection breaks (cut by the network, by a proxy, or by the agent, which
 * disconnects a client that does not take a reply in time) is read again on a new connection to
 * the same export, once it has been checked to be the same snapshot (volume uuid, snapshot id,
 * size): a snapshot does not change, so the bytes are the same, and a backup of hours does not
 * fail for one cut, nor for an agent restarted meanwhile (a new connection is tried for about
 * 16 s). The server's own error replies are not retried; a read is tried at most
 * {@link #READ_ATTEMPTS} times, and the source reconnects at most {@link #MAX_RECONNECTS} times
 * in all, so a link that keeps failing fails the backup.
 *
 * <p>Not thread-safe (one backup at a time uses it, from one thread), though the connections below are.
 */
public final class NbdSnapshotSource implements SnapshotSource {
  static final String ALLOCATION = "base:allocation";
  /**
   * Connections reads are spread over, round robin, when the export allows several
   * ({@code CAN_MULTI_CONN}, as the agent's read-only snapshot exports do): as many as nbdcopy
   * opens by default, so the agent serves them on several threads. The system property
   * {@code shade.backup.connections} changes it.
   */
  static final int CONNECTIONS = Math.max(1, Integer.getInteger("shade.backup.connections", 4));
  /** Times one read is sent before its failure is the backup's (the first try included). */
  static final int READ_ATTEMPTS = 4;
  /** New connections one source opens at most after connections broke. */
  static final int MAX_RECONNECTS = 16;
  /** The wait before reconnecting after the first failure; doubled for each later try, up to 8 s. */
  static final long RECONNECT_DELAY_MS = 250;
  /**
   * Tries to open a connection again before the export is taken as gone: with the doubling waits
   * about 16 s, long enough for an agent restarted at once (its volumes reopened) to answer.
   */
  static final int CONNECT_ATTEMPTS = 6;
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Logger LOG = LoggerFactory.getLogger(NbdSnapshotSource.class);

  private final NbdClientConfig config;
  /** The configuration of the read connections (with base:allocation). */
  private final NbdClientConfig readConfig;
  /** Every connection; reads go round robin; a broken one is replaced under {@link #reconnectLock}. */
  private final AtomicReferenceArray<NbdClient> clients;
  private final SnapshotIdentity identity;
  /** The connection of the next read (one thread calls; see the class comment). */
  private int next;
  /** Held while a broken connection is replaced. */
  private final Object reconnectLock = new Object();
  /** Connections replaced so far (under reconnectLock). */
  private int reconnects;
  /** Set (under reconnectLock) once a reconnect spent its tries: later ones fail at once with it. */
  private IOException unreachable;
  /** Reconnects and the reads they retry run here, never on a client's own threads. */
  private final ExecutorService retries = Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "nbd-source-reconnect");
    t.setDaemon(true);
    return t;
  });
  /** Set by close: nothing is retried after it. */
  private volatile boolean closed;

  private NbdSnapshotSource(NbdClientConfig config, NbdClientConfig readConfig, List<NbdClient> clients,
      SnapshotIdentity identity) {
    this.config = config;
    this.readConfig = readConfig;
    this.clients = new AtomicReferenceArray<>(clients.toArray(new NbdClient[0]));
    this.identity = identity;
  }

  /**
   * Connects to the snapshot export of {@code config} (its meta contexts are replaced). Fails if
   * the export is not a shade snapshot (an origin, or a server that is not shade's agent).
   */
  public static NbdSnapshotSource open(NbdClientConfig config) throws IOException {
    NbdClientConfig readConfig = config.toBuilder().metaContexts(ALLOCATION).build();
    List<NbdClient> cs = NbdClient.connectMultiConn(readConfig, CONNECTIONS);
    try {
      return new NbdSnapshotSource(config, readConfig, cs, identity(cs.get(0)));
    } catch (IOException | RuntimeException e) {
      cs.forEach(NbdClient::close);
      throw e;
    }
  }

  private static SnapshotIdentity identity(NbdClient c) throws IOException {
    String d = c.info().description();
    JsonNode doc;
    try {
      doc = JSON.readTree(d);
    } catch (IOException e) {
      doc = null;
    }
    if (doc == null || !doc.isObject() || !doc.hasNonNull("volumeUuid")) {
      throw new IOException("export " + c.uri() + " is not a shade export: its description is not shade's JSON: '"
          + d + "'");
    }
    if (!doc.hasNonNull("snapshotId")) {
      throw new IOException("export " + c.uri() + " is the origin of volume " + doc.path("volume").asText()
          + ", not a snapshot: back up a snapshot (VOLUME@SNAPSHOT or VOLUME@id=N)");
    }
    return new SnapshotIdentity(doc.path("volume").asText(), doc.path("volumeUuid").asText(),
        doc.path("snapshot").asText(), doc.path("snapshotId").asLong(), Instant.parse(doc.path("created").asText()),
        c.size(), Math.max(0, doc.path("blockSize").asInt(0)));
  }

  @Override
  public SnapshotIdentity identity() {
    return identity;
  }

  @Override
  public List<Range> allocated() throws IOException {
    List<Range> out = new ArrayList<>();
    NbdClient client = clients.get(0);
    if (!client.metaContexts().contains(ALLOCATION)) {
      out.add(new Range(0, identity.size()));
      return out;
    }
    for (Extent e : client.extents(ALLOCATION, 0, identity.size())) {
      if (!e.hole() && !e.zero()) {
        out.add(new Range(e.offset(), e.length()));
      }
    }
    return out;
  }

  @Override
  public Optional<List<Range>> changedSince(long baseSnapshotId) throws IOException {
    String context = "shade:changed:id=" + baseSnapshotId;
    try (NbdClient c = NbdClient.connect(config.toBuilder().metaContexts(context).build())) {
      if (!c.metaContexts().contains(context)) {
        return Optional.empty();
      }
      List<Range> out = new ArrayList<>();
      for (Extent e : c.extents(context, 0, identity.size())) {
        if ((e.flags() & 1) != 0) {
          out.add(new Range(e.offset(), e.length()));
        }
      }
      return Optional.of(out);
    }
  }

  @Override
  public void read(long offset, ByteBuffer dst) throws IOException {
    NbdClient.await(readAsync(offset, dst));
  }

  @Override
  public CompletableFuture<Void> readAsync(long offset, ByteBuffer dst) throws IOException {
    int slot = next;
    next = (next + 1) % clients.length();
    return readOn(slot, offset, dst, 1);
  }

  /**
   * Reads on connection {@code slot}; a broken connection is replaced and the read sent again, up
   * to READ_ATTEMPTS times. A request out of range throws, as the client's own readAsync does.
   */
  private CompletableFuture<Void> readOn(int slot, long offset, ByteBuffer dst, int attempt) {
    NbdClient c = clients.get(slot);
    CompletableFuture<Void> f;
    try {
      f = c.readAsync(offset, dst);
    } catch (IOException e) {
      f = CompletableFuture.failedFuture(e);
    }
    return f.handle((ok, e) -> {
      if (e == null) {
        return CompletableFuture.<Void>completedFuture(null);
      }
      Throwable cause = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
      if (closed || cause instanceof NbdErrorException || !(cause instanceof IOException)) {
        return CompletableFuture.<Void>failedFuture(cause);
      }
      if (attempt >= READ_ATTEMPTS) {
        return CompletableFuture.<Void>failedFuture(new IOException(cause.getMessage() + " (read " + attempt
            + " times, reconnecting after each break)", cause));
      }
      return CompletableFuture.runAsync(() -> {
        try {
          reconnect(slot, c, attempt, (IOException) cause, offset, dst.remaining());
        } catch (IOException x) {
          throw new CompletionException(x);
        }
      }, retries).thenCompose(x -> readOn(slot, offset, dst, attempt + 1));
    }).thenCompose(x -> x);
  }

  /**
   * Replaces connection {@code slot}, which was {@code broken}, with a new one to the same
   * snapshot (unless another read's retry already has); waits RECONNECT_DELAY_MS, doubled per
   * attempt of the read, first.
   */
  private void reconnect(int slot, NbdClient broken, int attempt, IOException cause, long offset, int length)
      throws IOException {
    synchronized (reconnectLock) {
      if (clients.get(slot) != broken) {
        return;
      }
      if (reconnects >= MAX_RECONNECTS) {
        throw new IOException("the connection to " + config.uri() + " broke again (" + cause.getMessage() + ") after "
            + reconnects + " reconnects; giving up", cause);
      }
      if (unreachable != null) { // an earlier reconnect spent its tries: the export is gone
        throw unreachable;
      }
      NbdClient fresh = null;
      IOException last = null;
      long waited = 0;
      for (int k = 0; k < CONNECT_ATTEMPTS && fresh == null; k++) {
        long delay = Math.min(8000, RECONNECT_DELAY_MS << (k + attempt - 1));
        try {
          Thread.sleep(delay);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new InterruptedIOException("interrupted reconnecting to " + config.uri());
        }
        waited += delay;
        if (closed) {
          throw cause;
        }
        try {
          fresh = NbdClient.connect(readConfig);
        } catch (IOException e) {
          last = e;
          LOG.warn("{}: connection {} broke ({}) and could not be opened again ({}); trying again", describe(), slot + 1,
              cause.getMessage(), e.getMessage());
        }
      }
      if (fresh == null) {
        last.addSuppressed(cause);
        unreachable = new IOException("could not reconnect to " + config.uri() + " in " + CONNECT_ATTEMPTS + " tries over "
            + (waited / 1000) + " s after its connection broke (" + cause.getMessage() + "): " + last.getMessage(), last);
        throw unreachable;
      }
      try {
        SnapshotIdentity now = identity(fresh);
        if (!now.volumeUuid().equals(identity.volumeUuid()) || now.snapshotId() != identity.snapshotId()
            || now.size() != identity.size()) {
          throw new IOException(config.uri() + " no longer exports the snapshot being backed up (" + identity + "), but "
              + now);
        }
      } catch (IOException | RuntimeException e) {
        fresh.close();
        throw e;
      }
      clients.set(slot, fresh);
      reconnects++;
      broken.close();
      LOG.warn("{}: connection {} broke reading {} bytes at {} ({}); reconnected ({} of at most {}) and reading again",
          describe(), slot + 1, length, offset, cause.getMessage(), reconnects, MAX_RECONNECTS);
    }
  }

  /** Connections replaced after they broke, so far. */
  @Override
  public int reconnects() {
    synchronized (reconnectLock) {
      return reconnects;
    }
  }

  /** Connections open for reads (several when the export allows it). */
  public int connections() {
    return clients.length();
  }

  @Override
  public void close() {
    closed = true;
    retries.shutdownNow();
    synchronized (reconnectLock) {
      for (int i = 0; i < clients.length(); i++) {
        clients.get(i).close();
      }
    }
  }

  @Override
  public String toString() {
    return describe();
  }

  @Override
  public String describe() {
    return identity + " at " + config.uri();
  }
}
