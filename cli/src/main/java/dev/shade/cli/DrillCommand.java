package dev.shade.cli;

import dev.shade.offhost.backup.Catalog;
import dev.shade.offhost.drill.DrillService;
import dev.shade.offhost.tape.TapeLibrary;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code shade drill}: the fire drill of a volume's newest backup. */
@Command(
    name = "drill",
    header = "Restore a volume's newest backup to scratch and prove it: fsck, mount, the database's own check.",
    description = {
      "Restores the newest backed-up snapshot of VOLUME (its name or uuid) from the library to a scratch image "
          + "(the full and its incrementals, every checksum checked), attaches it to a loop device (read-write, on "
          + "the scratch copy), runs fsck -n (e2fsck -fn for ext4), mounts it, puts back the writer metadata the "
          + "archive holds (PostgreSQL's backup_label), then runs each --writer's own check:",
      "  postgres[:PGDATA]  PostgreSQL started on the copy (private port, Unix socket in the scratch directory, "
          + "no TCP, archiving off), recovering from its backup_label; then pg_amcheck --all. PGDATA is relative "
          + "to the copy's root, or absolute as on the production host; without it, the backup_label's directory.",
      "  sqlite:DB_PATH     PRAGMA integrity_check on the database at DB_PATH (relative to the copy's root, or "
          + "absolute as on the production host).",
      "The copy is then unmounted, detached and deleted (also when a step failed; --keep keeps the image). The "
          + "drill, every step with its result and time (time to first byte, restore time, bytes restored, fsck's "
          + "and the databases' verdicts), is recorded in the catalog (shade catalog drills) and on tape: a tape "
          + "file shade-drill.json on the newest cartridge of the restored backup's pool that has room (a blank "
          + "one labelled into the pool when none has), so that shade catalog rebuild brings it back; when it "
          + "cannot go on tape, the drill says so on stderr (and in records.notWritten with --json) and its exit "
          + "code stays the drill's. Needs root. To run "
          + "drills on a schedule, see docs/backup.md (a systemd timer). A drill with a failed step exits with 1, "
          + "naming the step."
    },
    mixinStandardHelpOptions = true,
    footerHeading = "%nExamples:%n",
    footer = {
      "  shade drill db --library /srv/vtl --writer sqlite:app/app.db",
      "  shade drill db --device /dev/nst0 --writer sqlite:app/app.db",
      "  shade drill pg --library /srv/vtl --writer postgres:pgdata --count orders --json",
      "  shade drill 4f0c... --library /srv/vtl --scratch /var/tmp/drills --keep"
    })
final class DrillCommand extends ShadeCommand {
  @Parameters(index = "0", paramLabel = "VOLUME", description = "The volume: its name or uuid.")
  String volume;

  @Option(names = "--library", paramLabel = "LIB", description = "The virtual tape library's directory (or --device).")
  Path library;

  @Mixin DeviceOption deviceOption;

  @Mixin CatalogOption catalogOption;

  @Option(names = "--writer", paramLabel = "SPEC",
      description = "A database to check on the copy: postgres[:PGDATA] or sqlite:DB_PATH (repeatable).")
  List<String> writers;

  @Option(names = "--count", paramLabel = "[DATABASE.]TABLE",
      description = "Count the rows of this table in each database checked (repeatable; PostgreSQL's database "
          + "defaults to postgres).")
  List<String> counts;

  @Option(names = "--scratch", paramLabel = "DIR", description = "Where the scratch copy goes (default: the "
      + "temporary directory, ${sys:java.io.tmpdir}); it needs room for the volume's data.")
  Path scratch;

  @Option(names = "--keep", description = "Keep the scratch image (unmounted and detached) after the drill.")
  boolean keep;

  @Option(names = "--json", description = "Print the drill as one JSON object, as shade catalog drills --json does "
      + "(id, volume, volumeUuid, snapshot, snapshotId, jobChain, started, ended, outcome, failedStep, error, "
      + "firstByteSeconds, restoreSeconds, bytesRestored, fsck, databaseCheck, steps: [{name, outcome, seconds, "
      + "detail}]), with records: {written: [{cartridge, fileNumber}], notWritten: [text]}, where its record went "
      + "on tape.")
  boolean json;

  @Override
  public Integer call() throws Exception {
    deviceOption.requireOne(library, "--library", this);
    DrillService.Request request;
    try {
      request = new DrillService.Request(volume, writers == null ? List.of() : writers,
          counts == null ? List.of() : counts,
          scratch != null ? scratch : Path.of(System.getProperty("java.io.tmpdir")), keep);
    } catch (IllegalArgumentException e) {
      throw usage(e.getMessage());
    }
    DrillService.Outcome outcome;
    try (TapeLibrary lib = deviceOption.open(library, this);
        Catalog catalog = Catalog.open(deviceOption.catalog(library, catalogOption));
        ProgressLine progress = progress("restore")) {
      outcome = DrillService.run(lib, catalog, request, progress::update, s -> {
        if (!json) {
          progress.close();
          out().println(stepLine(s));
          out().flush();
        }
      }, n -> {
        if (!json) {
          progress.close();
          err().println("shade drill: " + n);
          err().flush();
        }
      });
    }
    Catalog.DrillRecord d = outcome.drill();
    for (String n : outcome.records().notWritten()) {
      err().println("shade drill: warning: " + n);
    }
    err().flush();
    if (json) {
      printJson(CatalogCommand.drillJson(d).set("records", CatalogCommand.tapeRecordsJson(outcome.records())));
    } else {
      out().printf(Locale.ROOT, "Drill %d of %s: %s%s.%n", d.id(), d.snapshot() == null ? d.volume()
              : d.volume() + "@" + d.snapshot() + " (id " + d.snapshotId() + ")",
          Catalog.OK.equals(d.outcome()) ? "passed" : "FAILED at step " + d.failedStep(),
          d.restoreSeconds() < 0 ? "" : String.format(Locale.ROOT, "; %s restored in %s, first byte after %s",
              Sizes.format(d.bytesRestored()), ProgressLine.duration(d.restoreSeconds()),
              ProgressLine.duration(Math.max(0, d.firstByteSeconds()))));
      out().flush();
    }
    if (!Catalog.OK.equals(d.outcome())) {
      err().println("shade drill: the drill of " + d.volume() + " failed at step " + d.error());
      err().flush();
      return ExitCodes.FAILURE;
    }
    return ExitCodes.OK;
  }

  /** One step as a line. */
  static String stepLine(Catalog.DrillStep s) {
    return String.format(Locale.ROOT, "  %-24s %-7s %8s  %s", s.name(), s.outcome(), ProgressLine.duration(s.seconds()),
        s.detail() == null ? "" : s.detail());
  }
}
