/**
 * Writers: what the requestor freezes and thaws around a snapshot (filesystems, PostgreSQL,
 * SQLite, hook directories), their specs ({@code fs:MOUNTPOINT}, {@code postgres:CONNINFO},
 * {@code sqlite:DBFILE}, {@code exec:DIR}) and the metadata they return for a snapshot.
 *
 * <p>Public: the contract {@link dev.shade.requestor.writer.Writer}, its
 * {@link dev.shade.requestor.writer.WriterMetadata}, and
 * {@link dev.shade.requestor.writer.Writers#parse}, which makes a writer from its spec. The
 * writers themselves are package-private: {@code FsWriter}, {@code SqliteWriter},
 * {@code PostgresWriter}, {@code ExecWriter}; their parts {@code MountTable}
 * ({@code /proc/self/mountinfo}), {@code ConnInfo} (libpq connection strings to JDBC),
 * {@code PgCtl} (stop and start a server with pg_ctl) and {@code ExternalCommand} (mount,
 * pg_ctl, pg_archivecleanup with a time limit).
 * docs/writers.md says what each writer does in each phase.
 *
 * <p>Locks: only {@code SqliteWriter.lock} (a ReentrantLock guarding its two connections; taken
 * by every phase, tried but never waited for by {@code abort}). {@code PostgresWriter} guards
 * its session with its own monitor. No writer takes another's lock.
 */
package dev.shade.requestor.writer;
