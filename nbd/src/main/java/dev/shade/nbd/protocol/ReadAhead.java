package dev.shade.nbd.protocol;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.ReadableByteChannel;

/**
 * A blocking channel read through a small read-ahead buffer, as both ends of an NBD connection
 * read it: one system call takes every small message waiting in the socket, while a read at
 * least as large as the buffer goes straight into the caller's buffer (no copy of payloads).
 *
 * <p>One reader thread. {@link #buffered()} tells how many bytes were read ahead and not yet
 * consumed: before STARTTLS they must be none (CVE-2011-0411).
 */
public final class ReadAhead {
  private final ReadableByteChannel ch;
  /** Bytes read from the channel and not yet handed out; in read mode. */
  private final ByteBuffer ahead;
  /** Names the peer in the end-of-stream message ("the client", "the server"). */
  private final String peer;

  /** Reads {@code ch} through a direct buffer of {@code size} bytes. */
  public ReadAhead(ReadableByteChannel ch, int size, String peer) {
    this.ch = ch;
    this.ahead = ByteBuffer.allocateDirect(size).flip();
    this.peer = peer;
  }

  /** Fills {@code dst}; an {@link EOFException} when the peer closes first. */
  public void readFully(ByteBuffer dst) throws IOException {
    while (dst.hasRemaining()) {
      if (ahead.hasRemaining()) {
        int n = Math.min(ahead.remaining(), dst.remaining());
        dst.put(dst.position(), ahead, ahead.position(), n);
        dst.position(dst.position() + n);
        ahead.position(ahead.position() + n);
      } else if (dst.remaining() >= ahead.capacity()) {
        if (ch.read(dst) < 0) {
          throw new EOFException(peer + " closed the connection");
        }
      } else {
        ahead.clear();
        int n = ch.read(ahead);
        ahead.flip();
        if (n < 0) {
          throw new EOFException(peer + " closed the connection");
        }
      }
    }
  }

  /** Bytes read ahead and not consumed yet. */
  public int buffered() {
    return ahead.remaining();
  }

  /** Writes all of {@code srcs} to {@code ch} with gathering writes. */
  public static void writeFully(GatheringByteChannel ch, ByteBuffer... srcs) throws IOException {
    long left = 0;
    for (ByteBuffer b : srcs) {
      left += b.remaining();
    }
    while (left > 0) {
      left -= ch.write(srcs);
    }
  }
}
