package dev.shade.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.offhost.backup.Catalog;
import dev.shade.offhost.backup.VerifyService;
import dev.shade.offhost.tape.TapeLibrary;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code shade verify}: archives read back from tape and every checksum checked. */
@Command(
    name = "verify",
    header = "Read archives back from tape and check every checksum.",
    description = {
      "Reads every archive the library's catalog records (or those on one cartridge, or of one job) from its "
          + "tape file and checks each chunk's SHA-256 against the catalog and the archive's manifest, the "
          + "manifest's own SHA-256 against the one recorded when the archive was written, and that no chunk is "
          + "missing; a files archive's every member, and each regular file's SHA-256 against its manifest. A damaged "
          + "or truncated archive is named by cartridge, tape file and chunk (member). Each archive's "
          + "result is recorded in the catalog (shade catalog drills shows them) and, after the run, on tape: a "
          + "tape file shade-verify.json on the newest cartridge of the archives' pool that has room (a blank one "
          + "labelled into the pool when none has), so that shade catalog rebuild brings it back. When an archive "
          + "fails, the command exits with 1 after checking the others. When the record cannot go on tape (no "
          + "cartridge of the pool has room and none is blank), the verify still stands: it says so on stderr "
          + "(and in records.notWritten with --json), the exit code is that of the verify, and the next verify or "
          + "drill that finds room writes the record."
    },
    mixinStandardHelpOptions = true,
    footerHeading = "%nExamples:%n",
    footer = {
      "  shade verify --library /srv/vtl",
      "  shade verify --device /dev/nst0 --cartridge SHD001",
      "  shade verify --library /srv/vtl --cartridge SHD001 --json",
      "  shade verify --library /srv/vtl --job 12"
    })
final class VerifyCommand extends ShadeCommand {
  @Option(names = "--library", paramLabel = "LIB", description = "The virtual tape library's directory (or --device).")
  Path library;

  @Mixin DeviceOption deviceOption;

  @Mixin CatalogOption catalogOption;

  @Option(names = "--cartridge", paramLabel = "LABEL", description = "Only the archives on this cartridge.")
  String cartridge;

  @Option(names = "--job", paramLabel = "ID", description = "Only the archive of this backup job.")
  Long job;

  @Option(names = "--json", description = "Print one JSON object: library, started, ok, bytes, seconds, archives: "
      + "[{id, jobId, archiveId, cartridge, fileNumber, verified, outcome, bytes, seconds, chunk, error}], records: "
      + "{written: [{cartridge, fileNumber}], notWritten: [text]}.")
  boolean json;

  @Override
  public Integer call() throws Exception {
    deviceOption.requireOne(library, "--library", this);
    if (job != null && job < 0) {
      throw usage("--job must be a job id (0 or more): " + job);
    }
    VerifyService.Result r;
    try (TapeLibrary lib = deviceOption.open(library, this);
        Catalog catalog = Catalog.open(deviceOption.catalog(library, catalogOption));
        ProgressLine progress = progress("verify")) {
      CatalogCommand.markInterrupted(catalog, deviceOption.where(library), this);
      r = VerifyService.verify(lib, catalog, new VerifyService.Selection(cartridge, job == null ? -1 : job), progress::update, v -> {
        if (!json) {
          progress.close();
          out().println(line(v));
          out().flush();
        }
      }, n -> {
        if (!json) {
          progress.close();
          err().println("shade verify: " + n);
          err().flush();
        }
      });
    }
    if (json) {
      ObjectNode o = JSON.createObjectNode().put("library", deviceOption.where(library).toAbsolutePath().toString())
          .put("started", r.started().toString()).put("ok", r.ok()).put("bytes", r.bytes()).put("seconds", r.seconds());
      ArrayNode a = o.putArray("archives");
      r.archives().forEach(v -> a.add(CatalogCommand.verificationJson(v)));
      o.set("records", CatalogCommand.tapeRecordsJson(r.records()));
      printJson(o);
    } else {
      out().printf("Verified %d archive%s, %s of chunk data in %s: %s.%n", r.archives().size(),
          r.archives().size() == 1 ? "" : "s", Sizes.format(r.bytes()), ProgressLine.duration(r.seconds()),
          r.ok() ? "all passed" : r.failures().size() + " failed");
      out().flush();
    }
    for (String n : r.records().notWritten()) {
      err().println("shade verify: warning: " + n);
    }
    err().flush();
    if (!r.ok()) {
      for (Catalog.VerificationRecord f : r.failures()) {
        err().println("shade verify: " + f.error());
      }
      err().flush();
      return ExitCodes.FAILURE;
    }
    return ExitCodes.OK;
  }

  /** One archive's result as a line. */
  static String line(Catalog.VerificationRecord v) {
    return String.format("%-6s %s:%d  job %d  %s in %s%s", Catalog.OK.equals(v.outcome()) ? "ok" : "FAILED",
        v.cartridge(), v.fileNumber(), v.jobId(), Sizes.format(v.bytes()), ProgressLine.duration(v.seconds()),
        v.error() == null ? "" : "  " + v.error());
  }
}
