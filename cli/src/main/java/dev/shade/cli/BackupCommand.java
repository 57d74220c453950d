package dev.shade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.nbd.client.NbdUri;
import dev.shade.offhost.backup.BackupService;
import dev.shade.offhost.backup.Catalog;
import dev.shade.offhost.backup.NbdSnapshotSource;
import dev.shade.offhost.tape.VirtualTapeLibrary;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code shade backup}: image backups of snapshots to tape. */
@Command(
    name = "backup",
    header = "Back up snapshots from the agent's NBD export to a tape library.",
    description = {"docs/backup.md describes backups, the catalog and restores; docs/tape-format.md the archives."},
    mixinStandardHelpOptions = true,
    subcommands = {BackupCommand.Run.class})
final class BackupCommand extends CommandGroup {

  /** {@code shade backup run}. */
  @Command(
      name = "run",
      header = "Back up one snapshot as an image archive on tape.",
      description = {
        "Reads the snapshot export URI (nbd://HOST:PORT/VOLUME@SNAPSHOT, nbd+unix:///VOLUME@SNAPSHOT?socket=PATH, "
            + "nbds:// with TLS) and appends one PAX tar archive to a cartridge of POOL in drive 0 of the library LIB, "
            + "labelling a blank cartridge into the pool when none of it has room. An archive that reaches the end "
            + "of its cartridge continues in a new piece on the pool's next cartridge (or a blank one labelled into "
            + "the pool). The job is recorded in the library's catalog (catalog.db) by the snapshot's stable id, "
            + "and its full record is written on tape after the archive.",
        "",
        "A full reads every allocated chunk (holes skipped with base:allocation); an incremental reads only the "
            + "chunks changed since the last backed-up snapshot of the volume (shade:changed:id=N). With "
            + "--level incremental or auto (the default), a full is written instead, and the command says so, when "
            + "there is no earlier backup or its snapshot no longer exists on the production host."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade backup run --source nbd://db1:10809/db@nightly --library /srv/vtl --pool nightly",
        "  shade backup run --source 'nbd+unix:///db@id=7?socket=/run/shade/nbd.sock' --library /srv/vtl --json"
      })
  static final class Run extends ShadeCommand {
    @Option(names = "--source", paramLabel = "URI", required = true, description = "The snapshot's NBD export.")
    String source;

    @Option(names = "--library", paramLabel = "LIB", required = true, description = "The virtual tape library's directory.")
    Path library;

    @Option(names = "--pool", paramLabel = "POOL", defaultValue = BackupService.DEFAULT_POOL,
        description = "The media pool (default: ${DEFAULT-VALUE}).")
    String pool;

    @Option(names = "--level", paramLabel = "LEVEL", defaultValue = "auto",
        description = "full, incremental or auto (default: ${DEFAULT-VALUE}: incremental when there is a base).")
    String level;

    @Option(names = "--chunk-size", paramLabel = "SIZE", converter = Sizes.class, defaultValue = "4M",
        description = "Bytes per archive chunk, a power of two from 4K to 64M (default: ${DEFAULT-VALUE}); an "
            + "incremental keeps its base's.")
    long chunkSize;

    @Option(names = "--metadata", paramLabel = "FILE",
        description = "The snapshot's 'shade snapshot show --json' (or the control API's snapshot-show) document; "
            + "its attributes' shade.writers go into the manifest as the writer metadata.")
    Path metadata;

    @Option(names = "--tls-cert", paramLabel = "FILE", description = "Client certificate (PEM) for nbds://.")
    Path tlsCert;

    @Option(names = "--tls-key", paramLabel = "FILE", description = "Its private key (PEM).")
    Path tlsKey;

    @Option(names = "--tls-ca", paramLabel = "FILE", description = "CA certificates (PEM) to trust for nbds://.")
    Path tlsCa;

    @Option(names = "--json", description = "Print one JSON object: jobId, volume, volumeUuid, snapshot, snapshotId, "
        + "level, requestedLevel, fallback, baseSnapshotId, baseSnapshot, cartridge, labelled, fileNumber, "
        + "archiveBytes, dataBytes, bytesRead, chunks, zeroChunks, seconds, pieces: [{piece, cartridge, fileNumber, "
        + "bytes, firstOffset, endOffset, chunks}] (one per cartridge the archive spans).")
    boolean json;

