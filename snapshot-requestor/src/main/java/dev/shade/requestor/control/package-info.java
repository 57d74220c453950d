/**
 * The agent's control socket: newline-delimited JSON messages over a Unix socket in the shape of
 * QEMU's QMP (greeting, {@code capabilities}, {@code execute}/{@code return}/{@code error},
 * asynchronous events), a server that survives bad clients and a client for the command line.
 * docs/agent.md describes the protocol.
 */
package dev.shade.requestor.control;
