package dev.shade.requestor.schedule;

/** What a schedule does at start about the slots it missed while the agent was down. */
public enum CatchUp {
  /** Take one snapshot at once, for the latest slot missed, however many were missed. */
  ONE,
  /** Take none: wait for the next slot. */
  SKIP;

  /** The word in the config file. */
  public String word() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }
}
