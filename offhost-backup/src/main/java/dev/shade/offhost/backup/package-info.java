/**
 * Image backups to tape: {@link dev.shade.offhost.backup.BackupService} pulls a snapshot from a
 * {@link dev.shade.offhost.backup.SnapshotSource} (the agent's NBD export,
 * {@link dev.shade.offhost.backup.NbdSnapshotSource}), writes it as one PAX tar archive
 * ({@link dev.shade.offhost.backup.ImageArchiveWriter}, format in docs/tape-format.md), in
 * {@link dev.shade.offhost.backup.PieceEntry pieces} of one tape file each when it spans
 * cartridges, records it in the library's {@link dev.shade.offhost.backup.Catalog} and on tape
 * ({@link dev.shade.offhost.backup.JobRecordFile}, from which
 * {@link dev.shade.offhost.backup.CatalogRebuild} recreates a lost catalog), and restores a
 * snapshot from its full and incremental archives ({@link dev.shade.offhost.backup.RestoreService})
 * into a {@link dev.shade.offhost.backup.RestoreSink} (a sparse file, or a writable NBD export),
 * and reads archives back to check every checksum ({@link dev.shade.offhost.backup.VerifyService}).
 * The records of verifications and drills go on tape too ({@link dev.shade.offhost.backup.TapeRecords},
 * {@link dev.shade.offhost.backup.VerifyRecordFile}, {@link dev.shade.offhost.backup.DrillRecordFile}).
 * A job whose process died is found and marked failed by
 * {@link dev.shade.offhost.backup.InterruptedJobs}, from the process each job records
 * ({@link dev.shade.offhost.backup.JobOwner}).
 */
package dev.shade.offhost.backup;
