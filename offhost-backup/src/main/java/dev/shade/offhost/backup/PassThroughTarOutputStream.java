package dev.shade.offhost.backup;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.utils.FixedLengthBlockOutputStream;

/**
 * A {@link TarArchiveOutputStream} whose large writes reach the stream below as they come (a
 * 64 KiB chunk in one call) instead of 512 bytes at a time through Commons Compress's block
 * buffer. The bytes of the archive are the same.
 *
 * <p>Not thread-safe, as its superclass.
 */
final class PassThroughTarOutputStream extends TarArchiveOutputStream {
  /*
   * TarArchiveOutputStream (1.28) writes through a FixedLengthBlockOutputStream of 512-byte
   * blocks: every chunk's bytes were copied into that block buffer and handed down 512 bytes a
   * call through two more streams, 128 calls per 64 KiB chunk, about two million per GiB,
   * before the tape stream copied them again into its records. Here the inherited
   * FilterOutputStream.out is replaced by a block stream that passes the whole 512-byte
   * records of a write straight down whenever its block buffer is empty (and buffers only the
   * tail of a member that is not a multiple of 512, which closeArchiveEntry pads through
   * flushBlock, as before). The superclass needs its out to be a FixedLengthBlockOutputStream
   * (closeArchiveEntry casts it), hence the subclass below.
   */
  /** The block stream in place of the superclass's; counts what reaches the stream below. */
  private final Blocks blocks;

  PassThroughTarOutputStream(OutputStream os, int blockSize) {
    super(os, blockSize, "UTF-8");
    this.blocks = new Blocks(os);
    this.out = blocks;
  }

  @Override
  public long getBytesWritten() {
    return blocks.written;
  }

  @Override
  @Deprecated
  public int getCount() {
    return (int) blocks.written;
  }

  /** 512-byte blocks, passing whole blocks of a write through while none is partly buffered. */
  private static final class Blocks extends FixedLengthBlockOutputStream {
    /** The tar record size. */
    private static final int RECORD = 512;
    /** Where the blocks go. */
    private final OutputStream target;
    /** Bytes in the superclass's block buffer (0..511). */
    private int buffered;
    /** Bytes written to {@link #target} so far. */
    long written;

    Blocks(OutputStream target) {
      this(new Counting[1], target);
    }

    private Blocks(Counting[] holder, OutputStream target) {
      super(holder[0] = new Counting(target), RECORD);
      this.target = holder[0];
      holder[0].owner = this;
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      if (buffered == 0 && len >= RECORD) {
        int n = len & -RECORD; // whole records, straight down
        target.write(b, off, n);
        off += n;
        len -= n;
      }
      if (len > 0) {
        super.write(b, off, len);
        buffered = (buffered + len) % RECORD;
      }
    }

    @Override
    public void write(int b) throws IOException {
      super.write(b);
      buffered = (buffered + 1) % RECORD;
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
      int n = super.write(src);
      buffered = (int) ((buffered + (long) n) % RECORD);
      return n;
    }

    @Override
    public void flushBlock() throws IOException {
      super.flushBlock();
      buffered = 0;
    }
  }

  /** Passes bytes to the stream below and counts them for {@link Blocks#written}. */
  private static final class Counting extends OutputStream {
    private final OutputStream os;
    /** The block stream whose count this keeps; set right after construction. */
    Blocks owner;

    Counting(OutputStream os) {
      this.os = os;
    }

    @Override
    public void write(int b) throws IOException {
      os.write(b);
      owner.written++;
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      os.write(b, off, len);
      owner.written += len;
    }

    @Override
    public void flush() throws IOException {
      os.flush();
    }

    @Override
    public void close() throws IOException {
      os.close();
    }
  }
}
