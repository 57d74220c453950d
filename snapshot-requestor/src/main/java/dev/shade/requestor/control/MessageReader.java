package dev.shade.requestor.control;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.charset.StandardCharsets;

/**
 * Splits a byte stream into newline-ended messages of bounded length. One reader thread.
 */
final class MessageReader {
  /** Raised for a message longer than the limit; the stream cannot be resynchronised. */
  static final class TooLongException extends IOException {
    private static final long serialVersionUID = 1L;

    TooLongException(String message) {
      super(message);
    }
  }

  private final ReadableByteChannel in;
  private final int max;
  /** Bytes received and not yet returned; flipped for reading between calls. */
  private ByteBuffer buf = ByteBuffer.allocate(8192).flip();

  MessageReader(ReadableByteChannel in, int max) {
    this.in = in;
    this.max = max;
  }

  /**
   * The next message without its newline, or null at the end of the stream (a last message
   * without a newline is returned first).
   */
  String next() throws IOException {
    int searched = 0; // bytes from buf.position() already searched for a newline
    while (true) {
      for (int i = buf.position() + searched; i < buf.limit(); i++) {
        if (buf.get(i) == '\n') {
          int start = buf.position();
          String s = new String(buf.array(), start, i - start, StandardCharsets.UTF_8);
          buf.position(i + 1);
          return s;
        }
      }
      searched = buf.remaining();
      if (searched > max) {
        throw new TooLongException("message longer than " + max + " bytes");
      }
      buf.compact(); // unread bytes now start at 0; write mode
      if (!buf.hasRemaining()) {
        ByteBuffer bigger = ByteBuffer.allocate(Math.min(buf.capacity() * 2, max + 2));
        bigger.put(buf.flip());
        buf = bigger;
      }
      int n = in.read(buf);
      buf.flip();
      if (n < 0) {
        if (buf.hasRemaining()) {
          String s = new String(buf.array(), buf.position(), buf.remaining(), StandardCharsets.UTF_8);
          buf.position(buf.limit());
          return s;
        }
        return null;
      }
    }
  }
}
