package dev.shade.nbd.client;

import static dev.shade.nbd.protocol.Nbd.*;
import static org.junit.jupiter.api.Assertions.*;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Against a scripted server that uses the corners of structured replies real servers rarely
 * show together: reads answered in several chunks, holes before data, replies out of order,
 * ERROR_OFFSET with a message, and a reply to a handle never sent.
 */
class ScriptedServerTest {
  /** Byte {@code i} of the export. */
  static byte at(long i) {
    return (byte) (i * 31 + 7);
  }

  /** Serves one client: GO only, structured replies, 1 MiB; reads in pairs answered last first. */
  private static Thread serve(ServerSocket ss, boolean bogusHandle, AtomicReference<Throwable> failure) {
    Thread t = new Thread(() -> {
      try (Socket s = ss.accept()) {
        DataInputStream in = new DataInputStream(s.getInputStream());
        DataOutputStream out = new DataOutputStream(s.getOutputStream());
        out.writeLong(NBDMAGIC);
        out.writeLong(IHAVEOPT);
        out.writeShort(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
        out.flush();
        in.readInt();
        while (true) {
          in.readLong();
          int opt = in.readInt();
          byte[] data = new byte[in.readInt()];
          in.readFully(data);
          if (opt == OPT_STRUCTURED_REPLY) {
            optReply(out, opt, REP_ACK, new byte[0]);
          } else if (opt == OPT_GO) {
            optReply(out, opt, REP_INFO, ByteBuffer.allocate(12).putShort((short) INFO_EXPORT).putLong(1 << 20)
                .putShort((short) (FLAG_HAS_FLAGS | FLAG_READ_ONLY)).array());
            optReply(out, opt, REP_INFO, ByteBuffer.allocate(2 + 7).putShort((short) INFO_DESCRIPTION).put("scripts".getBytes()).array());
            optReply(out, opt, REP_ACK, new byte[0]);
            break;
          } else {
            optReply(out, opt, REP_ERR_UNSUP, new byte[0]);
          }
        }
        long[][] pair = new long[2][];
        int n = 0;
        while (true) {
          if (in.readInt() != REQUEST_MAGIC) {
            throw new IOException("bad request magic");
          }
          in.readShort();
          int type = in.readShort();
          long handle = in.readLong();
          long offset = in.readLong();
          int length = in.readInt();
          if (type == CMD_DISC) {
            return;
          }
          pair[n++] = new long[] {handle, offset, length};
          if (n == 2) {
            answer(out, pair[1], bogusHandle);
            answer(out, pair[0], false);
            n = 0;
          }
        }
      } catch (Throwable e) {
        failure.set(e);
      }
    });
    t.setDaemon(true);
    t.start();
    return t;
  }

  private static void optReply(DataOutputStream out, int opt, int type, byte[] data) throws IOException {
    out.writeLong(OPTION_REPLY_MAGIC);
    out.writeInt(opt);
    out.writeInt(type);
    out.writeInt(data.length);
    out.write(data);
    out.flush();
  }

  private static void chunk(DataOutputStream out, int flags, int type, long handle, byte[] payload) throws IOException {
    out.writeInt(STRUCTURED_REPLY_MAGIC);
    out.writeShort(flags);
    out.writeShort(type);
    out.writeLong(handle);
    out.writeInt(payload.length);
    out.write(payload);
  }

  /** Second half as a hole (if its bytes are zero in the script: offsets >= 512 KiB), first half as data, then NONE+DONE. */
  private static void answer(DataOutputStream out, long[] req, boolean bogusHandle) throws IOException {
    long handle = bogusHandle ? req[0] + 1000 : req[0];
    long offset = req[1];
    int length = (int) req[2];
    if (offset >= 768 << 10) {
      byte[] msg = "bad sector".getBytes();
      ByteBuffer e = ByteBuffer.allocate(4 + 2 + msg.length + 8).putInt(EIO).putShort((short) msg.length).put(msg).putLong(offset + 100);
      chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_ERROR_OFFSET, handle, e.array());
      out.flush();
      return;
    }
    int half = length / 2;
    chunk(out, 0, REPLY_TYPE_OFFSET_HOLE, handle, ByteBuffer.allocate(12).putLong(offset + half).putInt(length - half).array());
    ByteBuffer d = ByteBuffer.allocate(8 + half).putLong(offset);
    for (int i = 0; i < half; i++) {
      d.put(at(offset + i));
    }
    chunk(out, 0, REPLY_TYPE_OFFSET_DATA, handle, d.array());
    chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_NONE, handle, new byte[0]);
    out.flush();
  }

  @Test
  void chunkedOutOfOrderReplies_assembleCorrectly() throws Exception {
    AtomicReference<Throwable> failure = new AtomicReference<>();
    try (ServerSocket ss = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      Thread t = serve(ss, false, failure);
      try (NbdClient c = NbdClient.connect("nbd://127.0.0.1:" + ss.getLocalPort() + "/x")) {
        assertEquals("scripts", c.info().description());
        ByteBuffer a = ByteBuffer.allocate(4096);
        ByteBuffer b = ByteBuffer.allocateDirect(1000);
        for (int i = 0; i < b.capacity(); i++) {
          b.put(i, (byte) 0x77); // the hole must overwrite this
        }
        CompletableFuture<Void> fa = c.readAsync(10_000, a);
        CompletableFuture<Void> fb = c.readAsync(50_001, b);
        CompletableFuture.allOf(fa, fb).get();
        for (int i = 0; i < 4096; i++) {
          assertEquals(i < 2048 ? at(10_000 + i) : 0, a.get(i), "a[" + i + "]");
        }
        for (int i = 0; i < 1000; i++) {
          assertEquals(i < 500 ? at(50_001 + i) : 0, b.get(i), "b[" + i + "]");
        }
        // an error with an offset and a message, paired with a good read
        CompletableFuture<Void> bad = c.readAsync(800 << 10, ByteBuffer.allocate(512));
        CompletableFuture<Void> good = c.readAsync(0, ByteBuffer.allocate(512));
        good.get();
        java.util.concurrent.ExecutionException e = assertThrows(java.util.concurrent.ExecutionException.class, bad::get);
        NbdErrorException err = assertInstanceOf(NbdErrorException.class, e.getCause());
        assertEquals("EIO", err.errnoName());
        assertEquals((800 << 10) + 100, err.errorOffset());
        assertEquals("bad sector", err.serverMessage());
        assertTrue(err.getMessage().contains("bad sector") && err.getMessage().contains("offset=" + (800 << 10)), err.getMessage());
      }
      t.join(5000);
      assertNull(failure.get());
    }
  }

  @Test
  void replyToUnknownHandle_killsTheConnection() throws Exception {
    AtomicReference<Throwable> failure = new AtomicReference<>();
    try (ServerSocket ss = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      serve(ss, true, failure);
      try (NbdClient c = NbdClient.connect("nbd://127.0.0.1:" + ss.getLocalPort() + "/x")) {
        CompletableFuture<Void> f1 = c.readAsync(0, ByteBuffer.allocate(16));
        CompletableFuture<Void> f2 = c.readAsync(16, ByteBuffer.allocate(16));
        java.util.concurrent.ExecutionException e = assertThrows(java.util.concurrent.ExecutionException.class, f1::get);
        assertTrue(e.getCause().getMessage().contains("unknown handle"), e.getCause().getMessage());
        assertThrows(java.util.concurrent.ExecutionException.class, f2::get);
        assertInstanceOf(NbdClosedException.class, assertThrows(NbdException.class, () -> c.read(0, 1)));
      }
    }
  }
}
