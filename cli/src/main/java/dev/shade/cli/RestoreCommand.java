package dev.shade.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.offhost.backup.Catalog;
import dev.shade.offhost.backup.RestoreService;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code shade restore}: a snapshot's image back from tape. */
@Command(
    name = "restore",
    header = "Restore a backed-up snapshot's image from a tape library to a file.",
    description = {
      "Finds the newest successful backup of the snapshot in the library's catalog and reads its chain, the "
          + "full and every incremental up to it, writing each chunk once (the newest piece wins) and checking "
          + "every chunk's SHA-256 and each archive's manifest. Only the tape files of the chain are read; an "
          + "archive that spans cartridges is read piece by piece, and each cartridge needed is named on stderr as "
          + "it is asked for. The file is sparse, of the snapshot's size; it equals 'shade snapshot export' of the "
          + "snapshot."
    },
    mixinStandardHelpOptions = true,
    footerHeading = "%nExamples:%n",
    footer = {
      "  shade restore --volume db --snapshot nightly --library /srv/vtl --to /tmp/db.img",
      "  shade restore --volume 4f0c... --snapshot id=7 --library /srv/vtl --to /tmp/db.img --json",
      "  shade restore --volume db --snapshot nightly --library /srv/vtl --to /tmp/db.img \\",
      "      --catalog 'jdbc:postgresql://cat1/shade?user=shade&password=PW'"
    })
final class RestoreCommand extends ShadeCommand {
  @Option(names = "--volume", paramLabel = "UUID|NAME", required = true, description = "The volume.")
  String volume;

  @Option(names = "--snapshot", paramLabel = "ID|NAME", required = true,
      description = "The snapshot: its name, its id, or id=ID.")
  String snapshot;

  @Option(names = "--library", paramLabel = "LIB", required = true, description = "The virtual tape library's directory.")
  Path library;

  @Mixin CatalogOption catalogOption;

  @Option(names = "--to", paramLabel = "FILE", required = true, description = "The image file to write.")
  Path to;

  @Option(names = "--force", description = "Replace FILE if it exists.")
  boolean force;

  @Option(names = "--json", description = "Print one JSON object: volume, volumeUuid, snapshot, snapshotId, size, "
      + "file, bytesWritten, chunks, seconds, chain: [{jobId, level, snapshot, snapshotId, cartridge, fileNumber}].")
  boolean json;

  @Override
  public Integer call() throws Exception {
    RestoreService.Result r;
    try (VirtualTapeLibrary lib = TapeCommand.open(library);
        Catalog catalog = Catalog.open(catalogOption.location(library));
        ProgressLine progress = progress("restore")) {
      CatalogCommand.markInterrupted(catalog, library, this);
      r = RestoreService.restore(lib, catalog, volume, snapshot, to, force, progress::update, n -> {
        if (!json) {
          err().println("shade restore: " + n);
          err().flush();
        }
      });
    }
    if (json) {
      ObjectNode o = JSON.createObjectNode().put("volume", r.snapshot().volume())
          .put("volumeUuid", r.snapshot().volumeUuid()).put("snapshot", r.snapshot().snapshot())
          .put("snapshotId", r.snapshot().snapshotId()).put("size", r.snapshot().size())
          .put("file", r.file().toAbsolutePath().toString()).put("bytesWritten", r.bytesWritten())
          .put("chunks", r.chunksWritten()).put("seconds", r.seconds());
      ArrayNode chain = o.putArray("chain");
      for (Catalog.JobRecord j : r.chain()) {
        chain.addObject().put("jobId", j.id()).put("level", j.level()).put("snapshot", j.snapshot().snapshot())
            .put("snapshotId", j.snapshot().snapshotId()).put("cartridge", j.archive().cartridge())
            .put("fileNumber", j.archive().fileNumber());
      }
      printJson(o);
      return ExitCodes.OK;
    }
    StringBuilder chain = new StringBuilder();
    for (Catalog.JobRecord j : r.chain()) {
      chain.append(chain.length() == 0 ? "" : " + ").append(j.level()).append(' ').append(j.snapshot().snapshot())
          .append(" (").append(j.archive().cartridge()).append(':').append(j.archive().fileNumber()).append(')');
    }
    out().printf("Restored %s@%s (id %d) to %s: %s, %s in %d chunk%s from %s, in %s.%n", r.snapshot().volume(),
        r.snapshot().snapshot(), r.snapshot().snapshotId(), to, Sizes.format(r.snapshot().size()),
        Sizes.format(r.bytesWritten()), r.chunksWritten(), r.chunksWritten() == 1 ? "" : "s", chain,
        ProgressLine.duration(r.seconds()));
    out().flush();
    return ExitCodes.OK;
  }
}
