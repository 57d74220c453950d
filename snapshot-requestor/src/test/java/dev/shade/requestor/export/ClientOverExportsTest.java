package dev.shade.requestor.export;

import static dev.shade.requestor.export.Served.readAll;
import static dev.shade.requestor.export.Served.write;
import static dev.shade.testing.Bytes.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.nbd.client.ExportCopier;
import dev.shade.nbd.client.Extent;
import dev.shade.nbd.client.NbdClient;
import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.nbd.client.NbdUri;
import dev.shade.nbd.protocol.Nbd;
import dev.shade.nbd.server.NbdServer;
import dev.shade.provider.BlockSource;
import dev.shade.provider.Progress;
import dev.shade.provider.Range;
import dev.shade.provider.SnapshotInfo;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.requestor.ops.VolumeCommands;
import dev.shade.testing.Host;
import dev.shade.testing.nbd.TestPki;
import dev.shade.testing.nbd.Uris;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * shade's own NBD client against shade's own server: {@link NbdClient} and {@link ExportCopier}
 * on {@link VolumeExports} served by {@link NbdServer}, over a plain Unix socket and over TLS
 * with a client certificate. Snapshots read byte for byte, {@code base:allocation} of a sparse
 * volume, {@code shade:changed:} extents equal to {@link Volume#changedRanges}, and a copy equal
 * to what {@code shade snapshot export} writes.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ClientOverExportsTest {
  private static final long MIB = 1 << 20;
  private static final long SIZE = 24 * MIB;

  /** How the client reaches the server. */
  enum Transport {
    /** {@code nbd+unix://}: the agent's local socket. */
    UNIX,
    /** {@code nbds://} with a client certificate, as the backup server connects. */
    TLS_CLIENT_CERTIFICATE
  }

  @TempDir static Path pkiDir;
  /** Certificates for the TLS transport, made once. */
  private static TestPki pki;

  @TempDir Path dir;
  private Volume volume;
  /** The volume served, once a test has started the server. */
  private Served served;
  /** The URI of export "" on the running server; {@link #client} puts the export name in. */
  private String baseUri;
  /** s1: data at 0 and 2 MiB; s2: later writes at 2 MiB + 64 KiB, 5 MiB and 20 MiB. */
  private SnapshotInfo s1;
  private SnapshotInfo s2;

  @BeforeAll
  static void makePki() throws Exception {
    pki = TestPki.create(pkiDir);
  }

  @BeforeEach
  void setUp() throws Exception {
    volume = Volume.create(dir.resolve("vol"), VolumeConfig.of(SIZE).withDiffMax(SIZE));
    write(volume, 0, random(1, 256 << 10));
    write(volume, 2 * MIB, random(2, (int) MIB));
    s1 = volume.createSnapshot("s1");
    write(volume, 2 * MIB + (64 << 10), random(3, 4096));
    write(volume, 5 * MIB, random(4, 300_000));
    write(volume, 20 * MIB, random(5, 1));
    s2 = volume.createSnapshot("s2");
    write(volume, 0, random(6, 4096)); // the origin moves on after s2
  }

  @AfterEach
  void tearDown() throws Exception {
    if (served != null) {
      served.close(); // the server, then the volume
    } else {
      volume.close();
    }
  }

  /** Serves the volume over {@code t}. */
  private void serve(Transport t) throws IOException {
    if (t == Transport.UNIX) {
      Path socket = dir.resolve("nbd.sock");
      served = Served.start(List.of(volume), new NbdServer.Config().socket(socket));
      baseUri = Uris.unix(socket, "", null);
    } else {
      served = Served.start(List.of(volume), new NbdServer.Config().tls(pki.serverCert, pki.serverKeyPkcs8, pki.caCert));
      baseUri = Uris.tls(served.address(), "", pki.clientDir);
    }
  }

  /** The settings of a client of {@code export} on the running server. */
  private NbdClientConfig.Builder client(String export) {
    return NbdClientConfig.builder(NbdUri.parse(baseUri).withExport(export));
  }

  @ParameterizedTest
  @EnumSource(Transport.class)
  void read_snapshotExport_byteForByte(Transport t) throws Exception {
    byte[] expected;
    try (BlockSource s = volume.openSnapshot("s1")) {
      expected = readAll(s);
    }
    serve(t);
    try (NbdClient c = NbdClient.connect(client("vol@s1").build())) {
      assertEquals(SIZE, c.size(), "size of vol@s1");
      assertTrue(c.info().readOnly(), "vol@s1 is read-only");
      byte[] got = new byte[(int) SIZE];
      for (int off = 0; off < SIZE; off += 4 * MIB) { // several requests, some split by the client
        byte[] part = c.read(off, (int) (4 * MIB));
        System.arraycopy(part, 0, got, off, part.length);
      }
      assertEquals(-1, Served.firstDifference(expected, got), t + ": first offset where vol@s1 differs from s1");
      long at = 2 * MIB + 100;
      assertArrayEquals(Arrays.copyOfRange(expected, (int) at, (int) at + 777), c.read(at, 777), t + ": an unaligned read");
    }
  }

  @ParameterizedTest
  @EnumSource(Transport.class)
  void baseAllocation_sparseVolume_holesAndData(Transport t) throws Exception {
    serve(t);
    for (String export : List.of("vol", "vol@s2")) {
      String snapshot = export.equals("vol") ? null : "s2";
      try (NbdClient c = NbdClient.connect(client(export).metaContexts(Nbd.CONTEXT_ALLOCATION).build())) {
        List<Extent> got = c.extents(Nbd.CONTEXT_ALLOCATION, 0, SIZE);
        List<Extent> want = new ArrayList<>();
        for (dev.shade.provider.Extent x : volume.allocation(snapshot, 0, SIZE)) {
          want.add(new Extent(x.offset(), x.length(), x.zero() ? Nbd.STATE_HOLE | Nbd.STATE_ZERO : 0));
        }
        assertEquals(merged(want), got, t + ": base:allocation of " + export);
        assertEquals(0, flagsAt(got, 5 * MIB), t + ": " + export + " has data at 5 MiB");
        assertEquals(Nbd.STATE_HOLE | Nbd.STATE_ZERO, flagsAt(got, 12 * MIB), t + ": " + export + " is a hole at 12 MiB, never written");
        assertEquals(0, flagsAt(got, 20 * MIB), t + ": " + export + " has data at 20 MiB");
      }
    }
  }

  @ParameterizedTest
  @EnumSource(Transport.class)
  void changedContexts_byNameAndById_matchChangedRanges(Transport t) throws Exception {
    String byName = "shade:changed:s1";
    String byId = "shade:changed:id=" + s1.id();
    serve(t);
    for (String export : List.of("vol@s2", "vol")) {
      String to = export.equals("vol") ? null : "s2";
      List<Range> want = volume.changedRanges("s1", to);
      assertTrue(!want.isEmpty(), "blocks changed since s1");
      try (NbdClient c = NbdClient.connect(client(export).metaContexts(byName, byId).build())) {
        assertEquals(Set.of(byName, byId), Set.copyOf(c.metaContexts()), "contexts of " + export);
        assertEquals(want, changed(c.extents(byName, 0, SIZE)), t + ": " + byName + " of " + export);
        assertEquals(want, changed(c.extents(byId, 0, SIZE)), t + ": " + byId + " of " + export);
        long lo = 2 * MIB + 1000; // a window whose ends are not block-aligned
        assertEquals(volume.changedRanges("s1", to, lo, 4 * MIB), changed(c.extents(byId, lo, 4 * MIB)),
            t + ": " + byId + " of " + export + " in [" + lo + ", +4 MiB)");
      }
    }
  }

  @ParameterizedTest
  @EnumSource(Transport.class)
  void exportCopier_snapshot_sparseFileEqualToSnapshotExport(Transport t) throws Exception {
    Path copy = dir.resolve("copy.img");
    serve(t);
    ExportCopier.Result r = ExportCopier.builder(client("vol@id=" + s2.id()).build()).connections(2).build().copyTo(copy);
    assertEquals(SIZE, r.bytesTotal(), "bytes covered");
    assertTrue(r.bytesSkipped() > SIZE / 2, "zero extents skipped: " + r);

    Path exported = dir.resolve("exported.img");
    ObjectNode args = new ObjectMapper().createObjectNode().put("volume", "vol").put("snapshot", "s2").put("file", exported.toString());
    VolumeCommands.execute(VolumeCommands.SNAPSHOT_EXPORT, args, ref -> volume, Progress.NONE); // what `shade snapshot export` runs
    assertEquals(SIZE, Files.size(copy), "size of the copy");
    assertEquals(-1, Files.mismatch(exported, copy), t + ": first offset where the copy differs from shade snapshot export");
    long allocated = Host.allocatedBytes(copy);
    assertTrue(allocated < SIZE / 2, t + ": the copy is sparse: " + allocated + " of " + SIZE + " bytes allocated");
  }

  /** The base:allocation flags of the extent holding {@code offset}. */
  private static int flagsAt(List<Extent> extents, long offset) {
    for (Extent e : extents) {
      if (e.offset() <= offset && offset < e.end()) {
        return e.flags();
      }
    }
    throw new AssertionError("no extent holds " + offset + ": " + extents);
  }

  /** {@code extents} with adjacent runs of the same flags joined, as {@link NbdClient#extents} gives them. */
  private static List<Extent> merged(List<Extent> extents) {
    List<Extent> out = new ArrayList<>();
    for (Extent e : extents) {
      Extent last = out.isEmpty() ? null : out.get(out.size() - 1);
      if (last != null && last.flags() == e.flags() && last.end() == e.offset()) {
        out.set(out.size() - 1, new Extent(last.offset(), last.length() + e.length(), e.flags()));
      } else {
        out.add(e);
      }
    }
    return out;
  }

  /** The changed runs (flag 1) of {@code shade:changed:} extents as provider ranges. */
  private static List<Range> changed(List<Extent> extents) {
    List<Range> out = new ArrayList<>();
    for (Extent e : merged(extents)) {
      if ((e.flags() & 1) != 0) {
        out.add(new Range(e.offset(), e.length()));
      }
    }
    return out;
  }
}
