/**
 * The agent: the one process on the production host that holds a set of volumes open, serves
 * them over NBD and carries out the commands of its control socket (docs/agent.md).
 *
 * <p>Locks, in the order they may be taken: {@code Agent.membership} (read by every command on
 * volumes, written by attach, detach and close), then the locks of {@link dev.shade.provider.Volume}
 * (its package's lock table), then the NBD server's and the control server's own, which never
 * call back into the agent while they hold them.
 */
package dev.shade.requestor.agent;
