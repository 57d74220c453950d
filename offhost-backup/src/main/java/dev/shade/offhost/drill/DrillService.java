package dev.shade.offhost.drill;

import dev.shade.offhost.backup.BackupException;
import dev.shade.offhost.backup.BackupProgress;
import dev.shade.offhost.backup.Catalog;
import dev.shade.offhost.backup.RestoreService;
import dev.shade.offhost.backup.TapeRecords;
import dev.shade.offhost.tape.TapeLibrary;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * The fire drill: restores the newest backed-up snapshot of a volume from tape to a scratch
 * image, attaches it to a loop device, checks its filesystem ({@code fsck -n}), mounts it, puts
 * back the writer metadata its archive holds, runs each database's own check, and records the
 * drill, every step with its result and time, in the catalog and on tape ({@link
 * dev.shade.offhost.backup.DrillRecordFile}). The scratch copy is unmounted,
 * detached and deleted afterwards, also when a step failed.
 *
 * <p>Needs root (loop devices, mount). Not thread-safe: one drill at a time per library.
 */
public final class DrillService {
  /*
   * Steps run in order; the first failure marks the drill failed and skips the steps after it
   * up to the clean-up, which always runs (unmount, detach, delete) and whose own failures are
   * recorded too. The restore is RestoreService's, so it reads only the chain's tape files and
   * checks every checksum; "time to first byte" is from its start to its first chunk written.
   */

  /** A step that was not run because an earlier one failed. */
  public static final String SKIPPED = "skipped";

  /**
   * What to drill.
   *
   * @param volume the volume's name or uuid
   * @param checks database checks: {@code postgres[:PGDATA]}, {@code sqlite:DB_PATH}
   * @param counts tables whose rows each database check counts ({@code [DATABASE.]TABLE})
   * @param scratch the directory under which the drill makes its own scratch directory
   * @param keep true to keep the scratch image (unmounted and detached) for a look afterwards
   */
  public record Request(String volume, List<String> checks, List<String> counts, Path scratch, boolean keep) {
    public Request {
      checks = List.copyOf(checks);
      counts = List.copyOf(counts);
      for (String c : checks) {
        DatabaseCheck.parse(c); // validates
      }
      for (String t : counts) {
        if (!t.matches("[A-Za-z_][A-Za-z0-9_$]*(\\.[A-Za-z_][A-Za-z0-9_$]*){0,2}")) {
          throw new IllegalArgumentException("a table to count is [DATABASE.]TABLE, letters, digits and _: " + t);
        }
      }
    }
  }

  private DrillService() {}

  /**
   * Runs the drill of {@code request} and records it in {@code catalog}; {@code steps} hears
   * each step as it ends. A failed drill is a result (its outcome {@link Catalog#FAILED}), not an
   * exception; this throws only when the drill cannot be recorded.
   */
  public static Catalog.DrillRecord run(TapeLibrary library, Catalog catalog, Request request,
      BackupProgress progress, Consumer<Catalog.DrillStep> steps) throws IOException {
    return run(library, catalog, request, progress, steps, n -> { }).drill();
  }

  /**
   * A drill and where its record went on tape.
   *
   * @param drill the drill as the catalog now holds it
   * @param records the drill's record on tape (and any earlier record not on tape yet), or why it
   *     could not go there
   */
  public record Outcome(Catalog.DrillRecord drill, TapeRecords.Result records) {}

  /**
   * {@link #run(TapeLibrary, Catalog, Request, BackupProgress, Consumer)}, then the drill's
   * record written on tape ({@link TapeRecords}); {@code notes} hears where it went; why it could
   * not go on tape is in the outcome's {@code records}, and does not change the drill's outcome.
   */
  public static Outcome run(TapeLibrary library, Catalog catalog, Request request, BackupProgress progress,
      Consumer<Catalog.DrillStep> steps, Consumer<String> notes) throws IOException {
    Drill d = new Drill(library, catalog, request, progress, steps);
    d.run();
    Catalog.DrillRecord r = d.record();
    long id = catalog.addDrill(r);
    Catalog.DrillRecord recorded = new Catalog.DrillRecord(id, r.volume(), r.volumeUuid(), r.snapshot(),
        r.snapshotId(), r.jobChain(), r.started(), r.ended(), r.outcome(), r.failedStep(), r.error(),
        r.firstByteSeconds(), r.restoreSeconds(), r.bytesRestored(), r.fsck(), r.databaseCheck(), r.steps());
    return new Outcome(recorded, TapeRecords.writePending(library, catalog, notes));
  }

  /** The newest successful backup of the volume {@code volume} (name or uuid): the highest snapshot id. */
  static Optional<Catalog.JobRecord> newest(Catalog catalog, String volume) throws IOException {
    return catalog.jobs().stream()
        .filter(j -> Catalog.OK.equals(j.outcome()) && j.archive() != null
            && (volume.equals(j.snapshot().volume()) || volume.equals(j.snapshot().volumeUuid())))
        .max(Comparator.comparing((Catalog.JobRecord j) -> j.snapshot().created())
            .thenComparingLong(j -> j.snapshot().snapshotId()).thenComparingLong(Catalog.JobRecord::id));
  }

