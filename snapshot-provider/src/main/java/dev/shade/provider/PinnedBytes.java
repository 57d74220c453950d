package dev.shade.provider;

import java.nio.ByteBuffer;

/**
 * A range of a snapshot as read-only views of the volume's mapped files (origin, diff area) and
 * of zeros, that stay exactly the snapshot's bytes until {@link #release}: for a server that
 * hands the views to the kernel to send without copying them first.
 *
 * <p>While a range is pinned, a write to the origin that would change one of its blocks waits
 * (after copying the old contents out) until the release, and deleting a snapshot, reverting or
 * closing the volume waits for every release. So a holder must release soon, whatever happens to
 * the send (written, failed, dropped), and exactly once; and when such a change wants the bytes
 * (see {@link #whenWanted}), at once: by copying what it still needs of them first.
 *
 * <p>Thread-safety: the buffers may be read by any one thread; {@link #release} may be called
 * from any thread.
 */
public interface PinnedBytes {
  /**
   * The range's bytes in order, as read-only buffers whose remaining bytes add up to the length
   * asked for. Each call returns the same buffers; read them only before {@link #release}.
   */
  ByteBuffer[] buffers();

  /**
   * Registers what to call when a write, a delete, a revert or the volume's close waits for this
   * range's release: the holder should then copy what it has not sent yet and release. Called at
   * most once, from the waiting thread (or from this one, at once, when a change already waits),
   * under the provider's pins monitor: it must not block or take locks. A holder that never
   * registers one is waited for until it releases by itself.
   */
  void whenWanted(Runnable callback);

  /** Lets the blocks change again. Idempotent: calls after the first do nothing. */
  void release();
}
