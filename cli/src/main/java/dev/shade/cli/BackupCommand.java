package dev.shade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.nbd.client.NbdUri;
import dev.shade.offhost.agent.AgentClient;
import dev.shade.offhost.agent.AgentEndpoint;
import dev.shade.offhost.agent.AgentSnapshots;
import dev.shade.offhost.agent.BackupCompleteOutcome;
import dev.shade.offhost.backup.BackupService;
import dev.shade.offhost.backup.Catalog;
import dev.shade.offhost.backup.ChunkChecksum;
import dev.shade.offhost.backup.FilesBackupService;
import dev.shade.offhost.backup.VerifyService;
import dev.shade.offhost.backup.NbdSnapshotSource;
import dev.shade.offhost.backup.SnapshotIdentity;
import dev.shade.offhost.files.FilesManifest;
import dev.shade.offhost.tape.TapeLibrary;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
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
            + "labelling a blank cartridge into the pool when none of it has room. An archive that reaches the end "
            + "of its cartridge continues in a new piece on the pool's next cartridge (or a blank one labelled into "
            + "the pool). The job is recorded in the library's catalog (catalog.db, or the one --catalog names) by the snapshot's stable id, "
            + "and its full record is written on tape after the archive.",
        "",
        "With --device DEV instead of --library, the archive goes to the cartridge in a real tape drive "
            + "(/dev/nst0, no changer): the one in it when it is blank or of the pool with room, else the operator is "
            + "asked on the terminal to load the pool's next cartridge or a blank one (its label is checked); "
            + "without a terminal, or with --no-prompt, the job fails naming the cartridge it needs. The catalog is "
            + "then --catalog, or /var/lib/shade/catalog.db (docs/backup.md, \"Running on a real drive\").",
        "",
        "A full reads every allocated chunk (holes skipped with base:allocation); an incremental reads only the "
            + "chunks changed since the last backed-up snapshot of the volume (shade:changed:id=N). With "
            + "--level incremental or auto (the default), a full is written instead, and the command says so, when "
            + "there is no earlier backup or its snapshot no longer exists on the production host.",
        "",
        "With --agent (the agent's remote API, HOST:PORT, over TLS with the same --tls-* files as nbds://, or its "
            + "control socket's path on the same host), the snapshot's identity and writer metadata (snapshot-show, "
            + "shade.writers) are fetched from the agent and stored in the archive's manifest; once the archive is "
            + "written and read back with every checksum good, the agent is told (snapshot-backup-complete), so its "
            + "writers may release logs. A failed backup-complete does not fail the backup: it is reported.",
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
        "  shade backup run --source nbd://db1:10809/db@nightly --library /srv/vtl \\",
        "      --catalog 'jdbc:postgresql://cat1/shade?user=shade&password=PW'",
        "  shade backup run --source nbds://db1:10809/db@nightly --agent db1:10810 --tls-cert backup.pem \\",
        "      --tls-key backup.key --tls-ca ca.pem --library /srv/vtl",
        "  shade backup run --source nbd://db1:10809/db@nightly --library /srv/vtl --format files",
        "  shade backup run --source nbd://db1:10809/db@nightly --device /dev/nst0 --pool nightly"
      })
  static final class Run extends ShadeCommand {
    @Option(names = "--source", paramLabel = "URI", required = true, description = "The snapshot's NBD export.")
    String source;

    @Option(names = "--library", paramLabel = "LIB", description = "The virtual tape library's directory (or --device).")
    Path library;

    @Mixin DeviceOption deviceOption;

    @Mixin CatalogOption catalogOption;

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

    @Option(names = "--compress", paramLabel = "ALG", defaultValue = "none",
        description = "none, or zstd[:LEVEL] (LEVEL 1..19, default 3): each chunk is compressed on this server as one "
            + "zstd frame (a member named .zst), or stored plain when it does not shrink; --format image only "
            + "(default: ${DEFAULT-VALUE}).")
    String compress;

    @Option(names = "--checksum", paramLabel = "ALG",
        description = "crc32c or sha256: each chunk's checksum in the manifest and the catalog, checked by every "
            + "restore and verify. CRC-32C (what a drive's logical block protection uses) finds damaged media at a "
            + "tenth of SHA-256's CPU; SHA-256 for those who want a cryptographic digest of each chunk. --format "
            + "image only; a files archive has each file's SHA-256 (default: crc32c).")
    String checksum;

    @Option(names = "--metadata", paramLabel = "FILE",
        description = "The snapshot's 'shade snapshot show --json' (or the control API's snapshot-show) document; "
            + "its attributes' shade.writers go into the manifest as the writer metadata.")
    Path metadata;

    @Option(names = "--agent", paramLabel = "ADDRESS",
        description = "The agent's remote API (HOST:PORT, shades://HOST:PORT; TLS with the --tls-* files) or control "
            + "socket (a path): writer metadata comes from it, and it is told backup-complete after the read-back.")
    String agent;

    @Option(names = "--agent-timeout", paramLabel = "DURATION", converter = Durations.class, defaultValue = "120s",
        description = "Limit on connecting to the agent and on each of its replies (default: ${DEFAULT-VALUE}).")
    Duration agentTimeout;

    @Option(names = "--tls-cert", paramLabel = "FILE", description = "Client certificate (PEM) for nbds:// and the agent.")
    Path tlsCert;

    @Option(names = "--tls-key", paramLabel = "FILE", description = "Its private key (PEM).")
    Path tlsKey;

    @Option(names = "--tls-ca", paramLabel = "FILE", description = "CA certificates (PEM) to trust for nbds:// and the agent.")
    Path tlsCa;

    @Option(names = "--json", description = "Print one JSON object: jobId, volume, volumeUuid, snapshot, snapshotId, "
        + "level, requestedLevel, fallback, baseSnapshotId, baseSnapshot, cartridge, labelled, fileNumber, "
        + "compression (none or zstd:LEVEL), checksum (crc32c or sha-256), archiveBytes (on tape), dataBytes (the "
        + "chunks' bytes), bytesRead, "
        + "chunks, zeroChunks, seconds, reconnects (how often a broken connection was opened again), "
        + "metadataSource (agent, file or null), "
        + "verified ({chunks, bytes, seconds} of the read-back, or null) and backupComplete ({ok, writers, error}, "
        + "or null without --agent), pieces: [{piece, cartridge, fileNumber, bytes, firstOffset, endOffset, chunks}] "
        + "(one per cartridge the archive spans), notes: [what the backup told on stderr without --json].")
    boolean json;

    @Override
    public Integer call() throws Exception {
      deviceOption.requireOne(library, "--library", this);
      int zstdLevel = zstdLevel(compress);
      if (zstdLevel > 0 && !format.equals(Catalog.FORMAT_IMAGE)) {
        throw usage("--compress " + compress + " goes only with --format image, not --format " + format);
      }
      if (checksum != null && !format.equals(Catalog.FORMAT_IMAGE)) {
        throw usage("--checksum " + checksum + " goes only with --format image: a files archive has each file's "
            + "SHA-256");
      }
      if (format.equals(Catalog.FORMAT_FILES)) {
        return files();
      }
      if (!format.equals(Catalog.FORMAT_IMAGE)) {
        throw usage("--format must be image or files: " + format);
      }
      BackupService.Request request;
      NbdClientConfig config;
      AgentEndpoint endpoint = null;
      JsonNode fileMetadata;
      try {
        fileMetadata = writerMetadata(metadata);
        config = clientConfig();
        if (agent != null) {
          endpoint = AgentEndpoint.parse(agent, tlsCa, tlsCert, tlsKey);
        }
        // validated here, with the metadata to be filled in below
        request = new BackupService.Request(pool, level, (int) Math.min(Integer.MAX_VALUE, chunkSize), fileMetadata,
            zstdLevel, checksum == null ? ChunkChecksum.DEFAULT : ChunkChecksum.parse(checksum));
      } catch (IllegalArgumentException e) {
        throw usage(e.getMessage());
      }
      List<String> notes = new ArrayList<>();
      ProgressLine[] onScreen = {null}; // the progress line on screen, closed before a note so that it starts clean
      java.util.function.Consumer<String> note = n -> {
        notes.add(n);
        if (!json) {
          if (onScreen[0] != null) {
            onScreen[0].close();
          }
          err().println("shade backup: " + n);
          err().flush();
        }
      };
      BackupService.Result r;
      VerifyService.Result verified = null;
      BackupCompleteOutcome complete = null;
      String metadataSource = fileMetadata != null ? "file" : null;
      try (TapeLibrary lib = deviceOption.open(library, this);
          Catalog catalog = Catalog.open(deviceOption.catalog(library, catalogOption));
          NbdSnapshotSource src = NbdSnapshotSource.open(config)) {
        if (endpoint != null) {
          // a connection of its own for each step: the backup may outlast the agent's idle limit
          try (AgentClient c = AgentClient.connect(endpoint, agentTimeout)) {
            JsonNode shown = AgentSnapshots.show(c, src.identity());
            if (fileMetadata == null) {
              request = new BackupService.Request(pool, level, request.chunkSize(), AgentSnapshots.writerMetadata(shown),
                  request.zstdLevel(), request.checksum());
              metadataSource = "agent";
            } else {
              note.accept("writer metadata from " + metadata + ", not from the agent");
            }
          }
        }
        try (ProgressLine progress = progress("backup")) {
          onScreen[0] = progress;
          r = BackupService.run(lib, catalog, src, request, progress::update, note);
        } finally {
          onScreen[0] = null;
        }
        if (endpoint != null) {
          // read back as shade verify does (and recorded as its verification), before the agent is told
          String bad;
          try (ProgressLine progress = progress("read-back")) {
            verified = VerifyService.verify(lib, catalog, new VerifyService.Selection(null, r.jobId()), progress::update,
                v -> { });
            bad = verified.ok() ? null : verified.failures().get(0).error();
            verified.records().notWritten().forEach(note);
          } catch (java.io.IOException e) {
            bad = e.getMessage();
          }
          if (bad != null) {
            catalog.failJob(r.jobId(), "read-back failed: " + bad, Instant.now());
            throw new CommandException("the archive of " + r.snapshot() + " was written but does not read back "
                + "good, so the agent is not told backup-complete: " + bad);
          }
          try (AgentClient c = AgentClient.connect(endpoint, agentTimeout)) {
            complete = AgentSnapshots.backupComplete(c, r.snapshot());
          } catch (java.io.IOException e) {
            complete = new BackupCompleteOutcome(false, null, e.getMessage(), null);
          }
          if (!complete.ok()) {
            note.accept("the backup is good, but backup-complete of " + r.snapshot() + " failed, so its writers have "
                + "not released their logs: " + complete.error());
          }
        }
      }
      if (json) {
        ObjectNode o = JSON.createObjectNode().put("jobId", r.jobId()).put("volume", r.snapshot().volume())
            .put("volumeUuid", r.snapshot().volumeUuid()).put("snapshot", r.snapshot().snapshot())
            .put("snapshotId", r.snapshot().snapshotId()).put("size", r.snapshot().size()).put("level", r.level())
            .put("requestedLevel", r.requestedLevel()).put("fallback", r.fallback())
            .put("compression", compress.equals("none") ? "none" : "zstd:" + request.zstdLevel())
            .put("checksum", request.checksum().id());
        if (r.baseSnapshotId() >= 0) {
          o.put("baseSnapshotId", r.baseSnapshotId()).put("baseSnapshot", r.baseSnapshot());
        } else {
          o.putNull("baseSnapshotId").putNull("baseSnapshot");
        }
        o.put("cartridge", r.cartridge()).put("labelled", r.labelled()).put("fileNumber", r.fileNumber())
            .put("archiveBytes", r.archiveBytes()).put("dataBytes", r.dataBytes()).put("bytesRead", r.bytesRead())
            .put("chunks", r.chunks()).put("zeroChunks", r.zeroChunks()).put("seconds", r.seconds())
            .put("reconnects", r.reconnects());
        o.put("metadataSource", metadataSource);
        if (verified != null) {
          o.putObject("verified").put("chunks", r.chunks()).put("bytes", verified.bytes())
              .put("seconds", verified.seconds());
        } else {
          o.putNull("verified");
        }
        if (complete != null) {
          ObjectNode bc = o.putObject("backupComplete").put("ok", complete.ok());
          bc.set("writers", complete.writers());
          bc.put("error", complete.error());
          bc.put("previously", complete.previously());
        } else {
          o.putNull("backupComplete");
        }
        com.fasterxml.jackson.databind.node.ArrayNode pieces = o.putArray("pieces");
        r.pieces().forEach(p -> pieces.add(CatalogCommand.pieceJson(p)));
        o.putArray("notes").addAll(notes.stream().map(JSON.getNodeFactory()::textNode).toList());
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
      if (verified != null) {
        out().printf("Read back %d chunk%s (%s) with every checksum good in %s.%n", r.chunks(),
            r.chunks() == 1 ? "" : "s", Sizes.format(verified.bytes()), ProgressLine.duration(verified.seconds()));
      }
      if (complete != null && complete.ok()) {
        int n = complete.writers() == null ? 0 : complete.writers().size();
        out().printf("Told the agent backup-complete: %d writer%s released%s.%n", n, n == 1 ? "" : "s",
            complete.previously() != null ? " (reported before, at " + complete.previously() + ")" : "");
      }
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

    /** The zstd level of {@code --compress} (0 for none); a usage error for anything else. */
    private int zstdLevel(String value) {
      if (value.equals("none")) {
        return 0;
      }
      if (value.equals("zstd")) {
        return dev.shade.offhost.backup.ImageManifest.DEFAULT_ZSTD_LEVEL;
      }
      if (value.startsWith("zstd:")) {
        try {
          int l = Integer.parseInt(value.substring(5));
          if (l >= 1 && l <= 19) {
            return l;
          }
        } catch (NumberFormatException e) {
          // the usage error below
        }
        throw usage("--compress zstd:LEVEL takes a level from 1 to 19: " + value);
      }
      throw usage("--compress must be none, zstd or zstd:LEVEL (1..19): " + value);
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
      try (TapeLibrary lib = deviceOption.open(library, this);
          Catalog catalog = Catalog.open(deviceOption.catalog(library, catalogOption));
          ProgressLine progress = progress("backup")) {
        r = FilesBackupService.run(lib, catalog, id, fuseUri, request, progress::update, n -> {
          notes.add(n);
          if (!json) {
            progress.close();
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
        var pieces = o.putArray("pieces");
        for (var p : r.pieces()) {
          pieces.addObject().put("piece", p.piece()).put("cartridge", p.cartridge()).put("fileNumber", p.fileNumber())
              .put("bytes", p.bytes());
        }
        o.putArray("notes").addAll(notes.stream().map(JSON.getNodeFactory()::textNode).toList());
        printJson(o);
        return ExitCodes.OK;
      }
      out().printf("Backed up the files of %s@%s (id %d, %s) to cartridge %s, tape file %d: %d entries, %s in files "
              + "(%s stored, holes left out), archive %s, in %s.%n",
          r.snapshot().volume(), r.snapshot().snapshot(), r.snapshot().snapshotId(), r.filesystem(), r.cartridge(),
          r.fileNumber(), c.entries(), Sizes.format(c.bytes()), Sizes.format(c.dataBytes()),
          Sizes.format(r.archiveBytes()), ProgressLine.duration(r.seconds()));
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

    /** The writer metadata of a snapshot-show document in {@code file} (AgentSnapshots#writerMetadata), or null. */
    private JsonNode writerMetadata(Path file) throws Exception {
      if (file == null) {
        return null;
      }
      if (!Files.isRegularFile(file)) {
        throw new CommandException("metadata file does not exist: " + file);
      }
      return AgentSnapshots.writerMetadata(JSON.readTree(file.toFile()));
    }
  }
}
