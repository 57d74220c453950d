package dev.shade.nbd.client;

import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/** One request in flight: what was asked, and the reply assembled from its chunks. */
final class Request {
  final long handle;
  final int command;
  final long offset;
  final long length;
  /** Where a READ's data goes: a slice of the caller's buffer, {@code length} bytes from 0. */
  final ByteBuffer data;
  /** When it was sent, for the reply timeout. */
  final long sentNanos;
  /** Completed by the reader thread when the reply is complete (the fields below hold it), or failed. */
  final CompletableFuture<Void> done = new CompletableFuture<>();

  // the fields below are written by the reader thread only, and read after done completes

  /** Block status descriptors by context id. */
  Map<Integer, List<Extent>> extents;
  /** First error chunk's error, 0 when none. */
  int errno;
  /** Its message. */
  String message = "";
  /** Its offset (ERROR_OFFSET), else -1. */
  long errorOffset = -1;
  /** Bytes of a READ covered by data and hole chunks. */
  long covered;
  /** A protocol violation confined to this reply, null when none. */
  String violation;

  Request(long handle, int command, long offset, long length, ByteBuffer data) {
    this.handle = handle;
    this.command = command;
    this.offset = offset;
    this.length = length;
    this.data = data;
    this.sentNanos = System.nanoTime();
  }

  Map<Integer, List<Extent>> extents() {
    if (extents == null) {
      extents = new LinkedHashMap<>();
    }
    return extents;
  }
}
