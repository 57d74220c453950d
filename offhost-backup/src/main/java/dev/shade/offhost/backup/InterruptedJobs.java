package dev.shade.offhost.backup;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.function.Consumer;

/**
 * Finds the jobs of a library that a backup process left {@code running} when it died (SIGKILL,
 * a crash, the host going down) and marks them failed, as interrupted.
 *
 * <p>Thread-safe as the catalog given is: it holds no state.
 */
public final class InterruptedJobs {
  /*
   * A job is "running" from its start until its archive is recorded or its failure is. A process
   * that dies in between leaves it so for good, unless someone notices: the next backup of the
   * library does (BackupService.run), and so do the commands that read the catalog of a library
   * (list, show, restore, verify). Only jobs this host ran for this library are candidates
   * (Catalog.markInterrupted): another backup server sharing a PostgreSQL catalog may be running
   * its own jobs this very moment, and only it can see its processes. Of those, a job is marked
   * when its process is gone or its pid now belongs to a process that started at another time.
   */

  private InterruptedJobs() {}

  /**
   * Marks the interrupted jobs of the library in {@code libraryDir} in {@code catalog} and tells
   * {@code notes} of each; returns them.
   */
  public static List<Catalog.JobRecord> mark(Catalog catalog, Path libraryDir, Consumer<String> notes)
      throws IOException {
    List<Catalog.JobRecord> marked = catalog.markInterrupted(JobOwner.current(libraryDir), JobOwner::alive,
        Instant.ofEpochMilli(System.currentTimeMillis()));
    for (Catalog.JobRecord j : marked) {
      notes.accept("job " + j.id() + " (" + j.snapshot().volume() + "@" + j.snapshot().snapshot() + ", started "
          + j.started() + ") was left running by a backup process that is gone: marked failed ("
          + j.message().substring(Catalog.INTERRUPTED.length()) + ")");
    }
    return marked;
  }
}
