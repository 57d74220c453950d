package dev.shade.requestor.export;

import static dev.shade.nbd.protocol.Nbd.EIO;
import static dev.shade.nbd.protocol.Nbd.REP_ERR_UNKNOWN;
import static dev.shade.requestor.export.Served.write;
import static dev.shade.testing.Bytes.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.shade.nbd.client.NbdClient;
import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.nbd.client.NbdErrorException;
import dev.shade.nbd.client.NbdHandshakeException;
import dev.shade.nbd.protocol.Extent;
import dev.shade.nbd.server.NbdExport;
import dev.shade.nbd.server.NbdServer;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.testing.nbd.Exec;
import dev.shade.testing.nbd.Json;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
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
 * {@link VolumeExports}: export names by snapshot name, id and volume uuid, the JSON description,
 * changed blocks named by id and answered for the requested window only, snapshots deleted under
 * a client, and volumes detached from a running server.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class VolumeExportsTest {
  private static final long MIB = 1 << 20;
  private static final long SIZE = 16 * MIB;
  private static final int LEN = 4096;

  @TempDir Path dir;
  private Volume volume;
  private Served served;
  /** What the volume held at s1 in its first 4 KiB. */
  private byte[] head;
  /** s1, taken over head. */
  private SnapshotInfo s1;

  @BeforeEach
  void serve() throws Exception {
    volume = Volume.create(dir.resolve("vol"), VolumeConfig.of(SIZE).withDiffMax(SIZE));
    head = random(1, LEN);
    write(volume, 0, head);
    s1 = volume.createSnapshot("s1");
    served = Served.start(volume);
  }

  @AfterEach
  void close() throws Exception {
    if (served != null) {
      served.close();
    }
  }

  @Test
  void find_byNameIdAndUuid_givesTheCanonicalExport() throws Exception {
    write(volume, 0, random(2, LEN)); // the origin now differs from s1
    VolumeExports exports = served.exports;
    String uuid = volume.uuid();
    for (String name : List.of("vol@s1", "vol@id=" + s1.id(), uuid + "@s1", uuid + "@id=" + s1.id())) {
      try (NbdExport e = exports.find(name, true)) {
        assertNotNull(e, name);
        assertEquals("vol@s1", e.name(), "canonical name of " + name);
        assertTrue(e.readOnly(), name + " is read-only");
        ByteBuffer b = ByteBuffer.allocate(LEN);
        e.read(0, b);
        assertArrayEquals(head, b.array(), "first 4 KiB of " + name);
      }
    }
    for (String name : List.of("vol", uuid, "")) {
      try (NbdExport e = exports.find(name, true)) {
        assertEquals("vol", e.name(), "canonical name of '" + name + "'");
        assertFalse(e.readOnly(), "'" + name + "' for a local peer");
      }
      try (NbdExport e = exports.find(name, false)) {
        assertTrue(e.readOnly(), "'" + name + "' for a peer that may not write");
      }
    }
    for (String name : List.of("vol@id=" + (s1.id() + 1), "vol@id=", "vol@id=x", "vol@id=-1", "vol@id=99999999999999999999",
        "vol@", "nope@s1", uuid.substring(1) + "@s1", "vol@S1")) {
      assertNull(exports.find(name, true), "'" + name + "' finds nothing");
    }
    assertEquals(List.of("vol", "vol@s1"), exports.list(true).stream().map(x -> x.name()).toList(), "listed names");

    try (NbdClient c = NbdClient.connect(served.uri("vol@id=" + s1.id()))) {
      assertArrayEquals(head, c.read(0, LEN), "vol@id=" + s1.id() + " over NBD");
    }
  }

  @Test
  void description_isOneLineOfJson() throws Exception {
    Exec.assumeTools("nbdinfo");
    Exec.Result r = Exec.run(Duration.ofSeconds(30), "nbdinfo", "--list", "--json", "nbd://127.0.0.1:" + served.address().getPort())
        .assertSuccess();
    Map<String, Map<String, Object>> byName = new java.util.TreeMap<>();
    for (Object o : Json.array(Json.object(Json.parse(r.stdout())).get("exports"))) {
      Map<String, Object> e = Json.object(o);
      byName.put((String) e.get("export-name"), e);
    }
    assertEquals(List.of("vol", "vol@s1"), new ArrayList<>(byName.keySet()), "exports listed");
    for (String name : byName.keySet()) {
      String text = (String) byName.get(name).get("description");
      assertNotNull(text, "description of " + name + ": " + r);
      assertFalse(text.contains("\n"), "one line: " + text);
      Map<String, Object> d = Json.object(Json.parse(text));
      assertEquals(List.of("volume", "volumeUuid", "snapshot", "snapshotId", "created", "size", "blockSize"),
          new ArrayList<>(d.keySet()), "keys of " + text);
      assertEquals(volume.blockSize(), Json.integer(d, "blockSize"), text);
      assertEquals("vol", d.get("volume"), text);
      assertEquals(volume.uuid(), d.get("volumeUuid"), text);
      assertEquals(SIZE, Json.integer(d, "size"), text);
      if (name.equals("vol")) {
        assertNull(d.get("snapshot"), text);
        assertNull(d.get("snapshotId"), text);
        assertNull(d.get("created"), text);
      } else {
        assertEquals("s1", d.get("snapshot"), text);
        assertEquals(s1.id(), Json.integer(d, "snapshotId"), text);
        assertEquals(s1.created(), Instant.parse((String) d.get("created")), text);
      }
    }
    // the same through NBD_INFO_DESCRIPTION of one export, named by id
    Exec.Result one = Exec.run(Duration.ofSeconds(30), "nbdinfo", "--json", served.uri("vol@id=" + s1.id())).assertSuccess();
    Map<String, Object> info = Json.object(Json.array(Json.object(Json.parse(one.stdout())).get("exports")).get(0));
    assertEquals(VolumeExports.description(volume, s1), info.get("description"), one.toString());
  }

  @Test
  void changedContext_byId_sameAsByName_andClippedToTheWindow() throws Exception {
    int block = volume.blockSize();
    write(volume, 2 * MIB, random(3, 3 * block)); // three changed blocks
    write(volume, 8 * MIB, random(4, 1));
    SnapshotInfo s2 = volume.createSnapshot("s2");
    String byName = "shade:changed:s1";
    String byId = "shade:changed:id=" + s1.id();
    try (NbdExport e = served.exports.find("vol@id=" + s2.id(), true)) {
      assertTrue(e.offersMetaContext(byId), byId);
      assertFalse(e.offersMetaContext("shade:changed:id=" + (s2.id() + 1)), "a context of an unknown id");
      assertEquals(List.of(byId), e.metaContexts(byId), "LIST_META_CONTEXT of " + byId);
      assertEquals(List.of("shade:changed:s1", "shade:changed:s2"), e.metaContexts("shade:changed:"), "the namespace query");
      // a window inside the second changed block: one changed extent exactly the window
      long lo = 2 * MIB + block + 100;
      assertEquals(List.of(new Extent(lo, 1000, 1)), e.extents(byId, lo, 1000), "window inside a changed block");
      assertEquals(e.extents(byName, 0, SIZE), e.extents(byId, 0, SIZE), "by id equals by name");
      assertEquals(List.of(new Extent(0, 2 * MIB, 0), new Extent(2 * MIB, 3 * block, 1), new Extent(2 * MIB + 3 * block, MIB - 3 * block, 0)),
          e.extents(byId, 0, 3 * MIB), "window [0, 3 MiB)");
      assertEquals(List.of(new Extent(7 * MIB, MIB, 0), new Extent(8 * MIB, block, 1)), e.extents(byId, 7 * MIB, MIB + block),
          "window ending at the end of the block at 8 MiB");
    }
    try (NbdClient c = NbdClient.connect(NbdClientConfig.builder(served.uri("vol@s2")).metaContexts(byId).build())) {
      Map<String, List<dev.shade.nbd.client.Extent>> r = c.blockStatus(2 * MIB + block, 4 * MIB, true);
      assertEquals(List.of(byId), new ArrayList<>(r.keySet()), "one context");
      assertEquals(List.of(new dev.shade.nbd.client.Extent(2 * MIB + block, 2L * block, 1)), r.get(byId), "REQ_ONE at the second changed block");
    }
  }

  @Test
  void read_snapshotDeletedWhileAttached_failsWithEio() throws Exception {
    try (NbdClient c = NbdClient.connect(served.uri("vol@s1"))) {
      assertArrayEquals(head, c.read(0, LEN), "vol@s1 before the delete");
      volume.deleteSnapshot("s1");
      volume.createSnapshot("s2");
      NbdErrorException r = assertThrows(NbdErrorException.class, () -> c.read(0, LEN), "READ of vol@s1 after s1 was deleted");
      assertEquals(EIO, r.errno(), "READ of vol@s1 after s1 was deleted: " + r.serverMessage());
      assertEquals(EIO, assertThrows(NbdErrorException.class, () -> c.read(SIZE - LEN, LEN)).errno(), "a second READ of the deleted vol@s1");
    }
    NbdClientConfig simple = NbdClientConfig.builder(served.uri("vol@s1")).structuredReplies(false).build();
    NbdHandshakeException e = assertThrows(NbdHandshakeException.class, () -> NbdClient.connect(simple), "attaching to the deleted vol@s1");
    assertEquals(REP_ERR_UNKNOWN, e.reply(), e.getMessage());
  }

  @Test
  void detach_thenDisconnect_endsOnlyThatVolumesClients() throws Exception {
    Volume other = Volume.create(dir.resolve("db"), VolumeConfig.of(SIZE));
    try {
      served.exports.attach(other);
      assertThrows(IllegalArgumentException.class, () -> served.exports.attach(other), "attaching twice");
      try (NbdClient origin = NbdClient.connect(served.uri("vol"));
          NbdClient snap = NbdClient.connect(NbdClientConfig.builder(served.uri("vol@s1")).structuredReplies(false).build());
          NbdClient keep = NbdClient.connect(served.uri("db"))) {
        awaitClients(3);
        List<NbdServer.Client> clients = served.server.clients();
        assertEquals(List.of("db:true", "vol:true", "vol@s1:false"),
            clients.stream().map(x -> x.export() + ":" + x.writable()).sorted().toList(), "clients: " + clients);
        assertTrue(clients.stream().allMatch(x -> x.local() && !x.tls() && x.peer().startsWith("127.0.0.1:")), clients.toString());

        assertEquals(LEN, origin.read(0, LEN).length, "vol before the detach");
        assertTrue(served.exports.detach(volume));
        assertFalse(served.exports.detach(volume), "detached twice");
        assertEquals(2, served.server.disconnect(VolumeExports.exportsOf(volume), Duration.ofSeconds(10)), "connections disconnected");

        assertThrows(IOException.class, () -> origin.read(0, LEN), "vol's client is disconnected");
        assertThrows(IOException.class, () -> snap.read(0, LEN), "vol@s1's client is disconnected");
        assertEquals(LEN, keep.read(0, LEN).length, "db's client is still served");
        assertEquals(List.of("db"), served.server.clients().stream().map(NbdServer.Client::export).toList(), "clients left");
        NbdHandshakeException e = assertThrows(NbdHandshakeException.class, () -> NbdClient.connect(served.uri("vol")),
            "attaching to the detached vol");
        assertEquals(REP_ERR_UNKNOWN, e.reply(), e.getMessage());
      }
    } finally {
      served.exports.detach(other);
      other.close();
    }
  }

  private void awaitClients(int n) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (served.server.clients().stream().filter(c -> !c.negotiating()).count() != n) {
      assertTrue(System.nanoTime() < deadline, "clients attached: " + served.server.clients());
      Thread.sleep(5);
    }
  }
}
