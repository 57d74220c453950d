package dev.shade.requestor.schedule;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What one run of a schedule did.
 *
 * @param schedule the schedule's name
 * @param slot the slot it ran for
 * @param catchUp true if it ran at start for a slot missed while the agent was down
 * @param started when it started
 * @param finished when it ended
 * @param snapshot the snapshot's name (taken or not)
 * @param error null on success, else what failed ("snapshot: ..." or "prune: ...")
 * @param pruned the snapshots deleted after it, as "VOLUME/NAME"
 */
public record RunResult(String schedule, Instant slot, boolean catchUp, Instant started, Instant finished,
    String snapshot, String error, List<String> pruned) {
  public RunResult {
    pruned = List.copyOf(pruned);
  }

  /** True if the snapshot was taken and pruning succeeded. */
  public boolean ok() {
    return error == null;
  }

  /** The JSON form, as in the SCHEDULE_RUN and SCHEDULE_FAILED events and schedule-show. */
  public Map<String, Object> toJson() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("schedule", schedule);
    m.put("slot", slot.toString());
    m.put("catchUp", catchUp);
    m.put("started", started.toString());
    m.put("finished", finished.toString());
    m.put("snapshot", snapshot);
    m.put("ok", ok());
    m.put("error", error);
    m.put("pruned", pruned);
    return m;
  }
}
