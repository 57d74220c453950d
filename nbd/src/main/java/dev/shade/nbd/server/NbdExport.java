package dev.shade.nbd.server;

import dev.shade.nbd.protocol.Extent;
import dev.shade.nbd.protocol.Nbd;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * One thing an NBD client can attach to: a fixed-size run of bytes that the server reads, and
 * writes unless it is read-only, on the client's behalf.
 *
 * <p>Every implementation must:
 *
 * <ul>
 *   <li>keep {@link #name()}, {@link #size()}, {@link #readOnly()} and {@link #description()}
 *       fixed for the life of the object;
 *   <li>be safe for concurrent calls from many threads: the server runs one client's requests
 *       on several workers at once, out of order, and several clients may share one backend.
 *       Requests that overlap in flight have no defined order (the protocol leaves that to the
 *       client);
 *   <li>fill all of a read's buffer or throw, and write all of a write's buffer or throw;
 *   <li>report failures by throwing: {@link NbdErrorException} to send a chosen NBD error (a full
 *       disk is {@code ENOSPC}, a backend gone away {@code ESHUTDOWN}); any other
 *       {@link IOException} or {@link RuntimeException} is answered with {@code EIO} and logged
 *       as a server-side failure.
 * </ul>
 *
 * <p>The server validates every request before calling in: ranges lie inside
 * {@code [0, size())}, lengths are positive, nothing that changes data reaches a read-only
 * export, and meta contexts passed to {@link #extents} were accepted by
 * {@link #offersMetaContext}. So an implementation need not check them again, though it may.
 *
 * <p>Lifetime: {@link ExportCatalog#find} hands out an export per use; the server calls
 * {@link #close()} exactly once on each when it is done with it (after the last reply of the
 * connection attached to it went out, or right away after answering an {@code NBD_OPT_INFO}).
 * Closing an export never closes the backend it shares with other exports.
 *
 * <p>Deliberately left out: export-side caching ({@code NBD_CMD_CACHE}), resizing, and fast
 * zeroing; the server does not offer them. The hints ({@link #cached}, {@link #residentView},
 * {@link #sendView}, {@link #cheapWrite}) have defaults that are always correct, only slower.
 */
public interface NbdExport extends Closeable {
  /**
   * The export's canonical name, as listed by {@code NBD_OPT_LIST} and sent as
   * {@code NBD_INFO_NAME}; a catalog may also find it under other names (aliases).
   */
  String name();

  /** Size in bytes. */
  long size();

  /** True when the client may not change data: writes, trims and zeroing get {@code EPERM}. */
  boolean readOnly();

  /**
   * What the export is, for {@code NBD_INFO_DESCRIPTION} and the {@code NBD_OPT_LIST} entry;
   * at most 4096 bytes of UTF-8. Empty when there is nothing to say.
   */
  default String description() {
    return "";
  }

  /** Reads {@code dst.remaining()} bytes starting at {@code offset} and advances {@code dst}. */
  void read(long offset, ByteBuffer dst) throws IOException;

  /**
   * Writes all of {@code src} at {@code offset} and advances {@code src}. With {@code fua}
   * (force unit access) the bytes must be durable before this returns; an implementation without
   * a cheaper way does the write, then {@link #flush()}. Never called on a read-only export.
   */
  default void write(long offset, ByteBuffer src, boolean fua) throws IOException {
    throw new NbdErrorException(Nbd.EPERM, "read-only export " + name());
  }

  /**
   * Makes every write that has returned before this call durable ({@code NBD_CMD_FLUSH}, fsync),
   * including writes made through other exports of the same backend: the server advertises
   * {@code NBD_FLAG_CAN_MULTI_CONN}.
   */
  default void flush() throws IOException {}

  /**
   * Tells the export that the range is no longer needed ({@code NBD_CMD_TRIM}). What it reads
   * afterwards is unspecified by the protocol; doing nothing is a valid implementation. With
   * {@code fua} the effect must be durable before this returns.
   */
  default void trim(long offset, long length, boolean fua) throws IOException {}

  /**
   * Makes the range read back as zeros ({@code NBD_CMD_WRITE_ZEROES}). With {@code mayTrim}
   * (the client did not set {@code NBD_CMD_FLAG_NO_HOLE}) the export may deallocate it instead
   * of writing zeros, as long as it then reads back as zeros. With {@code fua} the zeros must be
   * durable before this returns. The default writes zeros through {@link #write} in pieces of at
   * most 1 MiB.
   */
  default void writeZeroes(long offset, long length, boolean mayTrim, boolean fua) throws IOException {
    ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(length, 1 << 20));
    for (long done = 0; done < length; ) {
      int n = (int) Math.min(zeros.capacity(), length - done);
      zeros.clear().limit(n);
      write(offset + done, zeros, false);
      done += n;
    }
    if (fua) {
      flush();
    }
  }

  /**
   * The meta contexts this export offers that match {@code query}, for
   * {@code NBD_OPT_LIST_META_CONTEXT}. {@code query} is null when the client asked for every
   * context; a namespace ending in {@code ':'} (such as {@code "base:"}) asks for all of that
   * namespace; anything else is a context name, returned when {@link #offersMetaContext} would
   * accept it (the export decides which forms of name it accepts). The default offers
   * {@code base:allocation} only.
   */
  default List<String> metaContexts(String query) {
    return matching(List.of(Nbd.CONTEXT_ALLOCATION), query);
  }

  /**
   * Whether {@link #extents} answers for the context named exactly {@code name}, for
   * {@code NBD_OPT_SET_META_CONTEXT}. The default accepts {@code base:allocation} only.
   */
  default boolean offersMetaContext(String name) {
    return Nbd.CONTEXT_ALLOCATION.equals(name);
  }

  /**
   * The status of {@code [offset, offset + length)} in {@code context} (a name that
   * {@link #offersMetaContext} accepted), for {@code NBD_CMD_BLOCK_STATUS}: extents in order,
   * adjacent, the first starting at {@code offset}. They may stop short of the end of the range
   * (the client asks again for the rest) but must cover at least one byte; whatever runs past the
   * range is cut off by the server. The default, for {@code base:allocation}, says the whole
   * range is allocated data (flags 0), which the protocol allows for any export.
   */
  default List<Extent> extents(String context, long offset, long length) throws IOException {
    return List.of(new Extent(offset, length, 0));
  }

  /**
   * Hint: whether a read of the range would be served from memory, without waiting for a disk.
   * The server then reads on the connection's own thread instead of handing the request to a
   * worker. May be stale by the time the read runs. Default false.
   */
  default boolean cached(long offset, int length) {
    return false;
  }

  /**
   * Hint: a read-only view of the range's bytes as they are now in memory (the page cache of a
   * mapped file), or null. The server sends a view to a plain socket without copying it first;
   * it reads the view once, soon, and never writes to it. A view must stay readable until the
   * export is closed. Default null: the server reads into a buffer of its own.
   */
  default ByteBuffer residentView(long offset, int length) {
    return null;
  }

  /**
   * Hint: the range's bytes as read-only views of memory that stay exactly these bytes until
   * {@link SendView#release}, or null. The server sends the views to a plain socket without
   * copying them first and releases the view once the reply is written, or dropped because the
   * connection broke: exactly once, from any thread. An export that must keep writes from
   * changing what it showed (a snapshot whose blocks still live in the origin) holds them off
   * until the release, and tells the server through {@link SendView#whenWanted} when a write
   * waits: the server then copies what it has not sent yet and releases within one slice of its
   * socket write, and disconnects a client that does not take that slice within the pinned-send
   * patience ({@link NbdServer.Config#pinnedSendPatience}). So no client, however slow, holds
   * the export's writes for longer than that. Default: {@link #residentView}, which needs no
   * release.
   */
  default SendView sendView(long offset, int length) {
    ByteBuffer v = residentView(offset, length);
    return v == null ? null : SendView.of(v);
  }

  /** The bytes of one read as views to send without a copy, held until released; see {@link #sendView}. */
  interface SendView {
    /** The read's bytes in order; their remaining bytes add up to its length. Read only before release. */
    ByteBuffer[] buffers();

    /** Lets the export's bytes change again; idempotent. */
    void release();

    /**
     * Registers what the export calls when it needs the views' bytes to change before the
     * release (a write waits for them): the server then copies what it has not sent yet and
     * releases soon. Called at most once, from any thread, possibly at once from this call; it
     * must not block. Default: the views' bytes never need to change early.
     */
    default void whenWanted(Runnable callback) {}

    /** A view that holds nothing: releasing it does nothing. */
    static SendView of(ByteBuffer... buffers) {
      return new SendView() {
        @Override
        public ByteBuffer[] buffers() {
          return buffers;
        }

        @Override
        public void release() {}
      };
    }
  }

  /**
   * Hint: whether a write of the range returns at page-cache speed (no copy, no sync), so that the
   * server runs it on the connection's own thread. Default false.
   */
  default boolean cheapWrite(long offset, long length) {
    return false;
  }

  /** Releases what this export holds; never the backend shared with other exports. */
  @Override
  default void close() throws IOException {}

  /**
   * The names of {@code offered} that match {@code query} as {@link #metaContexts} describes: all
   * for null, a namespace's for a query ending in {@code ':'}, else the one equal to it.
   */
  static List<String> matching(List<String> offered, String query) {
    List<String> out = new ArrayList<>();
    for (String c : offered) {
      if (query == null || (query.endsWith(":") ? c.startsWith(query) : c.equals(query))) {
        out.add(c);
      }
    }
    return out;
  }
}
