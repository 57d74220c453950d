/**
 * Scheduled snapshots with retention: when each schedule of the agent's config runs
 * ({@link dev.shade.requestor.schedule.ScheduleSpec}), which snapshots it keeps
 * ({@link dev.shade.requestor.schedule.Retention}, Proxmox Backup Server's prune rules), and the
 * {@link dev.shade.requestor.schedule.Scheduler} that runs them through a
 * {@link dev.shade.requestor.schedule.SnapshotRunner} (docs/schedule.md).
 *
 * <p>Locks: each schedule's job guards its state with its own monitor and calls nothing while it
 * holds it; the runner is called without any lock of this package held, so the agent's own
 * locks (membership, then the volumes') are taken below none of ours.
 */
package dev.shade.requestor.schedule;
