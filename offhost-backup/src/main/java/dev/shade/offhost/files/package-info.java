/**
 * The {@code files} archive: a snapshot's filesystem tree as a PAX tar that GNU tar extracts
 * file by file ({@link FilesArchiveWriter}: in pieces over cartridges, large files in parts,
 * every regular file's SHA-256 in the manifest), read back and restored into a directory without
 * letting any member escape it, or verified without writing anything ({@link FilesExtractor}
 * over {@link TarReader}), and the read-only attachment of a snapshot on the backup server that
 * the tree is read from ({@link SnapshotAttachment}: nbdfuse, a read-only loop device, a
 * read-only mount). docs/tape-format.md describes the archive.
 */
package dev.shade.offhost.files;
