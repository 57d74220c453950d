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
 *   <li>{@code dev.shade.requestor.export}: volumes as NBD exports for the {@code nbd} server.
 * </ul>
 *
 * <p>Coming here: writers (filesystem, PostgreSQL, SQLite, hooks), the freeze lease, snapshot
 * schedules with retention, and rollback of a live system, all run by the agent.
 */
package dev.shade.requestor;
