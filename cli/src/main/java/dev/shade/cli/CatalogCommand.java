package dev.shade.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.shade.offhost.backup.Catalog;
import dev.shade.offhost.backup.CatalogLocation;
import dev.shade.offhost.backup.CatalogRebuild;
import dev.shade.offhost.backup.ChunkEntry;
import dev.shade.offhost.backup.PieceEntry;
import dev.shade.offhost.backup.TapeRecords;
import dev.shade.offhost.tape.CartridgeInfo;
import dev.shade.offhost.tape.TapeLibrary;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Optional;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code shade catalog}: what a library's backup catalog records. */
@Command(
    name = "catalog",
    header = "Show the backup catalog of a tape library, or rebuild it from the tapes.",
    mixinStandardHelpOptions = true,
    subcommands = {CatalogCommand.ListJobs.class, CatalogCommand.Show.class, CatalogCommand.Drills.class,
        CatalogCommand.Rebuild.class})
final class CatalogCommand extends CommandGroup {

  /** A job as one JSON object. */
  static ObjectNode jobJson(Catalog.JobRecord j) {
    ObjectNode o = ShadeCommand.JSON.createObjectNode().put("jobId", j.id()).put("volume", j.snapshot().volume())
        .put("volumeUuid", j.snapshot().volumeUuid()).put("snapshot", j.snapshot().snapshot())
        .put("snapshotId", j.snapshot().snapshotId()).put("size", j.snapshot().size());
    if (j.snapshot().blockSize() > 0) {
      o.put("volumeBlockSize", j.snapshot().blockSize());
    } else {
      o.putNull("volumeBlockSize");
    }
    o.put("format", j.format()).put("level", j.level());
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
          .put("bytes", j.archive().bytes()).put("manifestSha256", j.archive().manifestSha256())
          .put("chunkChecksum", j.archive().chunkChecksum().id());
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
  /** Where the records of a verify or a drill went on tape: {written: [{cartridge, fileNumber}], notWritten: [text]}. */
  static ObjectNode tapeRecordsJson(TapeRecords.Result r) {
    ObjectNode o = ShadeCommand.JSON.createObjectNode();
    ArrayNode w = o.putArray("written");
    r.written().forEach(at -> w.addObject().put("cartridge", at.cartridge()).put("fileNumber", at.fileNumber()));
    ArrayNode n = o.putArray("notWritten");
    r.notWritten().forEach(n::add);
    return o;
  }

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

  /**
   * Marks failed the jobs of {@code library} that a backup process of this host left running when
   * it died, telling stderr (docs/backup.md, "When a backup is interrupted").
   */
  static void markInterrupted(Catalog catalog, Path library, ShadeCommand command) throws java.io.IOException {
    dev.shade.offhost.backup.InterruptedJobs.mark(catalog, library, n -> {
      command.err().println("shade: " + n);
      command.err().flush();
    });
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
        + "snapshot, snapshotId, size, format (image or files), level, baseSnapshotId, baseJobId, pool, chunkSize, "
        + "started, ended, outcome, "
        + "message, bytes, archive: {cartridge, fileNumber, bytes, manifestSha256, chunkChecksum (crc32c or sha-256: the checksum of "
        + "its chunks)}}]}.")
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
        markInterrupted(c, library, this);
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
      if (drills) {
        printHistory(out(), drillList, verifications);
      }
      out().flush();
      return ExitCodes.OK;
    }
  }

  /** A piece as one JSON object. */
  static ObjectNode pieceJson(PieceEntry p) {
    return ShadeCommand.JSON.createObjectNode().put("piece", p.piece()).put("cartridge", p.cartridge())
        .put("fileNumber", p.fileNumber()).put("bytes", p.bytes()).put("firstOffset", p.firstOffset())
        .put("endOffset", p.endOffset()).put("chunks", p.chunks());
  }

  /** {@code shade catalog show}. */
  @Command(
      name = "show",
      header = "Show one backup job: what, when, its archive's pieces and checksums.",
      description = {
        "JOB is a job number; VOLUME (a name or uuid) shows the volume's newest successful backup, VOLUME@SNAPSHOT "
            + "(a name, an id or id=N) that snapshot's. The pieces are the tape files the archive is on, one per "
            + "cartridge it spans, in the order a restore reads them."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExamples:%n",
      footer = {"  shade catalog show 7 --library /srv/vtl", "  shade catalog show db@nightly --library /srv/vtl --json"})
  static final class Show extends ShadeCommand {
    @Parameters(index = "0", paramLabel = "JOB|VOLUME[@SNAPSHOT]", description = "The job.")
    String what;

    @Option(names = "--library", paramLabel = "LIB", required = true, description = "The virtual tape library's directory.")
    Path library;

    @Option(names = "--json", description = "Print one JSON object: the job as 'catalog list --json' has it, plus "
        + "record: {cartridge, fileNumber} (its record on tape), pieces: [{piece, cartridge, fileNumber, bytes, "
        + "firstOffset, endOffset, chunks}], chunks: [{offset, length, checksum (of the archive's chunkChecksum), zero, piece}], verifications: [as "
        + "shade verify --json's archives] and drills: [as shade drill --json] that restored this job.")
    boolean json;

    @Mixin CatalogOption catalogOption;

    @Override
    public Integer call() throws Exception {
      if (!catalogOption.given() && !Files.isRegularFile(library.resolve(Catalog.FILE))) {
        TapeCommand.open(library).close(); // says what is wrong with the directory, if anything
        throw new CommandException("the library has no catalog (" + Catalog.FILE + "); 'shade catalog rebuild "
            + "--library " + library + "' makes one from the tapes");
      }
      try (Catalog c = Catalog.open(catalogOption.location(library))) {
        markInterrupted(c, library, this);
        Catalog.JobRecord j = find(c).orElseThrow(() -> new CommandException("no backup job " + what
            + " in the catalog of " + library));
        List<PieceEntry> pieces = j.archive() == null ? List.of() : c.pieces(j.archive());
        List<ChunkEntry> chunks = j.archive() == null ? List.of() : c.chunks(j.archive().id());
        Optional<Catalog.RecordLocation> record = c.recordLocation(j.id());
        Optional<dev.shade.offhost.backup.JobOwner> owner = c.owner(j.id());
        if (json) {
          ObjectNode o = jobJson(j);
          if (owner.isPresent()) {
            dev.shade.offhost.backup.JobOwner w = owner.get();
            o.putObject("process").put("host", w.host()).put("pid", w.pid())
                .put("started", w.processStarted() == null ? null : w.processStarted().toString())
                .put("library", w.library());
          } else {
            o.putNull("process");
          }
          if (record.isPresent()) {
            o.putObject("record").put("cartridge", record.get().cartridge()).put("fileNumber", record.get().fileNumber());
          } else {
            o.putNull("record");
          }
          ArrayNode pa = o.putArray("pieces");
          pieces.forEach(p -> pa.add(pieceJson(p)));
          ArrayNode ca = o.putArray("chunks");
          for (ChunkEntry ch : chunks) {
            ca.addObject().put("offset", ch.offset()).put("length", ch.length()).put("checksum", ch.checksum())
                .put("zero", ch.zero()).put("piece", pieceOf(pieces, ch.offset()));
          }
          history(o, c, j);
          printJson(o);
          return ExitCodes.OK;
        }
        out().printf("Job %d: %s backup of %s@%s (snapshot id %d) of volume %s (%s), %s%n", j.id(), j.level(),
            j.snapshot().volume(), j.snapshot().snapshot(), j.snapshot().snapshotId(), j.snapshot().volume(),
            j.snapshot().volumeUuid(), Sizes.format(j.snapshot().size()));
        if (j.baseSnapshotId() >= 0) {
          out().printf("  base:      job %d (snapshot id %d)%n", j.baseJobId(), j.baseSnapshotId());
        }
        out().printf("  pool:      %s, chunks of %s%n", j.pool(), Sizes.format(j.chunkSize()));
        out().printf("  started:   %s%n  ended:     %s%n", j.started(), j.ended() == null ? "-" : j.ended());
        out().printf("  outcome:   %s%s%n", j.outcome(), j.message() == null ? "" : " (" + j.message() + ")");
        out().printf("  record:    %s%n", record.map(r -> r.cartridge() + ", tape file " + r.fileNumber())
            .orElse("not on tape"));
        owner.ifPresent(w -> out().printf("  process:   pid %d on host %s%s, library %s%n", w.pid(), w.host(),
            w.processStarted() == null ? "" : " (started " + w.processStarted() + ")", w.library()));
        if (j.archive() != null) {
          int zero = 0;
          for (ChunkEntry ch : chunks) {
            zero += ch.zero() ? 1 : 0;
          }
          out().printf("  archive:   %s of tape, %s of data in %d chunk%s%s (%s), manifest SHA-256 %s%n",
              Sizes.format(j.archive().bytes()), Sizes.format(j.bytes()), chunks.size() - zero,
              chunks.size() - zero == 1 ? "" : "s", zero == 0 ? "" : " (and " + zero + " zero)",
              Catalog.FORMAT_FILES.equals(j.format()) ? "each file's SHA-256 in its manifest"
                  : j.archive().chunkChecksum() + " of each", j.archive().manifestSha256());
          out().printf("  pieces:%n  %5s  %-12s %4s  %10s  %-37s %s%n", "piece", "cartridge", "file", "bytes",
              "image offsets", "chunks");
          for (PieceEntry p : pieces) {
            out().printf("  %5d  %-12s %4d  %10d  %-37s %d%n", p.piece() + 1, p.cartridge(), p.fileNumber(), p.bytes(),
                p.chunks() == 0 ? "-" : String.format("0x%016x-0x%016x", p.firstOffset(), p.endOffset()),
                p.chunks());
          }
        }
        history(null, c, j);
        out().flush();
        return ExitCodes.OK;
      }
    }

    /** The job {@link #what} names. */
    private Optional<Catalog.JobRecord> find(Catalog c) throws IOException {
      if (what.matches("[0-9]{1,18}")) {
        return c.job(Long.parseLong(what));
      }
      int at = what.indexOf('@');
      if (at > 0) {
        return c.find(what.substring(0, at), what.substring(at + 1));
      }
      Catalog.JobRecord newest = null;
      for (Catalog.JobRecord j : c.jobs()) {
        if ((j.snapshot().volume().equals(what) || j.snapshot().volumeUuid().equals(what))
            && Catalog.OK.equals(j.outcome())) {
          newest = j;
        }
      }
      return Optional.ofNullable(newest);
    }

    /**
     * The job's verifications (shade verify, and the read-back of backup run --agent) and the drills
     * whose restore used it: to {@code json} when it is not null, else as text.
     */
    private void history(ObjectNode json, Catalog c, Catalog.JobRecord j) throws IOException {
      List<Catalog.VerificationRecord> verifications = c.verifications().stream()
          .filter(v -> v.jobId() == j.id()).toList();
      List<Catalog.DrillRecord> drills = c.drills(j.snapshot().volumeUuid()).stream()
          .filter(d -> d.jobChain().contains(j.id())).toList();
      if (json != null) {
        ArrayNode va = json.putArray("verifications");
        verifications.forEach(v -> va.add(verificationJson(v)));
        ArrayNode da = json.putArray("drills");
        drills.forEach(d -> da.add(drillJson(d)));
        return;
      }
      printHistory(out(), drills, verifications);
    }

    private static int pieceOf(List<PieceEntry> pieces, long offset) {
      for (PieceEntry p : pieces) {
        if (p.holds(offset)) {
          return p.piece();
        }
      }
      return 0;
    }
  }

  /** {@code shade catalog rebuild}. */
  @Command(
      name = "rebuild",
      header = "Recreate a library's catalog from its tapes alone.",
      description = {
        "Scans every cartridge of LIB: its label, its tape files, the job record each backup writes after its "
            + "archive, the records each verify and drill writes after it, and the header of every archive piece; "
            + "recreates every job, archive, piece, chunk, verification and drill row, with their ids and times, and "
            + "checks every piece a record lists against the tape. What does not "
            + "add up (a truncated cartridge, a missing one, pieces without a job record) is reported, naming the "
            + "cartridge and tape file, and makes the exit code 1.",
        "",
        "The library must have no catalog (catalog.db), or one without jobs; --force moves an existing one to "
            + "catalog.db.old first.",
        "",
        "With --device DEV (a real tape drive), every cartridge the drive has seen (remembered in "
            + "/var/lib/shade/drives/DEVNAME.json) is scanned, the operator being asked to load each in turn; the "
            + "catalog is --catalog, or /var/lib/shade/catalog.db."
      },
      mixinStandardHelpOptions = true,
      footerHeading = "%nExit codes:%n  0  rebuilt, nothing to report%n  1  rebuilt with problems (listed), or "
          + "failed%n  2  usage%n%nExamples:%n",
      footer = {"  shade catalog rebuild --library /srv/vtl", "  shade catalog rebuild --library /srv/vtl --json",
          "  shade catalog rebuild --device /dev/nst0     # asks for each cartridge the drive has seen"})
  static final class Rebuild extends ShadeCommand {
    @Option(names = "--library", paramLabel = "LIB", description = "The virtual tape library's directory (or --device).")
    Path library;

    @Mixin DeviceOption deviceOption;

    @Option(names = "--catalog", paramLabel = "URL", converter = CatalogOption.Url.class,
        description = "With --device: the catalog to rebuild (default: /var/lib/shade/catalog.db); it must have no "
            + "jobs.")
    CatalogLocation catalogUrl;

    @Option(names = "--force", description = "Move an existing catalog.db (with jobs) to catalog.db.old first.")
    boolean force;

    @Option(names = "--json", description = "Print one JSON object: library, cartridges, blank, jobs, archives, "
        + "pieces, chunks, verifications, drills, problems: [text], seconds.")
    boolean json;

    @Override
    public Integer call() throws Exception {
      deviceOption.requireOne(library, "--library", this);
      if (catalogUrl != null && library != null) {
        throw usage("--catalog goes with --device: a virtual library's catalog is rebuilt in LIB/" + Catalog.FILE);
      }
      Path home = library != null ? library : DeviceOption.stateDir(); // where the default catalog.db is
      CatalogRebuild.Result r;
      try (TapeLibrary lib = deviceOption.open(library, this)) {
        if (catalogUrl == null && Files.isRegularFile(home.resolve(Catalog.FILE))) {
          int jobs;
          int others;
          try (Catalog c = Catalog.open(home)) {
            jobs = c.jobs().size();
            others = c.verifications().size() + c.drills(null).size();
          }
          if (jobs > 0 || others > 0) {
            if (!force) {
              String what = jobs > 0 ? jobs + " job" + (jobs == 1 ? "" : "s")
                  : others + " verification and drill row" + (others == 1 ? "" : "s");
              throw new CommandException("the library already has a catalog with " + what + " ("
                  + home.resolve(Catalog.FILE) + "); --force moves it to " + Catalog.FILE + ".old and rebuilds");
            }
            for (String suffix : List.of("", "-wal", "-shm")) {
              Path f = home.resolve(Catalog.FILE + suffix);
              Path old = home.resolve(Catalog.FILE + ".old" + suffix);
              if (Files.exists(f)) {
                Files.move(f, old, StandardCopyOption.REPLACE_EXISTING);
              } else {
                Files.deleteIfExists(old);
              }
            }
            if (!json) {
              err().println("shade catalog rebuild: moved the catalog to " + home.resolve(Catalog.FILE + ".old"));
            }
          }
        }
        int slots = lib.slots();
        int[] slot = {0};
        // the progress in bytes of the cartridges scanned so far, of all of them: a real drive winds through them
        long[] upTo = new long[slots + 1];
        for (CartridgeInfo info : lib.list()) {
          if (info.slot() >= 1 && info.slot() <= slots) {
            upTo[info.slot()] = info.usedBytes();
          }
        }
        for (int i = 1; i <= slots; i++) {
          upTo[i] += upTo[i - 1];
        }
        if (catalogUrl == null) {
          Files.createDirectories(home);
        }
        try (Catalog c = Catalog.open(catalogUrl != null ? catalogUrl : CatalogLocation.inLibrary(home));
            ProgressLine progress = progress("rebuild")) {
          r = CatalogRebuild.rebuild(lib, c, (done, total) -> {
            slot[0] = (int) done;
            progress.update(upTo[(int) Math.max(0, Math.min(slots, done))], upTo[slots]);
          }, n -> {
            if (!json) {
              progress.close();
              err().println("shade catalog rebuild: [" + Math.min(slots, slot[0] + 1) + "/" + slots + "] " + n);
              err().flush();
            }
          });
        }
      }
      if (json) {
        ObjectNode o = JSON.createObjectNode().put("library", deviceOption.where(library).toAbsolutePath().toString())
            .put("cartridges", r.cartridges()).put("blank", r.blank()).put("jobs", r.jobs())
            .put("archives", r.archives()).put("pieces", r.pieces()).put("chunks", r.chunks())
            .put("verifications", r.verifications()).put("drills", r.drills());
        ArrayNode p = o.putArray("problems");
        r.problems().forEach(p::add);
        o.put("seconds", r.seconds());
        printJson(o);
      } else {
        out().printf("Rebuilt the catalog of %s from %d cartridge%s (%d blank): %d job%s, %d archive%s in %d piece%s, "
                + "%d chunks, %d verification%s, %d drill%s, in %s%s%n", deviceOption.where(library), r.cartridges(), r.cartridges() == 1 ? "" : "s", r.blank(), r.jobs(),
            r.jobs() == 1 ? "" : "s", r.archives(), r.archives() == 1 ? "" : "s", r.pieces(),
            r.pieces() == 1 ? "" : "s", r.chunks(), r.verifications(), r.verifications() == 1 ? "" : "s", r.drills(),
            r.drills() == 1 ? "" : "s", ProgressLine.duration(r.seconds()),
            r.problems().isEmpty() ? "." : "; " + r.problems().size() + " problem" + (r.problems().size() == 1 ? "" : "s")
                + ":");
        for (String problem : r.problems()) {
          out().println("  " + problem);
        }
        out().flush();
      }
      return r.problems().isEmpty() ? ExitCodes.OK : ExitCodes.FAILURE;
    }
  }
}
