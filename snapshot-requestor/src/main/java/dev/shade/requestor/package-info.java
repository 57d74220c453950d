/**
 * The production host's side of shade above the provider: the agent that holds the volumes and
 * everything that talks to it.
 *
 * <ul>
 *   <li>{@code dev.shade.requestor.agent}: the agent process's core ({@code Agent}: open,
 *       serve, attach, detach, stop), its config file and the marker by which commands find it;
 *   <li>{@code dev.shade.requestor.control}: the control socket, JSON messages in QMP's shape,
 *       its server and client;
 *   <li>{@code dev.shade.requestor.ops}: the volume and snapshot commands, one implementation
 *       for a command that opens a volume itself and for the agent that holds it;
 *   <li>{@code dev.shade.requestor.export}: volumes as NBD exports for the {@code nbd} server;
 *   <li>{@code dev.shade.requestor.writer}: the writers (filesystem, PostgreSQL, SQLite, hooks)
 *       and their specs;
 *   <li>{@code dev.shade.requestor.lease}: the freeze lease, a guard process that runs the
 *       writers' freeze and thaw and ends them by itself;
 *   <li>{@code dev.shade.requestor.schedule}: snapshot schedules and retention.
 * </ul>
 *
 * <p>Consistent snapshots ({@code ops.ConsistentSnapshot}), backup-complete and rollback
 * ({@code ops.Rollback}) are volume commands like the others.
 */
package dev.shade.requestor;
