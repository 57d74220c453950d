/**
 * The copy-on-write block layer: {@link dev.shade.provider.Volume} is the public entry point,
 * {@link dev.shade.provider.SnapshotSet} takes snapshots of several volumes at one instant.
 *
 * <h2>Parts of a volume</h2>
 *
 * <p>{@code Volume} is a facade over package-private final classes with one job each:
 * {@code CowWriter} (origin reads, copy-on-write writes, write-behind, flush, making room),
 * {@code SnapshotChain} (the snapshots and their tables, lookups, snapshot views, changed
 * ranges, allocation, journal fold), {@code Reverter} (revert), {@code Recovery} (what open
 * does after a crash), {@code Locks} (the hold, the stripes, the closed state). Below them:
 * {@code Journal}, {@code Checkpoint}, {@code DiffArea}, {@code WriteBehind},
 * {@code Snapshot}, {@code BlockTable}.
 *
 * <h2>Locks</h2>
 *
 * <p>Every lock of the package. A thread may take a lock only when it holds none that comes
 * later in this table (it may skip rows). Nothing waits for the write-behind committer while
 * holding a stripe.
 *
 * <table>
 * <caption>Locks, in the order they may be taken</caption>
 * <tr><th>#</th><th>lock</th><th>guards</th><th>taken by</th></tr>
 * <tr><td>1</td><td>{@code PreparedSnapshotSet} monitor</td><td>the set's one-shot state</td>
 *     <td>commit, abort</td></tr>
 * <tr><td>2</td><td>{@code Locks.hold} (fair read-write), of several volumes at once in the
 *     order of their normalised directory paths</td>
 *     <td>read: an I/O call in flight (read, write, flush, snapshot read, changed ranges,
 *     allocation, plan revert); write: the snapshot list and ids ({@code SnapshotChain}),
 *     the snapshots' attributes, the journal generation (fold), the closed state</td>
 *     <td>every call; write-held by snapshot create (a set takes all its members, bounded by
 *     the hold timeout), delete, set attributes, revert, making room, reconcile, close; a
 *     revert that keeps the newer snapshots also read-takes it (reentrantly, under its write
 *     hold) for its copy-on-write writes</td></tr>
 * <tr><td>3</td><td>{@code WriteBehind.commitLock}</td><td>one batch of held blocks applied
 *     at a time</td><td>the committer thread (no hold), and drain (under the hold)</td></tr>
 * <tr><td>4</td><td>{@code Locks} stripes (1024 read-write locks, block b uses b mod 1024),
 *     several in ascending index order</td><td>a block's origin bytes against its copy and
 *     its held entry: no reader sees the origin between a copy and the overwrite</td>
 *     <td>write: writers (all the range's stripes) and the committer (one at a time); read:
 *     origin reads of held blocks and snapshot reads (one at a time)</td></tr>
 * <tr><td>5</td><td>{@code WriteBehind} monitor</td><td>appending a held block's record and
 *     adding its entry as one step against a batch being taken</td><td>writers, the
 *     committer</td></tr>
 * <tr><td>6</td><td>{@code Journal.syncLock}</td><td>the journal file: frames, end,
 *     generation, the sticky failure</td><td>the group-commit leader, reset</td></tr>
 * <tr><td>7</td><td>{@code Journal} monitor</td><td>records appended but not yet in a
 *     frame</td><td>append, the leader taking a batch</td></tr>
 * <tr><td>8</td><td>{@code DiffArea.formatLock}, then the {@code DiffArea} monitor</td>
 *     <td>formatting ahead; the slot allocator</td><td>writers, the formatter thread, delete
 *     (free)</td></tr>
 * <tr><td>9</td><td>{@code Snapshot} monitor (leaf)</td><td>one snapshot's table</td>
 *     <td>lookups, publishing a copy, merges; two at once only in a merge (the deleted
 *     snapshot's, then the next older one's), which runs under the exclusive hold;
 *     {@code SnapshotChain.info} calls into {@code WriteBehind} while holding one, which takes
 *     no lock there</td></tr>
 * <tr><td>10</td><td>{@code Locks} pins monitor (leaf)</td><td>the pins of zero-copy snapshot
 *     sends ({@code Volume.pinSnapshotBytes}): origin block ranges and diff-slot pins</td>
 *     <td>taken briefly to pin (under a stripe's read lock and the hold) and to unpin (by the
 *     sending thread, holding no lock of the package); waited on by writers about to change
 *     pinned origin blocks (holding the hold and their stripes: a pin is released without any
 *     of them, so the wait cannot deadlock) and by delete, revert and close (holding the hold
 *     exclusively: no new pin can be taken)</td></tr>
 * </table>
 *
 * <p>Pins are the one wait under a stripe that depends on something outside the volume: a
 * send to a client. A waiter marks the pins it waits for as wanted, which calls their holders'
 * callbacks ({@code PinnedBytes.whenWanted}, under the pins monitor; they copy what is left and
 * release, and take no lock of the package), so the wait is bounded by the holder, not by the
 * client (the NBD server copies between slices and cuts a client that does not take the slice
 * in flight within its pinned-send patience); a write over blocks that no send has pinned never
 * waits.
 */
package dev.shade.provider;
