package dev.shade.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.offhost.backup.Catalog;
import dev.shade.offhost.backup.FilesRestoreService;
import dev.shade.nbd.client.NbdClientConfig;
import dev.shade.nbd.client.NbdUri;
import dev.shade.offhost.backup.RestoreService;
import dev.shade.offhost.backup.RestoreSink;
import dev.shade.offhost.tape.TapeLibrary;
import dev.shade.provider.VolumeConfig;
import dev.shade.requestor.ops.VolumeCommands;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code shade restore}: a snapshot's image back from tape, into a file, a volume or an NBD export. */
@Command(
    name = "restore",
    header = "Restore a backed-up snapshot's image to a file, a volume or an NBD export, or some of its files to a "
        + "directory.",
    description = {
      "Finds the newest successful backup of the snapshot in the library's catalog and reads its chain, the "
          + "full and every incremental up to it, writing each chunk once (the newest piece wins) and checking "
          + "every chunk's SHA-256 and each archive's manifest. Only the tape files of the chain are read; an "
          + "archive that spans cartridges is read piece by piece, and each cartridge needed is named on stderr as "
          + "it is asked for. The file is sparse, of the snapshot's size; it equals 'shade snapshot export' of the "
          + "snapshot.",
      "",
      "What --to names: an nbd://HOST[:PORT]/EXPORT, nbds://... (TLS, with --tls-cert, --tls-key and --tls-ca as "
          + "for 'backup run') or nbd+unix:///EXPORT?socket=PATH URI is a writable NBD export, at least the "
          + "snapshot's size (a larger one keeps its bytes past the image); its whole image is written, the zero "
          + "ranges as NBD WRITE_ZEROES, so it holds exactly the snapshot whatever it held before, and it is flushed "
          + "at the end. An existing directory, or a path ending in '/', is a volume directory: a missing or empty "
          + "one gets a new shade volume of the snapshot's size and of the backed-up volume's block size (or "
          + "--block-size; 64K for backups that do not record it), an existing volume is "
          + "written into only with --force (through copy-on-write, so its snapshots keep what they hold; it must be "
          + "at least the snapshot's size and not held by an agent), and a directory holding anything else is "
          + "refused. Anything else is a FILE (replaced only with --force).",
      "",
      "The snapshot's writer metadata (PostgreSQL's backup_label and tablespace_map, kept in the archive with the "
          + "data) comes back with the image. A FILE gets FILE.snapshot.json beside it, the descriptor 'shade snapshot "
          + "export' writes (the snapshot's volume, uuid, id, name, creation time and the attributes the archive "
          + "carries, shade.writers among them; replaced only with --force, like the image), so 'shade snapshot "
          + "metadata --descriptor FILE.snapshot.json --write-to MOUNT' puts the files back into the mounted copy. A "
          + "volume gets, at the end of the restore, a snapshot named after the source snapshot (NAME-restored when "
          + "it has one of that name already) carrying those attributes: 'shade snapshot metadata DIR NAME "
          + "--write-to MOUNT'. An NBD export cannot hold it: --descriptor FILE writes the descriptor there, and "
          + "--json always shows it as writerMetadata. The summary names the writer files and the command that "
          + "writes them back.",
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
      "  shade restore --volume db --snapshot nightly --library /srv/vtl \\",
      "      --to /var/lib/shade/db-restored/            # a new volume",
      "  shade restore --volume db --snapshot nightly --library /srv/vtl --to nbd://db2:10809/db",
      "  shade restore --volume db --snapshot nightly --library /srv/vtl --to nbd://db2:10809/db \\",
      "      --descriptor /srv/restore/db.snapshot.json     # keeps the writer metadata",
      "  mount -o loop /tmp/db.img /mnt/copy && \\",
      "      shade snapshot metadata --descriptor /tmp/db.img.snapshot.json --write-to /mnt/copy",
      "  shade restore --volume db --snapshot nightly --library /srv/vtl --to nbds://db2/db \\",
      "      --tls-cert backup.pem --tls-key backup.key --tls-ca ca.pem",
      "  shade restore --volume db --snapshot nightly --device /dev/nst0 --to /tmp/db.img",
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

  @Option(names = "--library", paramLabel = "LIB", description = "The virtual tape library's directory (or --device).")
  Path library;

  @Mixin DeviceOption deviceOption;

  @Mixin CatalogOption catalogOption;

  @Option(names = "--to", paramLabel = "FILE|DIR/|nbd://...", required = true,
      description = "Where the image goes: a FILE, a volume directory (an existing directory or a path ending in "
          + "'/'), or an NBD URI (nbd://, nbds://, nbd+unix://); with --files, the directory to restore into.")
  String to;

  @Option(names = "--files", paramLabel = "PATTERN",
      description = "Restore the members matching this glob from the files archive (repeatable).")
  List<String> files;

  @Option(names = "--force", description = "Replace FILE (and FILE.snapshot.json, or --descriptor's file) if it "
      + "exists; restore into an existing volume.")
  boolean force;

  @Option(names = "--block-size", paramLabel = "SIZE", converter = Sizes.class,
      description = "Block size of a new volume (--to DIR): a power of two from 4K to 1M. Default: the backed-up "
          + "volume's, as its backup records it (64K when it does not).")
  Long blockSize;

  @Option(names = "--descriptor", paramLabel = "FILE",
      description = "With an NBD target: write the snapshot's descriptor (its attributes and writer metadata, as "
          + "'shade snapshot export' writes beside an image) to FILE.")
  Path descriptor;

  @Option(names = "--tls-cert", paramLabel = "FILE", description = "Client certificate (PEM) for nbds://.")
  Path tlsCert;

  @Option(names = "--tls-key", paramLabel = "FILE", description = "Its private key (PEM).")
  Path tlsKey;

  @Option(names = "--tls-ca", paramLabel = "FILE", description = "CA certificates (PEM) to trust for nbds://.")
  Path tlsCa;

  @Option(names = "--connections", paramLabel = "N", defaultValue = "4",
      description = "NBD connections to write through, when the server allows several (CAN_MULTI_CONN).")
  int connections;

  @Option(names = "--json", description = "Print one JSON object: volume, volumeUuid, snapshot, snapshotId, size, "
      + "target (file, volume or nbd), file | directory | export, bytesWritten, chunks, seconds, chain: [{jobId, "
      + "level, snapshot, snapshotId, cartridge, fileNumber}], writerMetadata (the archive's, or null), descriptor "
      + "(the descriptor file written, or null), metadataSnapshot (the restored volume's snapshot, or null), notes "
      + "(what stderr says without --json: the volume created, the cartridges asked for).")
  boolean json;

  @Override
  public Integer call() throws Exception {
    deviceOption.requireOne(library, "--library", this);
    if (files != null && !files.isEmpty()) {
      return restoreFiles();
    }
    Target target = target();
    RestoreService.Result r;
    List<String> notes = new ArrayList<>();
    try (TapeLibrary lib = deviceOption.open(library, this);
        Catalog catalog = Catalog.open(deviceOption.catalog(library, catalogOption));
        ProgressLine progress = progress("restore")) {
      CatalogCommand.markInterrupted(catalog, deviceOption.where(library), this);
      r = RestoreService.restore(lib, catalog, volume, snapshot, target.sink(), progress::update, n -> {
        notes.add(n);
        if (!json) {
          progress.close(); // a note starts on a clean line; the bar is drawn again on the next update
          err().println("shade restore: " + n);
          err().flush();
        }
      });
    }
    RestoredMetadata meta = new RestoredMetadata(r.snapshot(), r.writerMetadata());
    Path descriptorFile = null;
    String metadataSnapshot = null;
    if (target.kind().equals("file")) {
      Path image = Path.of(target.where());
      descriptorFile = VolumeCommands.descriptorPath(image);
      meta.writeDescriptor(descriptorFile, image.getFileName().toString());
    } else if (target.kind().equals("nbd") && descriptor != null) {
      descriptorFile = descriptor;
      meta.writeDescriptor(descriptorFile, to);
    } else if (target.kind().equals("volume")) {
      metadataSnapshot = meta.snapshotVolume(Path.of(target.where()));
    }
    if (json) {
      ObjectNode o = JSON.createObjectNode().put("volume", r.snapshot().volume())
          .put("volumeUuid", r.snapshot().volumeUuid()).put("snapshot", r.snapshot().snapshot())
          .put("snapshotId", r.snapshot().snapshotId()).put("size", r.snapshot().size())
          .put("target", target.kind()).put(target.key(), target.where()).put("bytesWritten", r.bytesWritten())
          .put("chunks", r.chunksWritten()).put("seconds", r.seconds());
      ArrayNode chain = o.putArray("chain");
      for (Catalog.JobRecord j : r.chain()) {
        chain.addObject().put("jobId", j.id()).put("level", j.level()).put("snapshot", j.snapshot().snapshot())
            .put("snapshotId", j.snapshot().snapshotId()).put("cartridge", j.archive().cartridge())
            .put("fileNumber", j.archive().fileNumber());
      }
      o.set("writerMetadata", meta.writerMetadata() == null ? JSON.nullNode() : meta.writerMetadata());
      o.put("descriptor", descriptorFile == null ? null : descriptorFile.toString());
      o.put("metadataSnapshot", metadataSnapshot);
      o.putArray("notes").addAll(notes.stream().map(JSON.getNodeFactory()::textNode).toList());
      printJson(o);
      return ExitCodes.OK;
    }
    StringBuilder chain = new StringBuilder();
    for (Catalog.JobRecord j : r.chain()) {
      chain.append(chain.length() == 0 ? "" : " + ").append(j.level()).append(' ').append(j.snapshot().snapshot())
          .append(" (").append(j.archive().cartridge()).append(':').append(j.archive().fileNumber()).append(')');
    }
    out().printf("Restored %s@%s (id %d) to %s: %s, %s in %d chunk%s from %s, in %s.%n", r.snapshot().volume(),
        r.snapshot().snapshot(), r.snapshot().snapshotId(), target.text(), Sizes.format(r.snapshot().size()),
        Sizes.format(r.bytesWritten()), r.chunksWritten(), r.chunksWritten() == 1 ? "" : "s", chain,
        ProgressLine.duration(r.seconds()));
    List<String> writerFiles = meta.files();
    String writeBack = descriptorFile != null
        ? "shade snapshot metadata --descriptor " + descriptorFile + " --write-to MOUNT"
        : metadataSnapshot != null ? "shade snapshot metadata " + target.where() + " " + metadataSnapshot
            + " --write-to MOUNT" : null;
    if (writerFiles.isEmpty()) {
      out().printf("The snapshot has no writer files%s.%n", metadataSnapshot != null
          ? "; its attributes are kept with snapshot '" + metadataSnapshot + "' of the restored volume"
          : descriptorFile != null ? "; its attributes are in " + descriptorFile : "");
    } else if (writeBack != null) {
      out().printf("Writer files of the snapshot, not in its blocks: %s; put them back into the mounted copy with: "
          + "%s%n", String.join(", ", writerFiles), writeBack);
    } else {
      out().printf("Writer files of the snapshot, not in its blocks: %s; an NBD export cannot hold them: restore "
          + "again with --descriptor FILE to keep them, then shade snapshot metadata --descriptor FILE --write-to "
          + "MOUNT (--json shows them as writerMetadata)%n", String.join(", ", writerFiles));
    }
    out().flush();
    return ExitCodes.OK;
  }

  private Integer restoreFiles() throws Exception {
    if (force) {
      throw usage("--force is for image restores; a files restore replaces files under DIR anyway");
    }
    if (isNbd(to)) {
      throw usage("--files restores into a directory, not an NBD export: " + to);
    }
    if (descriptor != null) {
      throw usage("--descriptor is for an image restore to an NBD export");
    }
    Path dir = Path.of(to);
    FilesRestoreService.Result r;
    try (TapeLibrary lib = deviceOption.open(library, this);
        Catalog catalog = Catalog.open(deviceOption.catalog(library, catalogOption));
        ProgressLine progress = progress("restore")) {
      r = FilesRestoreService.restore(lib, catalog, volume, snapshot, files, dir, p -> {}, progress::update);
    }
    var x = r.extracted();
    if (json) {
      ObjectNode o = JSON.createObjectNode().put("format", Catalog.FORMAT_FILES).put("volume", r.job().snapshot().volume())
          .put("volumeUuid", r.job().snapshot().volumeUuid()).put("snapshot", r.job().snapshot().snapshot())
          .put("snapshotId", r.job().snapshot().snapshotId()).put("jobId", r.job().id())
          .put("cartridge", r.job().archive().cartridge()).put("fileNumber", r.job().archive().fileNumber())
          .put("dir", dir.toAbsolutePath().toString()).put("restored", x.restored().size()).put("files", x.files())
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
        r.job().archive().cartridge(), r.job().archive().fileNumber(), dir, ProgressLine.duration(r.seconds()));
    out().flush();
    return ExitCodes.OK;
  }

  /**
   * What --to names, and its sink. {@code kind}: file, volume or nbd; {@code key}, {@code where}:
   * its --json field and value; {@code text}: how the summary line names it.
   */
  private record Target(String kind, String key, String where, String text, RestoreSink sink) {}

  /** True for the NBD URI schemes (nbd, nbds, nbd+unix, nbds+unix). */
  static boolean isNbd(String to) {
    String t = to.toLowerCase(Locale.ROOT);
    return t.startsWith("nbd://") || t.startsWith("nbds://") || t.startsWith("nbd+unix://")
        || t.startsWith("nbds+unix://");
  }

  /** Tells an NBD export, a volume directory and a file apart, and refuses what cannot be one. */
  private Target target() throws Exception {
    if (isNbd(to)) {
      if (blockSize != null) {
        throw usage("--block-size is for a new volume (--to DIR); an NBD export has no block size: " + to);
      }
      NbdClientConfig config;
      try {
        NbdClientConfig.Builder b = NbdClientConfig.builder(NbdUri.parse(to));
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
      if (connections < 1) {
        throw usage("--connections must be at least 1: " + connections);
      }
      checkDescriptor(descriptor);
      return new Target("nbd", "export", to, "NBD export " + to, RestoreSink.nbd(config, connections));
    }
    if (descriptor != null) {
      throw usage("--descriptor is for an NBD target; a FILE gets FILE.snapshot.json, a volume a snapshot: " + to);
    }
    if (tlsCert != null || tlsKey != null || tlsCa != null) {
      throw usage("--tls-cert, --tls-key and --tls-ca are for an nbds:// target: " + to);
    }
    Path path = Path.of(to);
    if (Files.isDirectory(path) || to.endsWith("/")) {
      if (blockSize != null && !VolumeConfig.isBlockSize(blockSize)) {
        throw usage("block size must be a power of two between 4K and 1M: " + blockSize);
      }
      VolumeRestoreSink.check(path, force);
      return new Target("volume", "directory", path.toAbsolutePath().toString(), "volume " + path,
          new VolumeRestoreSink(path, blockSize == null ? 0 : blockSize.intValue()));
    }
    if (blockSize != null) {
      throw usage("--block-size is for a new volume (--to DIR); a FILE has no block size: " + to);
    }
    if (!Files.exists(path)) { // an existing image is refused (without --force) by the sink, naming it
      checkDescriptor(VolumeCommands.descriptorPath(path));
    }
    return new Target("file", "file", path.toAbsolutePath().toString(), to, RestoreSink.file(path, force));
  }

  /** Refuses, before reading any tape, to replace an existing descriptor file without --force. */
  private void checkDescriptor(Path file) throws CommandException {
    if (file != null && !force && Files.exists(file)) {
      throw new CommandException(file + " exists; pass --force to replace it (it describes the image restored "
          + "beside it)");
    }
  }
}
