package dev.shade.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.offhost.backup.Catalog;
import dev.shade.offhost.backup.FilesRestoreService;
import dev.shade.offhost.backup.RestoreService;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import java.nio.file.Path;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code shade restore}: a snapshot's image back from tape. */
@Command(
    name = "restore",
    header = "Restore a backed-up snapshot's image to a file, or some of its files to a directory.",
    description = {
      "Finds the newest successful backup of the snapshot in the library's catalog and reads its chain, the "
          + "full and every incremental up to it, writing each chunk once (the newest piece wins) and checking "
          + "every chunk's SHA-256 and each archive's manifest. Only the tape files of the chain are read; an "
          + "archive that spans cartridges is read piece by piece, and each cartridge needed is named on stderr as "
          + "it is asked for. The file is sparse, of the snapshot's size; it equals 'shade snapshot export' of the "
          + "snapshot.",
      "",
      "With --files, restores from the snapshot's files archive (shade backup run --format files) the members "
          + "that match a glob PATTERN, on their path in the volume (etc/hosts, srv/app/*) or in the archive "
          + "(files/etc/hosts); a directory that matches brings everything under it. They go under DIR (created if "
          + "missing) with owners (by number), modes, times, user xattrs, ACLs, symbolic links and hard links. A "
          + "member that would land outside DIR (a '..' component, an absolute name, a path through a symbolic link, "
          + "a hard link out of the tree, a NUL in its name) or whose size the tape file cannot hold stops the restore"
          + " with an error naming it; nothing outside DIR is touched. An existing file is replaced (a symbolic link "
          + "in its place is removed, never followed)."
    },
    mixinStandardHelpOptions = true,
    footerHeading = "%nExamples:%n",
    footer = {
      "  shade restore --volume db --snapshot nightly --library /srv/vtl --to /tmp/db.img",
      "  shade restore --volume 4f0c... --snapshot id=7 --library /srv/vtl --to /tmp/db.img --json",
      "  shade restore --volume db --snapshot nightly --library /srv/vtl --to /tmp/db.img \\",
      "      --catalog 'jdbc:postgresql://cat1/shade?user=shade&password=PW'",
      "  shade restore --volume db --snapshot nightly --library /srv/vtl --files etc/hosts --files 'srv/app/*' "
          + "--to /tmp/r"
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

  @Option(names = "--to", paramLabel = "FILE|DIR", required = true,
      description = "The image file to write; with --files, the directory to restore into.")
  Path to;

  @Option(names = "--files", paramLabel = "PATTERN",
      description = "Restore the members matching this glob from the files archive (repeatable).")
  List<String> files;

  @Option(names = "--force", description = "Replace FILE if it exists.")
  boolean force;

  @Option(names = "--json", description = "Print one JSON object: volume, volumeUuid, snapshot, snapshotId, size, "
      + "file, bytesWritten, chunks, seconds, chain: [{jobId, level, snapshot, snapshotId, cartridge, fileNumber}].")
  boolean json;

  @Override
  public Integer call() throws Exception {
    if (files != null && !files.isEmpty()) {
      return restoreFiles();
    }
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

  private Integer restoreFiles() throws Exception {
    if (force) {
      throw usage("--force is for image restores; a files restore replaces files under DIR anyway");
    }
    FilesRestoreService.Result r;
    try (VirtualTapeLibrary lib = TapeCommand.open(library);
        Catalog catalog = Catalog.open(catalogOption.location(library))) {
      r = FilesRestoreService.restore(lib, catalog, volume, snapshot, files, to, p -> {});
    }
    var x = r.extracted();
    if (json) {
      ObjectNode o = JSON.createObjectNode().put("format", Catalog.FORMAT_FILES).put("volume", r.job().snapshot().volume())
          .put("volumeUuid", r.job().snapshot().volumeUuid()).put("snapshot", r.job().snapshot().snapshot())
          .put("snapshotId", r.job().snapshot().snapshotId()).put("jobId", r.job().id())
          .put("cartridge", r.job().archive().cartridge()).put("fileNumber", r.job().archive().fileNumber())
          .put("dir", to.toAbsolutePath().toString()).put("restored", x.restored().size()).put("files", x.files())
          .put("bytes", x.bytes()).put("checked", x.checked()).put("seconds", r.seconds());
      ArrayNode paths = o.putArray("paths");
      x.restored().forEach(paths::add);
      ArrayNode writerFiles = o.putArray("writerFiles");
      x.writerFiles().forEach(writerFiles::add);
      ArrayNode notes = o.putArray("notes");
      x.notes().forEach(notes::add);
      printJson(o);
      return ExitCodes.OK;
    }
    for (String n : x.notes()) {
      err().println("shade restore: " + n);
    }
    for (String w : x.writerFiles()) {
      err().println("shade restore: wrote the writer metadata's " + w + " (the snapshot's, not in its tree)");
    }
    err().flush();
    out().printf("Restored %d path%s (%d file%s, %s) of %s@%s (id %d) from %s:%d to %s, in %s.%n", x.restored().size(),
        x.restored().size() == 1 ? "" : "s", x.files(), x.files() == 1 ? "" : "s", Sizes.format(x.bytes()),
        r.job().snapshot().volume(), r.job().snapshot().snapshot(), r.job().snapshot().snapshotId(),
        r.job().archive().cartridge(), r.job().archive().fileNumber(), to, ProgressLine.duration(r.seconds()));
    out().flush();
    return ExitCodes.OK;
  }
}
