/**
 * The backup server side: pulls snapshots over NBD, writes PAX tar archives to tape, keeps the
 * catalog, restores and verifies.
 */
package dev.shade.offhost;
