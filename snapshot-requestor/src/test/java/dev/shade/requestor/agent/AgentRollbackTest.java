package dev.shade.requestor.agent;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.nbd.client.NbdClient;
import dev.shade.provider.Volume;
import dev.shade.provider.VolumeConfig;
import dev.shade.requestor.control.ControlClient;
import dev.shade.requestor.control.ControlException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** volume-rollback on a running agent with a kernel-like NBD client writing to the origin. */
class AgentRollbackTest {
  private static final int SIZE = 1 << 20;
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  @Test
  void rollback_whileAWritableNbdClientIsAttached_refusesUntilAskedToDisconnectIt() throws Exception {
    Path dir = tmp.resolve("db");
    byte[] atS1 = new byte[SIZE];
    Arrays.fill(atS1, (byte) 1);
    try (Volume v = Volume.create(dir, VolumeConfig.of(SIZE).withBlockSize(4096).withDiffMax(4L * SIZE))) {
      v.write(0, ByteBuffer.wrap(atS1));
      v.createSnapshot("s1");
    }
    Path nbdSock = tmp.resolve("nbd.sock");
    AgentConfig config = new AgentConfig(tmp.resolve("control.sock"), List.of(dir),
        new AgentConfig.Nbd(null, nbdSock, null, null, null, false, 16, Duration.ofMinutes(5)));
    try (Agent agent = Agent.start(config);
        ControlClient control = ControlClient.connect(agent.controlSocket(), Duration.ofSeconds(5), false);
        NbdClient nbd = NbdClient.connect("nbd+unix:///db?socket=" + nbdSock)) {
      byte[] later = new byte[8192];
      Arrays.fill(later, (byte) 2);
      nbd.write(0, later);
      nbd.flush();

      ObjectNode args = JSON.createObjectNode().put("volume", "db").put("snapshot", "s1");
      ControlException refused = assertThrows(ControlException.class, () -> control.execute("volume-rollback", args));
      assertEquals(ControlException.IN_USE, refused.errorClass());
      assertTrue(refused.getMessage().contains("open for writing") && refused.getMessage().contains("disconnect"),
          refused.getMessage());
      assertArrayEquals(later, nbd.read(0, later.length), "nothing changed");

      args.put("disconnectClients", true);
      JsonNode report = control.execute("volume-rollback", args);
      assertEquals("ok", report.get("outcome").asText(), report::toString);
      String before = report.get("beforeSnapshot").get("name").asText();
      assertTrue(before.startsWith("before-rollback-"), before);
      assertThrows(IOException.class, () -> nbd.read(0, 4096), "the client was disconnected");

      try (NbdClient again = NbdClient.connect("nbd+unix:///db?socket=" + nbdSock)) {
        assertArrayEquals(Arrays.copyOf(atS1, 8192), again.read(0, 8192), "rolled back");
      }
      JsonNode undo = control.execute("volume-rollback", JSON.createObjectNode().put("volume", "db").put("snapshot", before));
      assertEquals("ok", undo.get("outcome").asText());
      try (NbdClient again = NbdClient.connect("nbd+unix:///db?socket=" + nbdSock)) {
        assertArrayEquals(later, again.read(0, 8192), "the rollback undone");
      }
    }
  }
}
