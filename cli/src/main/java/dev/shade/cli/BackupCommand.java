package dev.shade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.nbd.client.NbdUri;
import dev.shade.offhost.backup.BackupService;
import dev.shade.offhost.backup.Catalog;
import dev.shade.offhost.backup.FilesBackupService;
import dev.shade.offhost.backup.NbdSnapshotSource;
import dev.shade.offhost.backup.SnapshotIdentity;
import dev.shade.offhost.files.FilesManifest;
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
      header = "Back up one snapshot as an image or a files archive on tape.",
      description = {
        "Reads the snapshot export URI (nbd://HOST:PORT/VOLUME@SNAPSHOT, nbd+unix:///VOLUME@SNAPSHOT?socket=PATH, "
            + "nbds:// with TLS) and appends one PAX tar archive to a cartridge of POOL in drive 0 of the library LIB, "
            + "labelling a blank cartridge into the pool when none of it has room. The job is recorded in the "
            + "library's catalog (catalog.db) by the snapshot's stable id.",
        "",
        "A full reads every allocated chunk (holes skipped with base:allocation); an incremental reads only the "
            + "chunks changed since the last backed-up snapshot of the volume (shade:changed:id=N). With "
            + "--level incremental or auto (the default), a full is written instead, and the command says so, when "
            + "there is no earlier backup or its snapshot no longer exists on the production host.",
        "",
        "--format files archives the snapshot's filesystem tree instead (always whole): the snapshot is attached "
            + "read-only on this server (nbdfuse -r, a read-only loop device, mount -o ro,noload for ext4, "
            + "ro,norecovery for xfs) and its files go to tape as a PAX tar that GNU tar extracts file by file, with "
            + "owners, modes, times, xattrs and ACLs (tar -x --xattrs --acls); the chain is taken down afterwards, also "
            + "on failure. Needs root, nbdfuse and, for ACLs, getfacl (the acl package)."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {
        "  shade backup run --source nbd://db1:10809/db@nightly --library /srv/vtl --pool nightly",
        "  shade backup run --source 'nbd+unix:///db@id=7?socket=/run/shade/nbd.sock' --library /srv/vtl --json",
        "  shade backup run --source nbd://db1:10809/db@nightly --library /srv/vtl --format files"
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

    @Option(names = "--format", paramLabel = "FORMAT", defaultValue = Catalog.FORMAT_IMAGE,
        description = "image (the block image) or files (the filesystem tree, for single-file restores) "
            + "(default: ${DEFAULT-VALUE}).")
    String format;

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
        + "archiveBytes, dataBytes, bytesRead, chunks, zeroChunks, seconds.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      if (format.equals(Catalog.FORMAT_FILES)) {
        return files();
      }
      if (!format.equals(Catalog.FORMAT_IMAGE)) {
        throw usage("--format must be image or files: " + format);
      }
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
      out().flush();
      return ExitCodes.OK;
    }

    /** {@code --format files}. */
    private Integer files() throws Exception {
      if (level.equals("incremental")) {
        throw usage("a files archive is always a whole tree: --level incremental does not go with --format files");
      }
      if (!List.of("full", "auto").contains(level)) {
        throw usage("level must be full, incremental or auto: " + level);
      }
      FilesBackupService.Request request;
      NbdClientConfig config;
      String fuseUri;
      try {
        request = new FilesBackupService.Request(pool, writerMetadata(metadata));
        config = clientConfig();
        fuseUri = libnbdUri();
      } catch (IllegalArgumentException e) {
        throw usage(e.getMessage());
      }
      SnapshotIdentity id;
      try (NbdSnapshotSource src = NbdSnapshotSource.open(config)) {
        id = src.identity();
      }
      List<String> notes = new ArrayList<>();
      FilesBackupService.Result r;
      try (VirtualTapeLibrary lib = TapeCommand.open(library);
          Catalog catalog = Catalog.open(library);
          ProgressLine progress = progress("backup")) {
        r = FilesBackupService.run(lib, catalog, id, fuseUri, request, progress::update, n -> {
          notes.add(n);
          if (!json) {
            err().println("shade backup: " + n);
            err().flush();
          }
        });
      } finally {
        deleteTlsDir();
      }
      FilesManifest.Counts c = r.counts();
      if (json) {
        ObjectNode o = JSON.createObjectNode().put("jobId", r.jobId()).put("format", Catalog.FORMAT_FILES)
            .put("volume", r.snapshot().volume()).put("volumeUuid", r.snapshot().volumeUuid())
            .put("snapshot", r.snapshot().snapshot()).put("snapshotId", r.snapshot().snapshotId())
            .put("size", r.snapshot().size()).put("level", "full").put("filesystem", r.filesystem())
            .put("cartridge", r.cartridge()).put("labelled", r.labelled()).put("fileNumber", r.fileNumber())
            .put("archiveBytes", r.archiveBytes()).put("files", c.entries()).put("directories", c.directories())
            .put("regularFiles", c.regularFiles()).put("hardLinks", c.hardLinks()).put("symlinks", c.symlinks())
            .put("specialFiles", c.specialFiles()).put("sparseFiles", c.sparseFiles())
            .put("skippedSockets", c.skipped()).put("bytes", c.bytes()).put("dataBytes", c.dataBytes())
            .put("acls", r.acls()).put("seconds", r.seconds());
        o.putArray("notes").addAll(notes.stream().map(JSON.getNodeFactory()::textNode).toList());
        printJson(o);
        return ExitCodes.OK;
      }
      out().printf("Backed up the files of %s@%s (id %d, %s) to cartridge %s, tape file %d: %d entries, %s in files "
              + "(%s stored, holes left out), archive %s, in %s.%n",
          r.snapshot().volume(), r.snapshot().snapshot(), r.snapshot().snapshotId(), r.filesystem(), r.cartridge(),
          r.fileNumber(), c.entries(), Sizes.format(c.bytes()), Sizes.format(c.dataBytes()),
          Sizes.format(r.archiveBytes()), ProgressLine.duration(r.seconds()));
      out().flush();
      return ExitCodes.OK;
    }

    /** The client configuration of --source and the --tls-* files. */
    private NbdClientConfig clientConfig() {
      NbdClientConfig.Builder b = NbdClientConfig.builder(NbdUri.parse(source));
      if (tlsCa != null) {
        b.tlsCa(tlsCa);
      }
      if (tlsCert != null || tlsKey != null) {
        if (tlsCert == null || tlsKey == null) {
          throw new IllegalArgumentException("--tls-cert and --tls-key go together");
        }
        b.tlsClientCertificate(tlsCert, tlsKey);
      }
      return b.build();
    }

    /** A directory of the --tls-* files under the names libnbd looks for, while a files backup runs. */
    private Path tlsDir;

    /**
     * --source as nbdfuse (libnbd) takes it: the same URI, and for nbds:// with --tls-* files a
     * tls-certificates directory holding them as ca-cert.pem, client-cert.pem and client-key.pem.
     */
    private String libnbdUri() throws java.io.IOException {
      if (!source.startsWith("nbds") || (tlsCa == null && tlsCert == null)) {
        return source;
      }
      tlsDir = Files.createTempDirectory("shade-tls-");
      if (tlsCa != null) {
        Files.createSymbolicLink(tlsDir.resolve("ca-cert.pem"), tlsCa.toAbsolutePath());
      }
      if (tlsCert != null) {
        Files.createSymbolicLink(tlsDir.resolve("client-cert.pem"), tlsCert.toAbsolutePath());
        Files.createSymbolicLink(tlsDir.resolve("client-key.pem"), tlsKey.toAbsolutePath());
      }
      return source + (source.contains("?") ? "&" : "?") + "tls-certificates=" + tlsDir;
    }

    private void deleteTlsDir() {
      if (tlsDir == null) {
        return;
      }
      for (String f : List.of("ca-cert.pem", "client-cert.pem", "client-key.pem")) {
        try {
          Files.deleteIfExists(tlsDir.resolve(f));
        } catch (java.io.IOException ignored) {
          // a temporary directory of links: harmless if left
        }
      }
      try {
        Files.deleteIfExists(tlsDir);
      } catch (java.io.IOException ignored) {
        // as above
      }
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
