package dev.shade.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.offhost.backup.Catalog;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code shade catalog}: what a library's backup catalog records. */
@Command(
    name = "catalog",
    header = "Show the backup catalog of a tape library.",
    mixinStandardHelpOptions = true,
    subcommands = {CatalogCommand.ListJobs.class})
final class CatalogCommand extends CommandGroup {

  /** A job as one JSON object. */
  static ObjectNode jobJson(Catalog.JobRecord j) {
    ObjectNode o = ShadeCommand.JSON.createObjectNode().put("jobId", j.id()).put("volume", j.snapshot().volume())
        .put("volumeUuid", j.snapshot().volumeUuid()).put("snapshot", j.snapshot().snapshot())
        .put("snapshotId", j.snapshot().snapshotId()).put("size", j.snapshot().size()).put("format", j.format())
        .put("level", j.level());
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

  /** {@code shade catalog list}. */
  @Command(
      name = "list",
      header = "List the backup jobs of a library, oldest first.",
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade catalog list /srv/vtl", "  shade catalog list /srv/vtl --json"})
  static final class ListJobs extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "LIB", description = "The virtual tape library's directory.")
    Path library;

    @Option(names = "--json", description = "Print one JSON object: {library, jobs: [{jobId, volume, volumeUuid, "
        + "snapshot, snapshotId, size, format (image or files), level, baseSnapshotId, baseJobId, pool, chunkSize, started, ended, outcome, "
        + "message, bytes, archive: {cartridge, fileNumber, bytes, manifestSha256}}]}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      if (!Files.isRegularFile(library.resolve(Catalog.FILE))) {
        TapeCommand.open(library).close(); // says what is wrong with the directory, if anything
      }
      List<Catalog.JobRecord> jobs;
      try (Catalog c = Catalog.open(library)) {
        jobs = c.jobs();
      }
      if (json) {
        ObjectNode doc = JSON.createObjectNode().put("library", library.toAbsolutePath().toString());
        ArrayNode a = doc.putArray("jobs");
        jobs.forEach(j -> a.add(jobJson(j)));
        printJson(doc);
        return ExitCodes.OK;
      }
      if (jobs.isEmpty()) {
        out().println("No backups in the catalog of " + library + ".");
      } else {
        out().printf("%5s  %-24s %-8s %-6s %-12s %-7s  %-14s %s%n", "job", "snapshot", "id", "format", "level",
            "outcome", "tape", "data");
      }
      for (Catalog.JobRecord j : jobs) {
        out().printf("%5d  %-24s %-8d %-6s %-12s %-7s  %-14s %s%s%n", j.id(), j.snapshot().volume() + "@"
                + j.snapshot().snapshot(), j.snapshot().snapshotId(), j.format(),
            j.level() + (j.baseSnapshotId() >= 0 ? "<" + j.baseSnapshotId() : ""), j.outcome(),
            j.archive() == null ? "-" : j.archive().cartridge() + ":" + j.archive().fileNumber(),
            Sizes.format(j.bytes()), j.message() == null ? "" : "  (" + j.message() + ")");
      }
      out().flush();
      return ExitCodes.OK;
    }
  }
}
