package dev.shade.requestor.schedule;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What retention decided for each snapshot of a volume, newest first, with the reason.
 *
 * @param entries one per snapshot, newest first
 */
public record PrunePlan(List<Entry> entries) {
  public PrunePlan {
    entries = List.copyOf(entries);
  }

  /**
   * One snapshot's fate.
   *
   * @param snapshot the snapshot
   * @param keep true to keep it, false to delete it
   * @param rule the rule that keeps it ("keep-daily"), or null when none does
   * @param reason why, in words: "keep-daily 2026-11-30", "made by hand: not pruned by this
   *     schedule", "not kept by any rule"
   */
  public record Entry(Candidate snapshot, boolean keep, String rule, String reason) {}

  /** The snapshots to delete, newest first. */
  public List<Candidate> pruned() {
    List<Candidate> out = new ArrayList<>();
    for (Entry e : entries) {
      if (!e.keep()) {
        out.add(e.snapshot());
      }
    }
    return out;
  }

  /** The snapshots kept, newest first. */
  public List<Candidate> kept() {
    List<Candidate> out = new ArrayList<>();
    for (Entry e : entries) {
      if (e.keep()) {
        out.add(e.snapshot());
      }
    }
    return out;
  }

  /** The JSON form: one object per snapshot. */
  public List<Map<String, Object>> toJson() {
    List<Map<String, Object>> out = new ArrayList<>();
    for (Entry e : entries) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("name", e.snapshot().name());
      m.put("id", e.snapshot().id());
      m.put("created", e.snapshot().created().toString());
      m.put("scheduled", e.snapshot().scheduled());
      m.put("action", e.keep() ? "keep" : "prune");
      m.put("rule", e.rule());
      m.put("reason", e.reason());
      out.add(m);
    }
    return out;
  }
}