  /** One drill's state, step by step. */
  private static final class Drill {
    /** Where the archives are. */
    private final TapeLibrary library;
    /** Where the backups are found and the drill is recorded. */
    private final Catalog catalog;
    /** What was asked. */
    private final Request request;
    /** Hears the restore's progress. */
    private final BackupProgress progress;
    /** Hears each step as it ends. */
    private final Consumer<Catalog.DrillStep> listener;
    /** When the drill began. */
    private final Instant started = Instant.ofEpochMilli(System.currentTimeMillis());
    /** The steps so far. */
    private final List<Catalog.DrillStep> steps = new ArrayList<>();
    /** The first failed step, or null. */
    private String failedStep;
    /** That step's name and message, or null. */
    private String error;
    /** The backup restored; null until found. */
    private Catalog.JobRecord job;
    /** The jobs restored, full first. */
    private List<Long> chain = List.of();
    /** From the restore's start to its first chunk written; -1 until known. */
    private double firstByteSeconds = -1;
    /** The whole restore; -1 until it ended. */
    private double restoreSeconds = -1;
    /** Chunk data written to the image. */
    private long bytesRestored;
    /** fsck's verdict; null until it ran. */
    private String fsck;
    /** Each database check's verdict. */
    private final List<String> databaseChecks = new ArrayList<>();
    /** This drill's directory under the scratch directory; null until made. */
    private Path work;
    /** The restored image in it; null until named. */
    private Path image;
    /** The loop device on the image; null until attached. */
    private LoopDevice loop;
    /** The copy's filesystem mounted; null until mounted. */
    private Mount mount;
    /** The filesystem type blkid found; "" until then or when it found none. */
    private String fsType = "";
    /** The writer metadata of the restored snapshot's archive. */
    private WriterFiles metadata = WriterFiles.of(null);

    Drill(TapeLibrary library, Catalog catalog, Request request, BackupProgress progress,
        Consumer<Catalog.DrillStep> listener) {
      this.library = library;
      this.catalog = catalog;
      this.request = request;
      this.progress = progress;
      this.listener = listener;
    }

    /** A step: does its work and returns the detail to record. */
    private interface Work {
      String run() throws Exception;
    }

    /** Runs {@code work} as step {@code name}, unless an earlier step failed (and {@code always} is false). */
    private boolean step(String name, boolean always, Work work) {
      if (failedStep != null && !always) {
        add(new Catalog.DrillStep(name, SKIPPED, 0, "an earlier step failed: " + failedStep));
        return false;
      }
      long t0 = System.nanoTime();
      try {
        String detail = work.run();
        add(new Catalog.DrillStep(name, Catalog.OK, (System.nanoTime() - t0) / 1e9, detail));
        return true;
      } catch (Exception e) {
        String message = e.getMessage() == null ? e.toString() : e.getMessage();
        add(new Catalog.DrillStep(name, Catalog.FAILED, (System.nanoTime() - t0) / 1e9, message));
        if (failedStep == null) {
          failedStep = name;
          error = name + ": " + message;
        }
        return false;
      }
    }

    private void add(Catalog.DrillStep s) {
      steps.add(s);
      listener.accept(s);
    }

