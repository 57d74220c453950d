package dev.shade.requestor.schedule;

import java.time.Instant;
import java.util.Objects;

/**
 * A snapshot as retention sees it.
 *
 * @param id the snapshot's id on its volume (never reused)
 * @param name its name
 * @param created when it was taken
 * @param scheduled true if the schedule being planned may prune it: it carries that schedule's
 *     name in its {@code shade.schedule} attribute, or the schedule prunes snapshots made by hand
 *     too ({@code "pruneManual": true}); false for every other snapshot, which retention keeps and
 *     does not count
 */
public record Candidate(long id, String name, Instant created, boolean scheduled) {
  public Candidate {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(created, "created");
  }
}
