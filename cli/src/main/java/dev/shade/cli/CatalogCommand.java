package dev.shade.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.offhost.backup.Catalog;
import dev.shade.offhost.backup.CatalogLocation;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code shade catalog}: what a library's backup catalog records. */
@Command(
    name = "catalog",
    header = "Show the backup catalog of a tape library.",
    mixinStandardHelpOptions = true,
    subcommands = {CatalogCommand.ListJobs.class, CatalogCommand.Drills.class})
final class CatalogCommand extends CommandGroup {

  /** A job as one JSON object. */
  static ObjectNode jobJson(Catalog.JobRecord j) {
    ObjectNode o = ShadeCommand.JSON.createObjectNode().put("jobId", j.id()).put("volume", j.snapshot().volume())
        .put("volumeUuid", j.snapshot().volumeUuid()).put("snapshot", j.snapshot().snapshot())
        .put("snapshotId", j.snapshot().snapshotId()).put("size", j.snapshot().size()).put("level", j.level());
    if (j.baseSnapshotId() >= 0) {
      o.put("baseSnapshotId", j.baseSnapshotId()).put("baseJobId", j.baseJobId());
    } else {
      o.putNull("baseSnapshotId").putNull("baseJobId");
    }
    o.put("pool", j.pool()).put("chunkSize", j.chunkSize()).put("started", j.started().toString())
        .put("ended", j.ended() == null ? null : j.ended().toString()).put("outcome", j.outcome())
        .put("message", j.message()).put("bytes", j.bytes());
    if (j.archive() != null) {
      o.putObject("archive").put("cartridge", j.archive().cartridge()).put("fileNumber", j.archive().fileNumber())
          .put("bytes", j.archive().bytes()).put("manifestSha256", j.archive().manifestSha256());
    } else {
      o.putNull("archive");
    }
    return o;
  }

  /** A drill as one JSON object. */
  static ObjectNode drillJson(Catalog.DrillRecord d) {
    ObjectNode o = ShadeCommand.JSON.createObjectNode().put("id", d.id()).put("volume", d.volume())
        .put("volumeUuid", d.volumeUuid()).put("snapshot", d.snapshot());
    if (d.snapshotId() >= 0) {
      o.put("snapshotId", d.snapshotId());
    } else {
      o.putNull("snapshotId");
    }
    ArrayNode chain = o.putArray("jobChain");
    d.jobChain().forEach(chain::add);
    o.put("started", d.started().toString()).put("ended", d.ended().toString()).put("outcome", d.outcome())
        .put("failedStep", d.failedStep()).put("error", d.error());
    if (d.firstByteSeconds() >= 0) {
      o.put("firstByteSeconds", d.firstByteSeconds());
    } else {
      o.putNull("firstByteSeconds");
    }
    if (d.restoreSeconds() >= 0) {
      o.put("restoreSeconds", d.restoreSeconds());
    } else {
      o.putNull("restoreSeconds");
    }
    o.put("bytesRestored", d.bytesRestored()).put("fsck", d.fsck()).put("databaseCheck", d.databaseCheck());
    ArrayNode steps = o.putArray("steps");
    for (Catalog.DrillStep s : d.steps()) {
      steps.addObject().put("name", s.name()).put("outcome", s.outcome()).put("seconds", s.seconds())
          .put("detail", s.detail());
    }
    return o;
  }

  /** A verification as one JSON object. */
  static ObjectNode verificationJson(Catalog.VerificationRecord v) {
    return ShadeCommand.JSON.createObjectNode().put("id", v.id()).put("runStarted", v.runStarted().toString())
        .put("jobId", v.jobId()).put("archiveId", v.archiveId()).put("cartridge", v.cartridge())
        .put("fileNumber", v.fileNumber()).put("verified", v.verified().toString()).put("outcome", v.outcome())
        .put("bytes", v.bytes()).put("seconds", v.seconds()).put("chunk", v.chunk()).put("error", v.error());
  }

  /**
   * Opens the catalog {@code --catalog} names, else that of {@code library}, saying what is wrong
   * with the directory when it has none.
   */
  static Catalog openExisting(Path library, CatalogOption option) throws Exception {
    if (!option.given() && !Files.isRegularFile(library.resolve(Catalog.FILE))) {
      TapeCommand.open(library).close(); // says what is wrong with the directory, if anything
    }
    return Catalog.open(option.location(library));
  }

  /** Prints the drills and verifications as lines. */
  static void printHistory(java.io.PrintWriter out, List<Catalog.DrillRecord> drills,
      List<Catalog.VerificationRecord> verifications) {
    if (drills.isEmpty()) {
      out.println("No drills.");
    } else {
      out.printf("%5s  %-20s %-24s %-7s %-10s %9s %9s %10s  %s%n", "drill", "started", "snapshot", "outcome",
          "failed at", "1st byte", "restore", "bytes", "checks");
    }
    for (Catalog.DrillRecord d : drills) {
      out.printf(java.util.Locale.ROOT, "%5d  %-20s %-24s %-7s %-10s %9s %9s %10s  %s%n", d.id(),
          d.started().toString().replaceFirst("\\.\\d+Z$", "Z"),
          d.snapshot() == null ? d.volume() : d.volume() + "@" + d.snapshot(), d.outcome(),
          d.failedStep() == null ? "-" : d.failedStep(),
          d.firstByteSeconds() < 0 ? "-" : ProgressLine.duration(d.firstByteSeconds()),
          d.restoreSeconds() < 0 ? "-" : ProgressLine.duration(d.restoreSeconds()), Sizes.format(d.bytesRestored()),
          (d.fsck() == null ? "" : "fsck " + d.fsck()) + (d.databaseCheck() == null ? "" : "; " + d.databaseCheck())
              + (d.error() == null ? "" : "  (" + d.error() + ")"));
    }
    if (verifications.isEmpty()) {
      out.println("No verifications.");
    } else {
      out.println("Verifications:");
    }
    for (Catalog.VerificationRecord v : verifications) {
      out.println("  " + v.verified().toString().replaceFirst("\\.\\d+Z$", "Z") + "  " + VerifyCommand.line(v));
    }
  }

