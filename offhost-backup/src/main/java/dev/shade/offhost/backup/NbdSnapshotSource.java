package dev.shade.offhost.backup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.shade.nbd.client.Extent;
import dev.shade.nbd.client.NbdClient;
import dev.shade.nbd.client.NbdClientConfig;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * A snapshot exported by the shade agent over NBD ({@code VOLUME@SNAPSHOT} or
 * {@code VOLUME@id=N}): its identity from the export's description (one line of JSON, docs/nbd.md),
 * allocation from {@code base:allocation}, changes from {@code shade:changed:id=N}; reads go
 * over up to {@link #CONNECTIONS} connections.
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
  private static final ObjectMapper JSON = new ObjectMapper();

  private final NbdClientConfig config;
  /** The first connection: identity, allocation, reads. */
  private final NbdClient client;
  /** Every connection, the first included; reads go round robin. */
  private final List<NbdClient> clients;
  private final SnapshotIdentity identity;
  /** The connection of the next read (one thread calls; see the class comment). */
  private int next;

  private NbdSnapshotSource(NbdClientConfig config, List<NbdClient> clients, SnapshotIdentity identity) {
    this.config = config;
    this.client = clients.get(0);
    this.clients = List.copyOf(clients);
    this.identity = identity;
  }

  /**
   * Connects to the snapshot export of {@code config} (its meta contexts are replaced). Fails if
   * the export is not a shade snapshot (an origin, or a server that is not shade's agent).
   */
  public static NbdSnapshotSource open(NbdClientConfig config) throws IOException {
    List<NbdClient> cs = NbdClient.connectMultiConn(config.toBuilder().metaContexts(ALLOCATION).build(), CONNECTIONS);
    try {
      return new NbdSnapshotSource(config, cs, identity(cs.get(0)));
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
    nextClient().read(offset, dst);
  }

  @Override
  public CompletableFuture<Void> readAsync(long offset, ByteBuffer dst) throws IOException {
    return nextClient().readAsync(offset, dst);
  }

  private NbdClient nextClient() {
    NbdClient c = clients.get(next);
    next = (next + 1) % clients.size();
    return c;
  }

  /** Connections open for reads (several when the export allows it). */
  public int connections() {
    return clients.size();
  }

  @Override
  public void close() {
    clients.forEach(NbdClient::close);
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
