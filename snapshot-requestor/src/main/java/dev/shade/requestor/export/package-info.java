/**
 * The agent's volumes as NBD exports: {@link dev.shade.requestor.export.VolumeExports}, the
 * catalog an {@link dev.shade.nbd.server.NbdServer} serves them from.
 */
package dev.shade.requestor.export;