  /** {@code shade catalog drills}. */
  @Command(
      name = "drills",
      header = "Show the drill and verification history of a library.",
      description = {"Drills (shade drill) of every volume, or of VOLUME (name or uuid), oldest first, with their "
          + "steps' results and timings; then the verifications (shade verify) of every archive, or of VOLUME's."},
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade catalog drills /srv/vtl", "  shade catalog drills /srv/vtl db --json"})
  static final class Drills extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "LIB", description = "The virtual tape library's directory.")
    Path library;

    @Parameters(index = "1", arity = "0..1", paramLabel = "VOLUME", description = "Only this volume (name or uuid).")
    String volume;

    @Mixin CatalogOption catalogOption;

    @Option(names = "--json", description = "Print one JSON object: {library, drills: [as shade drill --json], "
        + "verifications: [as shade verify --json's archives]}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      List<Catalog.DrillRecord> drills;
      List<Catalog.VerificationRecord> verifications;
      try (Catalog c = openExisting(library, catalogOption)) {
        drills = c.drills(volume);
        verifications = c.verifications();
        if (volume != null) {
          java.util.Set<Long> jobs = new java.util.HashSet<>();
          for (Catalog.JobRecord j : c.jobs()) {
            if (volume.equals(j.snapshot().volume()) || volume.equals(j.snapshot().volumeUuid())) {
              jobs.add(j.id());
            }
          }
          verifications = verifications.stream().filter(v -> jobs.contains(v.jobId())).toList();
        }
      }
      if (json) {
        ObjectNode doc = JSON.createObjectNode().put("library", library.toAbsolutePath().toString());
        ArrayNode d = doc.putArray("drills");
        drills.forEach(x -> d.add(drillJson(x)));
        ArrayNode v = doc.putArray("verifications");
        verifications.forEach(x -> v.add(verificationJson(x)));
        printJson(doc);
        return ExitCodes.OK;
      }
      printHistory(out(), drills, verifications);
      out().flush();
      return ExitCodes.OK;
    }
  }

  /** {@code shade catalog list}. */
  @Command(
      name = "list",
      header = "List the backup jobs of a library, oldest first.",
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade catalog list /srv/vtl", "  shade catalog list /srv/vtl --json",
          "  shade catalog list /srv/vtl --catalog 'jdbc:postgresql://cat1/shade?user=shade&password=PW'"})
  static final class ListJobs extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "LIB", description = "The virtual tape library's directory.")
    Path library;

    @Mixin CatalogOption catalogOption;

    @Option(names = "--json", description = "Print one JSON object: {library, catalog, jobs: [{jobId, volume, volumeUuid, "
        + "snapshot, snapshotId, size, level, baseSnapshotId, baseJobId, pool, chunkSize, started, ended, outcome, "
        + "message, bytes, archive: {cartridge, fileNumber, bytes, manifestSha256}}]}.")
    boolean json;

    @Option(names = "--drills", description = "Also list the drills and verifications (as shade catalog drills); "
        + "with --json, as its drills and verifications arrays.")
    boolean drills;

    @Override
    public Integer call() throws Exception {
      if (!catalogOption.given() && !Files.isRegularFile(library.resolve(Catalog.FILE))) {
        TapeCommand.open(library).close(); // says what is wrong with the directory, if anything
      }
      List<Catalog.JobRecord> jobs;
      List<Catalog.DrillRecord> drillList = List.of();
      List<Catalog.VerificationRecord> verifications = List.of();
      CatalogLocation where = catalogOption.location(library);
      try (Catalog c = Catalog.open(where)) {
        jobs = c.jobs();
        if (drills) {
          drillList = c.drills(null);
          verifications = c.verifications();
        }
      }
      if (json) {
        ObjectNode doc = JSON.createObjectNode().put("library", library.toAbsolutePath().toString())
            .put("catalog", where.toString());
        ArrayNode a = doc.putArray("jobs");
        jobs.forEach(j -> a.add(jobJson(j)));
        if (drills) {
          ArrayNode d = doc.putArray("drills");
          drillList.forEach(x -> d.add(drillJson(x)));
          ArrayNode v = doc.putArray("verifications");
          verifications.forEach(x -> v.add(verificationJson(x)));
        }
        printJson(doc);
        return ExitCodes.OK;
      }
      if (jobs.isEmpty()) {
        out().println("No backups in the catalog of " + library + (catalogOption.given() ? " (" + where + ")" : "")
            + ".");
      } else {
        out().printf("%5s  %-24s %-8s %-12s %-7s  %-14s %s%n", "job", "snapshot", "id", "level", "outcome", "tape",
            "data");
      }
      for (Catalog.JobRecord j : jobs) {
        out().printf("%5d  %-24s %-8d %-12s %-7s  %-14s %s%s%n", j.id(), j.snapshot().volume() + "@"
                + j.snapshot().snapshot(), j.snapshot().snapshotId(),
            j.level() + (j.baseSnapshotId() >= 0 ? "<" + j.baseSnapshotId() : ""), j.outcome(),
            j.archive() == null ? "-" : j.archive().cartridge() + ":" + j.archive().fileNumber(),
            Sizes.format(j.bytes()), j.message() == null ? "" : "  (" + j.message() + ")");
      }
      if (drills) {
        printHistory(out(), drillList, verifications);
      }
      out().flush();
      return ExitCodes.OK;
    }
  }
}
