/**
 * Image backups to tape: {@link dev.shade.offhost.backup.BackupService} pulls a snapshot from a
 * {@link dev.shade.offhost.backup.SnapshotSource} (the agent's NBD export,
 * {@link dev.shade.offhost.backup.NbdSnapshotSource}), writes it as one PAX tar archive per tape
 * file ({@link dev.shade.offhost.backup.ImageArchiveWriter}, format in docs/tape-format.md),
 * records it in the library's {@link dev.shade.offhost.backup.Catalog}, and restores a snapshot
 * from its full and incremental archives ({@link dev.shade.offhost.backup.RestoreService}), and
 * reads archives back to check every checksum ({@link dev.shade.offhost.backup.VerifyService}).
 */
package dev.shade.offhost.backup;
