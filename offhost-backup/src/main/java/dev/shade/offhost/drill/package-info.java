/**
 * The fire drill of a backup ({@link dev.shade.offhost.drill.DrillService}): a restore from tape
 * to scratch, attached to a loop device, {@code fsck -n}, mounted, the writer metadata put back,
 * and the database's own check (PostgreSQL started on the copy from its backup_label, then
 * {@code pg_amcheck}; SQLite's {@code integrity_check}), recorded in the catalog with its
 * timings. The programs run through a small runner of this package's own, so the backup server
 * needs none of the production host's code.
 */
package dev.shade.offhost.drill;