    @Override
    public Integer call() throws Exception {
      BackupService.Request request;
      NbdClientConfig config;
      try {
        request = new BackupService.Request(pool, level, (int) Math.min(Integer.MAX_VALUE, chunkSize),
            writerMetadata(metadata));
        NbdClientConfig.Builder b = NbdClientConfig.builder(NbdUri.parse(source));
        if (tlsCa != null) {
          b.tlsCa(tlsCa);
        }
        if (tlsCert != null || tlsKey != null) {
          if (tlsCert == null || tlsKey == null) {
            throw usage("--tls-cert and --tls-key go together");
          }
          b.tlsClientCertificate(tlsCert, tlsKey);
        }
        config = b.build();
      } catch (IllegalArgumentException e) {
        throw usage(e.getMessage());
      }
      List<String> notes = new ArrayList<>();
      BackupService.Result r;
      try (VirtualTapeLibrary lib = TapeCommand.open(library);
          Catalog catalog = Catalog.open(library);
          NbdSnapshotSource src = NbdSnapshotSource.open(config);
          ProgressLine progress = progress("backup")) {
        r = BackupService.run(lib, catalog, src, request, progress::update, n -> {
          notes.add(n);
          if (!json) {
            err().println("shade backup: " + n);
            err().flush();
          }
        });
      }
      if (json) {
        ObjectNode o = JSON.createObjectNode().put("jobId", r.jobId()).put("volume", r.snapshot().volume())
            .put("volumeUuid", r.snapshot().volumeUuid()).put("snapshot", r.snapshot().snapshot())
            .put("snapshotId", r.snapshot().snapshotId()).put("size", r.snapshot().size()).put("level", r.level())
            .put("requestedLevel", r.requestedLevel()).put("fallback", r.fallback());
        if (r.baseSnapshotId() >= 0) {
          o.put("baseSnapshotId", r.baseSnapshotId()).put("baseSnapshot", r.baseSnapshot());
        } else {
          o.putNull("baseSnapshotId").putNull("baseSnapshot");
        }
        o.put("cartridge", r.cartridge()).put("labelled", r.labelled()).put("fileNumber", r.fileNumber())
            .put("archiveBytes", r.archiveBytes()).put("dataBytes", r.dataBytes()).put("bytesRead", r.bytesRead())
            .put("chunks", r.chunks()).put("zeroChunks", r.zeroChunks()).put("seconds", r.seconds());
        com.fasterxml.jackson.databind.node.ArrayNode pieces = o.putArray("pieces");
        r.pieces().forEach(p -> pieces.add(CatalogCommand.pieceJson(p)));
        printJson(o);
        return ExitCodes.OK;
      }
      out().printf("Backed up %s@%s (id %d) as a%s %s to cartridge %s, tape file %d: %s read, %s in %d chunk%s "
              + "(archive %s), in %s (%s/s).%n",
          r.snapshot().volume(), r.snapshot().snapshot(), r.snapshot().snapshotId(),
          r.level().equals("full") ? "" : "n", r.level()
              + (r.baseSnapshotId() >= 0 ? " since " + r.baseSnapshot() + " (id " + r.baseSnapshotId() + ")" : ""),
          r.cartridge(), r.fileNumber(), Sizes.format(r.bytesRead()), Sizes.format(r.dataBytes()), r.chunks(),
          r.chunks() == 1 ? "" : "s", Sizes.format(r.archiveBytes()), ProgressLine.duration(r.seconds()),
          Sizes.format((long) (r.bytesRead() / Math.max(1e-9, r.seconds()))));
      if (r.pieces().size() > 1) {
        StringBuilder b = new StringBuilder();
        for (var p : r.pieces()) {
          b.append(b.length() == 0 ? "" : ", ").append(p.cartridge()).append(':').append(p.fileNumber());
        }
        out().printf("The archive spans %d cartridges: %s.%n", r.pieces().size(), b);
      }
      out().flush();
      return ExitCodes.OK;
    }

    /** The writer metadata of a snapshot-show document: its attributes' shade.writers, parsed if JSON. */
    private JsonNode writerMetadata(Path file) throws Exception {
      if (file == null) {
        return null;
      }
      if (!Files.isRegularFile(file)) {
        throw new CommandException("metadata file does not exist: " + file);
      }
      JsonNode doc = JSON.readTree(file.toFile());
      if (doc.has("snapshots") && doc.get("snapshots").isArray() && doc.get("snapshots").size() > 0) {
        doc = doc.get("snapshots").get(0);
      }
      JsonNode attrs = doc.path("attributes");
      JsonNode w = attrs.path("shade.writers");
      if (w.isMissingNode() || w.isNull()) {
        return attrs.isObject() ? JSON.createObjectNode().set("attributes", attrs) : null;
      }
      if (w.isTextual()) {
        try {
          return JSON.readTree(w.asText());
        } catch (Exception e) {
          return w;
        }
      }
      return w;
    }
  }
}
