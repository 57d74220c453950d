/**
 * Writers: what the requestor freezes and thaws around a snapshot (filesystems, PostgreSQL,
 * SQLite, hook directories), their specs ({@code fs:MOUNTPOINT}, {@code postgres:CONNINFO},
 * {@code sqlite:DBFILE}, {@code exec:DIR}) and the metadata they return for a snapshot.
 */
package dev.shade.requestor.writer;