    void run() {
      step("find", false, this::find);
      step("restore", false, this::restore);
      step("attach", false, () -> {
        loop = LoopDevice.attach(image);
        return loop.device() + " (read-write, on the scratch copy)";
      });
      step("fsck", false, () -> {
        fsType = FilesystemCheck.type(loop.device());
        FilesystemCheck.Verdict v = FilesystemCheck.check(loop.device(), fsType);
        fsck = (fsType.isEmpty() ? "unknown filesystem" : fsType) + ": " + (v.clean() ? "clean" : "NOT clean")
            + " (" + v.summary() + ")";
        if (!v.clean()) {
          throw new IOException(fsck);
        }
        return fsck;
      });
      step("mount", false, () -> {
        Path mp = Files.createDirectories(work.resolve("mnt"));
        mount = Mount.mount(loop.device(), fsType, mp);
        return mount.toString();
      });
      step("metadata", false, () -> {
        List<String> written = metadata.writeTo(mount.mountPoint());
        return written.isEmpty() ? "no writer metadata files" : "put back " + String.join(", ", written);
      });
      for (String spec : request.checks()) {
        DatabaseCheck check = DatabaseCheck.parse(spec);
        step("check:" + spec, false, () -> {
          Path w = Files.createDirectories(work.resolve("check-" + databaseChecks.size()));
          DatabaseCheck.Verdict v = check.run(mount.mountPoint(), metadata, w, request.counts());
          databaseChecks.add(spec + ": " + (v.ok() ? "ok" : "FAILED") + " (" + v.summary() + ")");
          if (!v.ok()) {
            throw new IOException(v.summary());
          }
          return v.summary();
        });
      }
      // clean-up: always; but a copy still mounted is neither detached nor deleted (a deleted
      // image under a live mount would leave the mount behind for good): the step says what to do
      boolean mounted = mount != null && !step("unmount", true, () -> {
        mount.close();
        return "unmounted " + mount.mountPoint();
      });
      if (mounted) {
        add(new Catalog.DrillStep("detach", SKIPPED, 0, "the copy is still mounted at " + mount.mountPoint()
            + ": unmount it, then losetup --detach " + loop.device() + " and delete " + work));
        return;
      }
      boolean attached = loop != null && !step("detach", true, () -> {
        loop.close();
        return "detached " + loop.device();
      });
      if (attached) {
        add(new Catalog.DrillStep("delete", SKIPPED, 0, "the image is still attached to " + loop.device()
            + ": losetup --detach it, then delete " + work));
        return;
      }
      if (work != null) {
        step("delete", true, () -> {
          if (request.keep() && image != null && Files.exists(image)) {
            if (mount != null) {
              Files.deleteIfExists(mount.mountPoint());
            }
            return "kept " + image;
          }
          deleteTree(work);
          return "deleted " + work;
        });
      }
    }

    private String find() throws IOException {
      job = newest(catalog, request.volume()).orElseThrow(() -> new BackupException("the catalog of " + library
          + " has no successful backup of volume " + request.volume()));
      return job.snapshot().volume() + "@" + job.snapshot().snapshot() + " (id " + job.snapshot().snapshotId()
          + ", created " + job.snapshot().created() + "), " + job.level() + " backup job " + job.id();
    }

    private String restore() throws IOException {
      String stamp = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss").withZone(ZoneOffset.UTC).format(started);
      Files.createDirectories(request.scratch());
      String name = "drill-" + safe(job.snapshot().volume()) + "-" + stamp;
      work = request.scratch().resolve(name);
      for (int n = 2; ; n++) {
        try {
          Files.createDirectory(work);
          break;
        } catch (java.nio.file.FileAlreadyExistsException e) {
          work = request.scratch().resolve(name + "-" + n);
        }
      }
      // the database's own user (postgres) must reach the copy mounted here
      Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
      image = work.resolve(safe(job.snapshot().volume()) + "-" + job.snapshot().snapshotId() + ".img");
      long t0 = System.nanoTime();
      BackupProgress timed = (done, total) -> {
        if (firstByteSeconds < 0 && done > 0) {
          firstByteSeconds = (System.nanoTime() - t0) / 1e9;
        }
        progress.update(done, total);
      };
      RestoreService.Result r = RestoreService.restore(library, catalog, job.snapshot().volumeUuid(),
          "id=" + job.snapshot().snapshotId(), image, false, timed);
      restoreSeconds = r.seconds();
      bytesRestored = r.bytesWritten();
      List<Long> ids = new ArrayList<>();
      StringBuilder from = new StringBuilder();
      for (Catalog.JobRecord j : r.chain()) {
        ids.add(j.id());
        from.append(from.length() == 0 ? "" : " + ").append(j.level()).append(" job ").append(j.id()).append(" (")
            .append(j.archive().cartridge()).append(':').append(j.archive().fileNumber()).append(')');
      }
      chain = ids;
      metadata = WriterFiles.of(r.writerMetadata());
      return String.format(java.util.Locale.ROOT, "%d bytes in %d chunks from %s to %s; first byte after %.3f s, "
          + "restore %.3f s; %d writer metadata file%s", r.bytesWritten(), r.chunksWritten(), from, image,
          Math.max(0, firstByteSeconds), r.seconds(), metadata.fileCount(), metadata.fileCount() == 1 ? "" : "s");
    }

    Catalog.DrillRecord record() {
      if (job == null) {
        chain = List.of();
      } else if (chain.isEmpty()) {
        chain = List.of(job.id());
      }
      return new Catalog.DrillRecord(-1, request.volume(), job == null ? null : job.snapshot().volumeUuid(),
          job == null ? null : job.snapshot().snapshot(), job == null ? -1 : job.snapshot().snapshotId(), chain,
          started, Instant.ofEpochMilli(System.currentTimeMillis()), failedStep == null ? Catalog.OK : Catalog.FAILED,
          failedStep, error, firstByteSeconds, restoreSeconds, bytesRestored, fsck,
          databaseChecks.isEmpty() ? null : String.join("; ", databaseChecks), steps);
    }
  }

  private static String safe(String name) {
    return name.replaceAll("[^A-Za-z0-9._-]", "_");
  }

  private static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (var walk = Files.walk(dir)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }
}
