package dev.shade.nbd.client;

import static dev.shade.nbd.protocol.Nbd.*;
import static org.junit.jupiter.api.Assertions.*;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Against a minimal server of the kind that predates OPT_GO (it answers every option but
 * EXPORT_NAME with ERR_UNSUP, and only simple replies), and one that never answers.
 */
class OldServerTest {
  /** Serves one connection: 1 MiB of 0x42, read-only, EXPORT_NAME only. */
  private static Thread serveOld(ServerSocket ss, AtomicReference<Throwable> failure) {
    Thread t = new Thread(() -> {
      try (Socket s = ss.accept()) {
        DataInputStream in = new DataInputStream(s.getInputStream());
        DataOutputStream out = new DataOutputStream(s.getOutputStream());
        out.writeLong(NBDMAGIC);
        out.writeLong(IHAVEOPT);
        out.writeShort(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
        out.flush();
        int clientFlags = in.readInt();
        while (true) {
          assertEquals(IHAVEOPT, in.readLong());
          int opt = in.readInt();
          byte[] data = new byte[in.readInt()];
          in.readFully(data);
          if (opt == OPT_EXPORT_NAME) {
            assertEquals("old", new String(data));
            out.writeLong(1 << 20);
            out.writeShort(FLAG_HAS_FLAGS | FLAG_READ_ONLY);
            if ((clientFlags & FLAG_C_NO_ZEROES) == 0) {
              out.write(new byte[124]);
            }
            out.flush();
            break;
          }
          out.writeLong(OPTION_REPLY_MAGIC);
          out.writeInt(opt);
          out.writeInt(REP_ERR_UNSUP);
          out.writeInt(0);
          out.flush();
        }
        while (true) {
          assertEquals(REQUEST_MAGIC, in.readInt());
          in.readShort();
          int type = in.readShort();
          long handle = in.readLong();
          long offset = in.readLong();
          int length = in.readInt();
          if (type == CMD_DISC) {
            return;
          }
          out.writeInt(SIMPLE_REPLY_MAGIC);
          out.writeInt(type == CMD_READ && offset + length <= 1 << 20 ? 0 : EINVAL);
          out.writeLong(handle);
          if (type == CMD_READ && offset + length <= 1 << 20) {
            byte[] b = new byte[length];
            java.util.Arrays.fill(b, (byte) 0x42);
            out.write(b);
          }
          out.flush();
        }
      } catch (Throwable e) {
        failure.set(e);
      }
    });
    t.start();
    return t;
  }

  @Test
  void exportName_fallback_andSimpleReplies() throws Exception {
    AtomicReference<Throwable> failure = new AtomicReference<>();
    try (ServerSocket ss = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      Thread t = serveOld(ss, failure);
      try (NbdClient c = NbdClient.connect("nbd://127.0.0.1:" + ss.getLocalPort() + "/old")) {
        assertFalse(c.structuredReplies());
        assertEquals(1 << 20, c.size());
        assertTrue(c.info().readOnly());
        byte[] b = c.read(1000, 3000);
        for (byte x : b) {
          assertEquals(0x42, x);
        }
        assertEquals("EINVAL", assertThrows(NbdErrorException.class, () -> c.read(1 << 20, 1)).errnoName());
      }
      t.join(5000);
      assertNull(failure.get());
    }
  }

  @Test
  void silentServer_handshakeTimesOut() throws Exception {
    try (ServerSocket ss = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      NbdClientConfig cfg = NbdClientConfig.builder("nbd://127.0.0.1:" + ss.getLocalPort() + "/x")
          .handshakeTimeout(Duration.ofMillis(300)).build();
      long t0 = System.nanoTime();
      NbdTimeoutException e = assertThrows(NbdTimeoutException.class, () -> NbdClient.connect(cfg));
      assertTrue(System.nanoTime() - t0 < 3_000_000_000L);
      assertTrue(e.getMessage().contains("127.0.0.1"), e.getMessage());
    }
  }
}
