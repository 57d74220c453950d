/**
 * The backup server's side of the agent's control API: a small client of its JSON-lines
 * protocol (over TLS with a client certificate across hosts, or the local Unix socket on one
 * host), the snapshot's writer metadata it fetches, and the backup-complete report it sends
 * once an archive is on tape and read back. No code of the production side is used.
 */
package dev.shade.offhost.agent;
